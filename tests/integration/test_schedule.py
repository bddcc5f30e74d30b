"""The host's schedule: a day list and a week grid of bookings and calendar busy blocks."""

from __future__ import annotations

import json
import re
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date, format_interval

from portal.booking import schedule, service
from portal.calendars import sync
from portal.models import (
    BusyBlock,
    Calendar,
    Connection,
    User,
    db,
    to_db,
)
from portal.org.users import create_user
from tests.support.api import Api, matches_schema
from tests.support.app import AuthActions
from tests.support.clock import at, day, iso_z
from tests.support.oauth import ctx_fixture, grant, oauth_app_fixture  # noqa: F401


def berlin(days, hour, minute=0):
    """``hour:minute`` Berlin time, ``days`` after the test clock's Monday, in UTC."""
    return at(days, hour, minute, tz="Europe/Berlin")


def ymd(days):
    return day(days).isoformat()


@pytest.fixture
def world(app, hosts, now):
    app.config["CLOCK"].freeze(now)
    alice = hosts.create("alice", name="Alice Example", tz="Europe/Berlin")
    bob = hosts.create("bob", tz="Europe/Berlin")
    mt = hosts.meeting_type(alice, "intro", name="Intro call", location="https://meet.example/a")
    with app.test_request_context(), db.connection_context():
        host = User.get_by_id(alice.id)
        booked = service.book(
            host, mt, berlin(1, 10), "Ada Invitee", "ada@example.com", notes="Roadmap", now=now
        ).booking
        cy = service.book(host, mt, berlin(1, 14), "Cy", "cy@example.com", now=now).booking
        service.cancel(cy, now=now)
        conn = Connection.create(user=host, provider="ics", label="https://cal.example/f.ics")
        work = Calendar.create(connection=conn, external_id="work", name="Work")
        home = Calendar.create(connection=conn, external_id="home", name="Home")
        quiet = Calendar.create(connection=conn, external_id="q", name="Quiet", conflict=False)
        blocks = [
            (work, berlin(1, 12), berlin(1, 13)),
            (work, berlin(1, 12, 30), berlin(1, 13, 30)),  # overlaps: one stretch
            (home, berlin(2, 8), berlin(2, 9)),
            (work, berlin(1, 10), berlin(1, 10, 30)),  # the booking's own event in the calendar
            (work, berlin(4, 0), berlin(6, 0)),  # an all-day-ish block across days (Berlin)
            (quiet, berlin(1, 16), berlin(1, 17)),  # not checked for conflicts: not shown
        ]
        for cal, s, e in blocks:
            BusyBlock.create(calendar=cal, start=to_db(s), end=to_db(e))
        other = Connection.create(user=User.get_by_id(bob.id), provider="ics", label="x")
        bob_cal = Calendar.create(connection=other, external_id="b", name="Bob private")
        BusyBlock.create(calendar=bob_cal, start=to_db(berlin(1, 11)), end=to_db(berlin(1, 12)))
    return {"alice": alice, "bob": bob, "booked": booked}


def test_items_merge_hide_own_events_and_skip_other_hosts(app, world):
    with app.app_context(), db.connection_context():
        found = schedule.items(User.get(User.slug == "alice"), berlin(1, 0), berlin(6, 0))
    got = [(i.kind, i.label, i.start, i.end) for i in found]
    assert got == [
        ("booking", "Intro call: Ada Invitee", berlin(1, 10), berlin(1, 10, 30)),
        ("busy", "Busy · Work", berlin(1, 12), berlin(1, 13, 30)),
        ("busy", "Busy · Home", berlin(2, 8), berlin(2, 9)),
        ("busy", "Busy · Work", berlin(4, 0), berlin(6, 0)),
    ]


def test_day_list(client, world):
    AuthActions(client).login()
    # British English: the 24-hour times below (en-US would read "10:00 AM–10:30 AM").
    page = client.get("/settings/schedule", headers={"Accept-Language": "en-GB"}).text
    span = format_interval(day(0), day(13), "yMMMd", locale="en_GB")  # "7–20 Dec 2026"
    assert span in page and "(Europe/Berlin)" in page
    assert format_date(day(1), "full", locale="en_GB") in page  # "Tuesday 8 December 2026"
    tuesday = page[page.index(f'id="day-{ymd(1)}"') : page.index(f'id="day-{ymd(2)}"')]
    assert "10:00–10:30" in tuesday and "Intro call: Ada Invitee" in tuesday  # Berlin time
    assert "ada@example.com" in tuesday and "https://meet.example/a" in tuesday
    assert "Roadmap" in tuesday
    assert "12:00–13:30" in tuesday and "Busy · Work" in tuesday
    assert "Cy" not in tuesday  # cancelled
    assert "Bob private" not in page and "Quiet" not in page
    assert "Busy · Home" in page[page.index(f'id="day-{ymd(2)}"') :]
    # The long block: from 00:00 on Friday (Berlin) it covers whole days.
    fourth = page[page.index(f'id="day-{ymd(4)}"') : page.index(f'id="day-{ymd(5)}"')]
    assert "all day" in fourth and "Busy · Work" in fourth
    fifth = page[page.index(f'id="day-{ymd(5)}"') : page.index(f'id="day-{ymd(6)}"')]
    assert "all day" in fifth
    sixth = page[page.index(f'id="day-{ymd(6)}"') : page.index(f'id="day-{ymd(7)}"')]
    assert "Busy" not in sixth and "Nothing booked" in sixth  # it ended at midnight


def test_week_grid_and_htmx_block(client, world):
    AuthActions(client).login()
    r = client.get(
        "/settings/schedule",
        query_string={"view": "week", "date": ymd(2)},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200 and "<html" not in r.text and 'id="schedule"' in r.text
    assert f'id="wk-{ymd(0)}"' in r.text and f'id="wk-{ymd(6)}"' in r.text  # Mon–Sun
    # The 08:00 Home block (Berlin) widens the grid's hours down to 08:00 — the default start.
    tuesday = r.text[r.text.index(f'id="wk-{ymd(1)}"') : r.text.index(f'id="wk-{ymd(2)}"')]
    # Hours 08–18 shown: 10:00 is 2 hours down, 30 minutes long (classes, not style="").
    assert "week-item schedule-booking at-h2 at-m0 len-h0 len-m30" in tuesday
    assert 'class="week-grid hours-10"' in r.text
    assert "Busy · Work" in tuesday and "Busy · Home" not in tuesday
    nav = re.findall(r'href="(/settings/schedule\?[^"]+)"', r.text)
    assert f"/settings/schedule?view=week&amp;date={ymd(-7)}" in nav
    assert f"/settings/schedule?view=week&amp;date={ymd(7)}" in nav


@pytest.mark.parametrize("query", [{"date": "2026-13-45"}, {"view": "nope"}, {"date": "x" * 500}])
def test_bad_queries_fall_back(client, world, query):
    AuthActions(client).login()
    assert client.get("/settings/schedule", query_string=query).status_code == 200


def test_schedule_api(app, hosts, world):
    api = Api(app.test_client(), hosts.token(world["alice"]))
    r = api.get("/api/v1/schedule", query_string={"start": ymd(1), "end": ymd(2)})
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
        "start": berlin(1, 12).isoformat(),
        "end": berlin(1, 13, 30).isoformat(),
        "label": "Busy · Work",
        "calendar": "Work",
    }
    r = api.get("/api/v1/schedule", query_string={"start": ymd(1), "end": ymd(-29)})
    assert r.status_code == 422 and r.json["error"]["field"] == "end"
    r = api.get("/api/v1/schedule", query_string={"start": ymd(-333), "end": ymd(1)})
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
                "start": {"dateTime": iso_z(berlin(1, 14))},
                "end": {"dateTime": iso_z(berlin(1, 15))},
            }
        ],
    )
    conn = grant(user, "google")
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    stored = json.dumps([list(map(str, r)) for r in BusyBlock.select().tuples()])
    assert "Dentist" not in stored and "Secret" not in stored
    found = schedule.items(user, berlin(1, 0), berlin(2, 0))
    days = schedule.by_day(found, day(1), day(1), ZoneInfo("Europe/Berlin"))
    [item] = days[day(1)]
    assert (item.label, item.start, item.end) == ("Busy · Work", berlin(1, 14), berlin(1, 15))
