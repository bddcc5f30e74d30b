"""The host's schedule: a day list and a week grid of bookings and calendar busy blocks."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from oauth_support import ctx_fixture, grant, oauth_app_fixture  # noqa: F401

from portal import booking as service
from portal import schedule, sync
from portal.cli import create_user
from portal.models import (
    BusyBlock,
    Calendar,
    Connection,
    User,
    db,
    to_db,
)
from tests.conftest import AuthActions
from tests.integration.test_api_support import Api, matches_schema

NOW = datetime(2026, 11, 30, 8, tzinfo=UTC)  # Monday; Berlin is UTC+1 in December


def utc(day, hour, minute=0):
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def world(app, hosts, monkeypatch):
    monkeypatch.setattr("portal.views.settings_schedule.utcnow", lambda: NOW)
    alice = hosts.create("alice", name="Alice Example", tz="Europe/Berlin")
    bob = hosts.create("bob", tz="Europe/Berlin")
    mt = hosts.meeting_type(alice, "intro", name="Intro call", location="https://meet.example/a")
    with app.test_request_context(), db.connection_context():
        host = User.get_by_id(alice.id)
        booked = service.book(
            host, mt, utc(1, 9), "Ada Invitee", "ada@example.com", notes="Roadmap", now=NOW
        ).booking
        service.cancel(service.book(host, mt, utc(1, 13), "Cy", "cy@example.com", now=NOW).booking)
        conn = Connection.create(user=host, provider="ics", label="https://cal.example/f.ics")
        work = Calendar.create(connection=conn, external_id="work", name="Work")
        home = Calendar.create(connection=conn, external_id="home", name="Home")
        quiet = Calendar.create(connection=conn, external_id="q", name="Quiet", conflict=False)
        blocks = [
            (work, utc(1, 11), utc(1, 12)),
            (work, utc(1, 11, 30), utc(1, 12, 30)),  # overlaps: one stretch
            (home, utc(2, 7), utc(2, 8)),
            (work, utc(1, 9), utc(1, 9, 30)),  # the booking's own event in the calendar
            (work, utc(3, 23), utc(5, 23)),  # an all-day-ish block across days (Berlin)
            (quiet, utc(1, 15), utc(1, 16)),  # not checked for conflicts: not shown
        ]
        for cal, s, e in blocks:
            BusyBlock.create(calendar=cal, start=to_db(s), end=to_db(e))
        other = Connection.create(user=User.get_by_id(bob.id), provider="ics", label="x")
        bob_cal = Calendar.create(connection=other, external_id="b", name="Bob private")
        BusyBlock.create(calendar=bob_cal, start=to_db(utc(1, 10)), end=to_db(utc(1, 11)))
    return {"alice": alice, "bob": bob, "booked": booked}


def test_items_merge_hide_own_events_and_skip_other_hosts(app, world):
    with app.app_context(), db.connection_context():
        found = schedule.items(User.get(User.slug == "alice"), utc(1, 0), utc(6, 0))
    got = [(i.kind, i.label, i.start, i.end) for i in found]
    assert got == [
        ("booking", "Intro call: Ada Invitee", utc(1, 9), utc(1, 9, 30)),
        ("busy", "Busy · Work", utc(1, 11), utc(1, 12, 30)),
        ("busy", "Busy · Home", utc(2, 7), utc(2, 8)),
        ("busy", "Busy · Work", utc(3, 23), utc(5, 23)),
    ]


def test_day_list(client, world):
    AuthActions(client).login()
    page = client.get("/settings/schedule").text
    assert "30 Nov – 13 Dec 2026" in page and "(Europe/Berlin)" in page
    day = page[page.index('id="day-2026-12-01"') : page.index('id="day-2026-12-02"')]
    assert "10:00–10:30" in day and "Intro call: Ada Invitee" in day  # Berlin time
    assert "ada@example.com" in day and "https://meet.example/a" in day and "Roadmap" in day
    assert "12:00–13:30" in day and "Busy · Work" in day
    assert "Cy" not in day  # cancelled
    assert "Bob private" not in page and "Quiet" not in page
    assert "Busy · Home" in page[page.index('id="day-2026-12-02"') :]
    # The long block: from 00:00 on the 4th (Berlin) it covers whole days.
    fourth = page[page.index('id="day-2026-12-04"') : page.index('id="day-2026-12-05"')]
    assert "all day" in fourth and "Busy · Work" in fourth
    fifth = page[page.index('id="day-2026-12-05"') : page.index('id="day-2026-12-06"')]
    assert "all day" in fifth
    sixth = page[page.index('id="day-2026-12-06"') : page.index('id="day-2026-12-07"')]
    assert "Busy" not in sixth and "Nothing booked" in sixth  # it ended at midnight


def test_week_grid_and_htmx_block(client, world):
    AuthActions(client).login()
    r = client.get(
        "/settings/schedule",
        query_string={"view": "week", "date": "2026-12-02"},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200 and "<html" not in r.text and 'id="schedule"' in r.text
    assert 'id="wk-2026-11-30"' in r.text and 'id="wk-2026-12-06"' in r.text  # Mon–Sun
    # The 08:00 Home block (Berlin) widens the grid's hours down to 08:00 — the default start.
    tuesday = r.text[r.text.index('id="wk-2026-12-01"') : r.text.index('id="wk-2026-12-02"')]
    # Hours 08–18 shown: 10:00 is 2 hours down, 30 minutes long (classes, not style="").
    assert "week-item schedule-booking at-h2 at-m0 len-h0 len-m30" in tuesday
    assert 'class="week-grid hours-10"' in r.text
    assert "Busy · Work" in tuesday and "Busy · Home" not in tuesday
    nav = re.findall(r'href="(/settings/schedule\?[^"]+)"', r.text)
    assert "/settings/schedule?view=week&amp;date=2026-11-23" in nav
    assert "/settings/schedule?view=week&amp;date=2026-12-07" in nav


@pytest.mark.parametrize("query", [{"date": "2026-13-45"}, {"view": "nope"}, {"date": "x" * 500}])
def test_bad_queries_fall_back(client, world, query):
    AuthActions(client).login()
    assert client.get("/settings/schedule", query_string=query).status_code == 200


def test_schedule_api(app, hosts, world):
    api = Api(app.test_client(), hosts.token(world["alice"]))
    r = api.get("/api/v1/schedule", query_string={"start": "2026-12-01", "end": "2026-12-02"})
    assert r.status_code == 200, r.json
    matches_schema(r, "get", "/api/v1/schedule")
    assert r.json["timezone"] == "Europe/Berlin"
    kinds = [(i["kind"], i["label"]) for i in r.json["items"]]
    assert kinds == [
        ("booking", "Intro call: Ada Invitee"),
        ("busy", "Busy · Work"),
        ("busy", "Busy · Home"),
    ]
    assert r.json["items"][0]["booking"]["uid"] == world["booked"].uid
    assert r.json["items"][1] == {
        "kind": "busy",
        "start": "2026-12-01T11:00:00+00:00",
        "end": "2026-12-01T12:30:00+00:00",
        "label": "Busy · Work",
        "calendar": "Work",
    }
    r = api.get("/api/v1/schedule", query_string={"start": "2026-12-01", "end": "2026-11-01"})
    assert r.status_code == 422 and r.json["error"]["field"] == "end"
    r = api.get("/api/v1/schedule", query_string={"start": "2026-01-01", "end": "2026-12-01"})
    assert r.status_code == 422 and r.json["error"]["field"] == "end"
    r = api.get("/api/v1/schedule", query_string={"tz": "Mars/Olympus"})
    assert r.status_code == 422 and r.json["error"]["field"] == "tz"


def test_titles_from_a_real_calendar_are_never_stored_or_shown(ctx, fake_google, now):
    """A Google event's title goes nowhere: the cache has times, the schedule a calendar name."""
    user = create_user("alice@example.com", "correct horse", "alice", timezone="Europe/Berlin")
    fake_google.add_calendar(calendar_id="test.user@example.com", summary="Work", primary=True)
    fake_google.put_events(
        "test.user@example.com",
        [
            {
                "id": "dentist01",
                "summary": "Dentist: root canal",
                "description": "Dr. Secret",
                "start": {"dateTime": "2026-12-01T13:00:00Z"},
                "end": {"dateTime": "2026-12-01T14:00:00Z"},
            }
        ],
    )
    conn = grant(user, "google")
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    stored = json.dumps([list(map(str, r)) for r in BusyBlock.select().tuples()])
    assert "Dentist" not in stored and "Secret" not in stored
    found = schedule.items(user, utc(1, 0), utc(2, 0))
    days = schedule.by_day(found, date(2026, 12, 1), date(2026, 12, 1), ZoneInfo("Europe/Berlin"))
    [item] = days[date(2026, 12, 1)]
    assert (item.label, item.start, item.end) == ("Busy · Work", utc(1, 13), utc(1, 14))
