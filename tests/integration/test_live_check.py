"""The confirm-time re-check: cheap per provider, and blind to Kairos's own events.

Real servers: the local ICS feed server (ETags) and Radicale; bookings race over HTTP.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests

from jobs import outbox as outbox_jobs
from portal.booking import service as booking
from portal.booking.checks import BookingError, SlotTaken
from portal.calendars import sync
from portal.models import Booking, Calendar, CalendarEvent, Outbox, db
from tests.support.app import Hosts
from tests.support.clock import at

RACERS = 8


def slot(hour: int = 10):
    """A Tuesday slot inside the default hours (Berlin), after the test clock's Monday."""
    return at(1, hour, tz="Europe/Berlin")


def vevent(uid: str, start: datetime, end: datetime) -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{start.astimezone(UTC):{fmt}}\r\nDTEND:{end.astimezone(UTC):{fmt}}\r\n"
        "SUMMARY:Busy\r\nEND:VEVENT\r\n"
    )


def vcal(*events: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        + "".join(events)
        + ("END:VCALENDAR\r\n")
    )


def filler(n: int) -> list[str]:
    """``n`` events on other days: a feed worth narrowing before it is parsed."""
    return [
        vevent(f"other-{i}", at(3 + i % 20, 6 + i % 10), at(3 + i % 20, 6 + i % 10, 30))
        for i in range(n)
    ]


@pytest.fixture
def ctx(app):
    with app.app_context(), db.connection_context():
        yield app


@pytest.fixture
def host(hosts):
    user = hosts.create("alice", tz="Europe/Berlin")
    hosts.meeting_type(user, "intro", duration_minutes=30)
    return user


def book(host, start, who="ada", now=None):
    from tests.support.clock import NOW

    return booking.book(
        host, host.meeting_types.get(), start, who, f"{who}@example.com", now=now or NOW
    )


# ---------------------------------------------------------------- ICS: conditional GET


def test_unchanged_feed_costs_one_304_at_confirm(ctx, host, feed_server, now):
    url = feed_server.publish("/a.ics", vcal(*filler(200)))
    conn = sync.connect(host, "ics", {"url": url})
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    before = len(feed_server.requests)
    assert book(host, slot()).created
    assert feed_server.requests[before:] == [("/a.ics", 304)]


def test_changed_feed_is_read_for_the_slot_before_the_refresh(ctx, host, feed_server, now):
    url = feed_server.publish("/a.ics", vcal(*filler(200)))
    conn = sync.connect(host, "ics", {"url": url})
    sync.refresh_connection(conn.id, now=now)
    feed_server.publish("/a.ics", vcal(*filler(200), vevent("new", slot(), slot(11))))
    with pytest.raises(BookingError) as err:
        book(host, slot())
    assert not isinstance(err.value, SlotTaken) and err.value.field == "start"
    assert feed_server.requests[-1] == ("/a.ics", 200)
    assert book(host, slot(12)).created  # the rest of the feed is as cached


def test_unchanged_refresh_costs_one_request_and_no_parse(ctx, host, feed_server, now, monkeypatch):
    url = feed_server.publish("/a.ics", vcal(vevent("x", slot(), slot(11))))
    conn = sync.connect(host, "ics", {"url": url})
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    from portal.calendars.providers import icalbusy

    def no_parse(*args, **kwargs):
        raise AssertionError("an unchanged feed was parsed")

    monkeypatch.setattr(icalbusy, "busy_intervals", no_parse)
    before = len(feed_server.requests)
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    assert feed_server.requests[before:] == [("/a.ics", 304)]
    cal = Calendar.get(Calendar.external_id == "feed")
    assert cal.name  # the name survives a refresh that read nothing


# ---------------------------------------------------------------- own events


def test_own_event_in_the_feed_makes_a_late_racer_taken_not_unavailable(
    ctx, host, feed_server, now
):
    url = feed_server.publish("/a.ics", vcal(*filler(50)))
    conn = sync.connect(host, "ics", {"url": url})
    sync.refresh_connection(conn.id, now=now)
    won = book(host, slot()).booking
    # The host's calendar (published as a feed) now carries the booking's event.
    feed_server.publish(
        "/a.ics", vcal(*filler(50), vevent(won.ical_uid, slot(), slot(10) + timedelta(minutes=30)))
    )
    with pytest.raises(SlotTaken):  # live check: a changed feed, the event is ours
        book(host, slot(), "bo")
    sync.refresh_connection(conn.id, now=now)
    with pytest.raises(SlotTaken):  # the cache: our event is not external busy time
        book(host, slot(), "cy")
    # A moved booking's old time is free again, though the feed still shows the event there.
    booking.reschedule(won, slot(14), now=now)
    assert book(host, slot(), "di").created


def test_event_without_a_uid_match_inside_a_booking_is_taken(ctx, host, feed_server, now):
    """Free/busy answers carry no UID: busy time within a booking is that booking's."""
    url = feed_server.publish("/a.ics", vcal())
    conn = sync.connect(host, "ics", {"url": url})
    sync.refresh_connection(conn.id, now=now)
    assert book(host, slot()).created
    feed_server.publish("/a.ics", vcal(vevent("opaque", slot(), slot(10) + timedelta(minutes=30))))
    sync.refresh_connection(conn.id, now=now)
    with pytest.raises(SlotTaken):
        book(host, slot(), "bo")
    # Busy time that no booking explains is still "not available".
    feed_server.publish("/a.ics", vcal(vevent("ext", slot(15), slot(16))))
    sync.refresh_connection(conn.id, now=now)
    with pytest.raises(BookingError) as err:
        book(host, slot(15), "cy")
    assert not isinstance(err.value, SlotTaken)


# ---------------------------------------------------------------- the race over HTTP


def _race(url: str, start: str, names: list[str]) -> list[int]:
    barrier = threading.Barrier(len(names))
    codes = [0] * len(names)

    def go(i: int) -> None:
        body = {"start": start, "name": names[i], "email": f"{names[i]}@example.com"}
        barrier.wait()
        codes[i] = requests.post(url, json=body, timeout=60).status_code

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def test_racers_after_the_write_back_all_get_409(backend_app, live, radicale, now):
    """The winner's event is written into the host's Radicale calendar (a conflict calendar
    too) and read back by a refresh; every racer, before and after, gets 409."""
    with backend_app.app_context(), db.connection_context():
        h = Hosts(backend_app)
        host = h.create("alice", tz="Europe/Berlin")
        h.meeting_type(host, "intro", duration_minutes=30)
        user, password = radicale.add_user()
        bookings = radicale.make_calendar(user, "Bookings")
        conn = sync.connect(
            host, "caldav", {"url": radicale.url, "username": user, "password": password}
        )
        sync.set_calendar_flags(Calendar.get(Calendar.external_id == bookings), write=True)
        assert sync.refresh_connection(conn.id, now=now) == "ok"
    url = f"{live}/api/v1/hosts/alice/intro/bookings"
    start = slot().isoformat()
    first = _race(url, start, [f"r{i}" for i in range(RACERS)])
    assert sorted(first) == [201] + [409] * (RACERS - 1)
    with backend_app.app_context(), db.connection_context():
        for row in Outbox.select().where(Outbox.kind == "write_back", Outbox.status != "done"):
            outbox_jobs.run(row.id)
        assert CalendarEvent.get().status == "written"  # the event is in the host's calendar
        assert sync.refresh_connection(conn.id, now=now) == "ok"
    second = _race(url, start, [f"s{i}" for i in range(RACERS)])
    assert second == [409] * RACERS
    with backend_app.app_context(), db.connection_context():
        assert Booking.select().count() == 1


# ---------------------------------------------------------------- connecting a feed


def test_connecting_a_feed_reads_its_start_only_and_the_job_reads_the_rest(
    ctx, host, feed_server, now, monkeypatch
):
    from portal.calendars.providers import icalbusy

    url = feed_server.publish("/big.ics", vcal(*filler(2000), vevent("x", slot(), slot(11))))
    parse = icalbusy.parse

    def refused(*args, **kwargs):
        raise AssertionError("connecting parsed the feed")

    monkeypatch.setattr(icalbusy, "parse", refused)
    conn = sync.connect(host, "ics", {"url": url})
    monkeypatch.setattr(icalbusy, "parse", parse)
    assert conn.status == "syncing"
    [cal] = Calendar.select().where(Calendar.connection == conn)  # listed at once
    assert cal.last_synced_at is None and feed_server.requests == [("/big.ics", 200)]
    assert sync.refresh_connection(conn.id, now=now) == "ok"  # the job
    with pytest.raises(BookingError):
        book(host, slot())
    assert Calendar.get_by_id(cal.id).last_synced_at is not None


def test_connecting_a_page_that_is_not_a_feed_is_refused_at_once(ctx, host, feed_server):
    url = feed_server.publish("/page", "<html><body>Sign in</body></html>")
    with pytest.raises(sync.InvalidSetup) as err:
        sync.connect(host, "ics", {"url": url})
    assert err.value.field == "url" and "iCalendar" in err.value.message
