"""Hardening found from outside (issue 16): caching, file modes, headers, form input."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.models import User, WeeklyHours, db
from tests.integration.test_public_pages import freeze_clock, open_form, submit

HX = {"HX-Request": "true"}


@pytest.fixture
def booked(app, hosts, client, now, monkeypatch):
    """Alice's booking made through the public form; its manage page path."""
    freeze_clock(monkeypatch, now)
    alice = hosts.create("alice", tz="Europe/Berlin")
    hosts.meeting_type(alice, "intro")
    berlin = ZoneInfo("Europe/Berlin")
    tomorrow = now.astimezone(berlin).date() + timedelta(days=1)  # ``now`` is a Monday
    start = datetime.combine(tomorrow, time(10), tzinfo=berlin).astimezone(UTC)
    answer = submit(client, open_form(client, start=start.strftime("%Y-%m-%dT%H:%M:%SZ")))
    assert answer.status_code == 303
    return answer.headers["Location"]


# ---------------------------------------------------------------- manage page caching


def test_the_manage_page_and_its_ics_are_never_stored(client, booked):
    """They hold the invitee's details and the manage token: no shared or back-button cache."""
    page = client.get(booked)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    ics_path = re.search(r'href="(/booking/[^"]+/invite\.ics\?[^"]+)"', page.text)[1]
    ics = client.get(ics_path.replace("&amp;", "&"))
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    assert ics.headers["Cache-Control"] == "no-store"
    embedded = client.get(booked.replace("/booking/", "/embed/booking/", 1))
    assert embedded.status_code == 200 and embedded.headers["Cache-Control"] == "no-store"


# ---------------------------------------------------------------- weekly hours form


def _week(app, user_id):
    with app.app_context(), db.connection_context():
        rows = WeeklyHours.select().where(WeeklyHours.user == user_id)
        return sorted((r.weekday, r.start, r.end) for r in rows), User.get_by_id(user_id).timezone


@pytest.mark.parametrize("htmx", [True, False])
def test_an_unknown_time_zone_is_refused_and_the_week_kept(app, hosts, auth, htmx):
    alice = hosts.create("alice", tz="Europe/Berlin")
    auth.login()
    before = _week(app, alice.id)
    assert len(before[0]) == 5
    answer = auth.post(
        "/settings/hours",
        {"timezone": "Mars/X", "cell": ["0-20"]},
        headers=HX if htmx else {},
    )
    assert answer.status_code == 422
    assert "Time zone: “Mars/X” is not one we know" in answer.text
    assert "nothing was saved" in answer.text and "Saved at" not in answer.text
    if not htmx:  # the whole form again, with the field marked and the posted cells kept
        assert re.search(r'name="timezone" value="Mars/X"[^>]*aria-invalid="true"', answer.text)
        assert 'value="0-20" checked' in answer.text and 'value="0-18" checked' not in answer.text
    assert _week(app, alice.id) == before


def test_the_hours_form_saves_the_zone_with_the_week(app, hosts, auth):
    alice = hosts.create("alice", tz="Europe/Berlin")
    auth.login()
    page = auth.client.get("/settings/hours").text
    assert 'name="timezone" value="Europe/Berlin"' in page
    moved = auth.post(
        "/settings/hours", {"timezone": "America/New_York", "cell": ["0-18"]}, headers=HX
    )
    assert moved.status_code == 200 and moved.headers["HX-Refresh"] == "true"
    assert _week(app, alice.id) == ([(0, "09:00", "09:30")], "America/New_York")
    # Without the field the zone stays as it is.
    kept = auth.post("/settings/hours", {"cell": ["1-18"]}, headers=HX)
    assert kept.status_code == 200 and "Saved at" in kept.text
    assert _week(app, alice.id) == ([(1, "09:00", "09:30")], "America/New_York")
