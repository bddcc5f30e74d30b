"""A Microsoft 365 account end to end: busy from calendarView, write-back with
transactionId, throttling, rotating refresh tokens, revocation."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from jobs.calendar import write_back
from jobs.outbox import run as run_outbox_row
from portal.booking import service as booking
from portal.calendars import sync
from portal.calendars.providers import CalendarRef, RateLimited, Transient
from portal.calendars.providers.microsoft import transaction_id
from portal.models import (
    Calendar,
    CalendarEvent,
    Connection,
    MeetingType,
    Outbox,
    from_db,
    to_db,
    utcnow,
)
from portal.org.users import create_user
from tests.support.clock import at, day
from tests.support.oauth import PASSWORD, ctx_fixture, grant, oauth_app_fixture  # noqa: F401

EMAIL = "test.user@example.com"


def utc(day, hour, minute=0):
    """``hour:minute`` UTC, ``day`` days after the test clock's Monday (1 = Tuesday)."""
    return at(day, hour, minute)


def event(start, end, **extra):
    return {
        "subject": "Private",
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        **extra,
    }


@pytest.fixture
def host(ctx, fake_microsoft):
    user = create_user("alice@example.com", PASSWORD, "alice", timezone="Europe/Berlin")
    MeetingType.create(user=user, slug="intro", name="Intro", duration_minutes=30)
    fake_microsoft.mailbox_zone(EMAIL, "Europe/Berlin")
    return user


@pytest.fixture
def cal(fake_microsoft, host):
    return fake_microsoft.add_calendar(name="Calendar", default=True)


@pytest.fixture
def conn(host, cal):
    return grant(host, "microsoft")


def intro(host):
    return MeetingType.get(MeetingType.user == host, MeetingType.slug == "intro")


def slots(host, day, now):
    return booking.available_slots(host, intro(host), utc(day, 0), utc(day + 1, 0), now=now)


def book(host, start, now, name="Ada"):
    return booking.book(
        host, intro(host), start, name, f"{name.lower()}@example.com", now=now
    ).booking


def test_show_as_decides_what_is_busy(host, cal, conn, fake_microsoft, now, oauth_app):
    fake_microsoft.put_events(
        cal,
        [
            event(utc(1, 8), utc(1, 9), showAs="busy"),
            event(utc(1, 9), utc(1, 10), showAs="oof"),
            event(utc(1, 10), utc(1, 11), showAs="tentative"),
            event(utc(1, 11), utc(1, 12), showAs="free"),
            event(utc(1, 12), utc(1, 13), showAs="workingElsewhere"),
            event(utc(1, 13), utc(1, 14), showAs="busy", isCancelled=True),
            {
                "subject": "Holiday",
                "isAllDay": True,
                "start": {"dateTime": f"{day(3)}T00:00:00", "timeZone": "UTC"},
                "end": {"dateTime": f"{day(4)}T00:00:00", "timeZone": "UTC"},
            },
        ],
    )
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    offered = slots(host, 1, now)
    for busy in (utc(1, 8), utc(1, 9), utc(1, 10)):  # tentative counts by default
        assert busy not in offered
    for free in (utc(1, 11), utc(1, 12), utc(1, 13)):
        assert free in offered
    assert slots(host, 3, now) == []  # the all-day event fills the Berlin day
    assert slots(host, 4, now) != []

    oauth_app.config["TENTATIVE_IS_BUSY"] = False
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    assert utc(1, 10) in slots(host, 1, now)


def test_calendar_view_pages_are_followed(host, cal, conn, fake_microsoft, now):
    fake_microsoft.page_size(2)
    fake_microsoft.put_events(cal, [event(utc(1, 8 + i), utc(1, 8 + i, 30)) for i in range(7)])
    provider = sync.adapter(conn)
    fake_microsoft.clear_log()
    spans = provider.busy([CalendarRef(cal, "Europe/Berlin")], utc(1, 0), utc(2, 0))[cal]
    assert len(spans) == 7
    assert fake_microsoft.calls("GET", "/calendarView") == 4
    provider.close()


def test_write_update_delete_exactly_once(host, cal, conn, fake_microsoft, now):
    b = book(host, utc(1, 9), now)
    assert write_back(b.id) == "written"
    [written] = fake_microsoft.events(cal)
    assert written["transactionId"] == transaction_id(b.ical_uid)
    assert written["start"] == {"dateTime": f"{day(1)}T09:00:00", "timeZone": "UTC"}
    assert written["attendees"][0]["emailAddress"]["address"] == "ada@example.com"

    moved = booking.reschedule(b, utc(2, 10), now=now)
    assert write_back(moved.id) == "written"
    [again] = fake_microsoft.events(cal)
    assert again["id"] == written["id"] and again["start"]["dateTime"] == f"{day(2)}T10:00:00"

    booking.cancel(moved, now=now)
    assert write_back(moved.id) == "deleted"
    assert fake_microsoft.events(cal) == []


def test_retry_after_a_lost_answer_does_not_duplicate(host, cal, conn, fake_microsoft, now):
    b = book(host, utc(1, 9), now)
    fake_microsoft.fail(504, path="/events", method="POST", after=True)  # created, answer lost
    with pytest.raises(Transient):
        write_back(b.id)
    assert write_back(b.id) == "written"
    assert len(fake_microsoft.events(cal)) == 1
    # the second POST carried the same transactionId and got the first event back
    assert fake_microsoft.posts() == {transaction_id(b.ical_uid): 2}
    row = CalendarEvent.get(CalendarEvent.booking == b)
    assert row.external_id == fake_microsoft.events(cal)[0]["id"]


def test_throttling_waits_as_long_as_graph_asks(host, cal, conn, fake_microsoft, now):
    fake_microsoft.fail(429, retry_after=90, path="/calendarView")
    assert sync.refresh_connection(conn.id, now=now) == "error"
    assert Connection.get_by_id(conn.id).next_sync_at == (now + timedelta(seconds=90)).replace(
        tzinfo=None
    )
    assert sync.refresh_connection(conn.id, now=now) == "ok"

    b = book(host, utc(1, 9), now)
    fake_microsoft.fail(429, retry_after=7, path="/events", method="POST")
    with pytest.raises(RateLimited) as err:
        write_back(b.id)
    assert err.value.retry_after == 7
    fake_microsoft.fail(503, retry_after=3, path="/events", method="POST")
    with pytest.raises(RateLimited):
        write_back(b.id)
    fake_microsoft.fail(0, delay=3, path="/events", method="POST")  # slower than HTTP_TIMEOUT
    with pytest.raises(Transient):
        write_back(b.id)
    assert write_back(b.id) == "written"
    assert len(fake_microsoft.events(cal)) == 1


def test_rotated_refresh_token_is_always_stored(host, cal, conn, fake_microsoft, now):
    first = sync.credentials(Connection.get_by_id(conn.id))["refresh_token"]
    fake_microsoft.expire_access_tokens()
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    second = sync.credentials(Connection.get_by_id(conn.id))["refresh_token"]
    assert second != first  # Microsoft rotated it, and the new one was sealed to the row
    assert fake_microsoft.oauth_stats()["live_refresh_tokens"] == 1  # the old one is spent
    fake_microsoft.expire_access_tokens()
    assert sync.refresh_connection(conn.id, now=now) == "ok"  # works with the stored new one
    assert fake_microsoft.oauth_stats()["refresh_token"] == 2


def test_concurrent_refreshes_spend_the_rotating_token_once(host, cal, conn, fake_microsoft):
    fake_microsoft.expire_access_tokens()
    providers = [sync.adapter(Connection.get_by_id(conn.id)) for _ in range(3)]
    app = sync.current_app._get_current_object()
    errors = []

    def work(p):
        try:
            with app.app_context():
                p.list_calendars()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in providers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []  # without the lock two of them would have sent a spent token
    assert fake_microsoft.oauth_stats()["refresh_token"] == 1
    stored = sync.credentials(Connection.get_by_id(conn.id))
    assert all(p.credentials["refresh_token"] == stored["refresh_token"] for p in providers)


def test_revoked_grant_needs_reconnect(host, cal, conn, fake_microsoft, now):
    fake_microsoft.put_events(cal, [event(utc(1, 9), utc(1, 10))])
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    fake_microsoft.revoke()
    fake_microsoft.expire_access_tokens()
    assert sync.refresh_connection(conn.id, now=now) == "needs_reconnect"
    row = Connection.get_by_id(conn.id)
    assert "AADSTS50173" in row.last_error
    assert Outbox.select().where(Outbox.kind == sync.ACTION_REQUIRED).count() == 1
    assert utc(1, 9) not in slots(host, 1, now)  # served from the cache
    assert Calendar.select().where(Calendar.connection == conn).count() == 1


def test_a_throttled_write_back_comes_back_after_retry_after(host, cal, conn, fake_microsoft, now):
    """Through the outbox, as the worker runs it: the row waits exactly as long as Graph asked."""
    b = book(host, utc(1, 9), now)
    [row] = [
        r
        for r in Outbox.select().where(Outbox.kind == "write_back")
        if r.data()["booking_id"] == b.id
    ]
    fake_microsoft.fail(429, retry_after=45, path="/events", method="POST")
    before = utcnow()
    assert run_outbox_row(row.id) == "deferred"
    waiting = Outbox.get_by_id(row.id)
    assert waiting.status == "pending" and "slow down" in waiting.last_error
    delay = from_db(waiting.run_at) - before
    assert timedelta(seconds=44) <= delay <= timedelta(seconds=50)
    assert fake_microsoft.events(cal) == []

    Outbox.update(run_at=to_db(utcnow() - timedelta(seconds=1))).where(
        Outbox.id == row.id
    ).execute()
    assert run_outbox_row(row.id) == "done"
    assert len(fake_microsoft.events(cal)) == 1
