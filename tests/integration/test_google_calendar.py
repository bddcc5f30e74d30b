"""A Google account end to end: busy times, write-back exactly once, failures, revocation.

Against the fake Google process; the app's own sync layer, booking service
and jobs do the work, as in production.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from jobs.calendar import write_back
from portal.booking import service as booking
from portal.calendars import busy_cache, sync
from portal.calendars.providers import CalendarRef, NotFound, RateLimited, Transient
from portal.calendars.providers.google.events import event_id_for
from portal.models import BusyBlock, Calendar, CalendarEvent, Connection, MeetingType, Outbox
from portal.org.users import create_user
from tests.support.clock import at, iso_z
from tests.support.oauth import PASSWORD, ctx_fixture, grant, oauth_app_fixture  # noqa: F401

EMAIL = "test.user@example.com"


def utc(day, hour, minute=0):
    """``hour:minute`` UTC, ``day`` days after the test clock's Monday (1 = Tuesday)."""
    return at(day, hour, minute)


def timed(event_id, start, end, **extra):
    return {
        "id": event_id,
        "summary": "Private",
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ")},
        **extra,
    }


@pytest.fixture
def host(ctx, fake_google):
    user = create_user("alice@example.com", PASSWORD, "alice", timezone="Europe/Berlin")
    MeetingType.create(user=user, slug="intro", name="Intro", duration_minutes=30)
    fake_google.add_calendar(calendar_id=EMAIL, summary="Test", primary=True)
    fake_google.add_calendar(calendar_id="team@example.com", summary="Team")
    # a colleague's calendar shared read-only: our scopes see its free/busy only
    fake_google.add_calendar(
        owner="bob@example.com", calendar_id="bob@example.com", roles={EMAIL: "reader"}
    )
    return user


@pytest.fixture
def conn(host):
    return grant(host, "google")


def intro(host):
    return MeetingType.get(MeetingType.user == host, MeetingType.slug == "intro")


def slots(host, day, now):
    return booking.available_slots(host, intro(host), utc(day, 0), utc(day + 1, 0), now=now)


def test_calendars_and_write_calendar(conn):
    rows = {c.external_id: c for c in Calendar.select().where(Calendar.connection == conn)}
    assert set(rows) == {EMAIL, "team@example.com", "bob@example.com"}
    assert rows[EMAIL].write and rows[EMAIL].writable and rows["team@example.com"].writable
    assert not rows["bob@example.com"].writable  # a reader calendar never receives bookings


def test_busy_blocks_slots(host, conn, fake_google, now):
    fake_google.put_events(EMAIL, [timed("busy0001", utc(1, 9), utc(1, 10))])
    fake_google.put_events(
        "team@example.com", [timed("free0001", utc(1, 11), utc(1, 12), transparency="transparent")]
    )
    fake_google.put_events("bob@example.com", [timed("bob00001", utc(1, 13), utc(1, 14))])
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    offered = slots(host, 1, now)
    assert utc(1, 8, 30) in offered and utc(1, 10) in offered
    assert utc(1, 9) not in offered and utc(1, 9, 30) not in offered
    assert utc(1, 11) in offered  # "show me as available"
    assert utc(1, 13) not in offered and utc(1, 13, 30) not in offered  # the colleague's calendar
    bob = Calendar.get(Calendar.external_id == "bob@example.com")
    assert '"mode": "freebusy"' in bob.sync_state  # events of calendars we do not own: free/busy


def test_second_refresh_is_incremental_and_410_reads_everything_again(host, conn, fake_google, now):
    fake_google.put_events(
        EMAIL, [timed("aaaa0001", utc(1, 9), utc(1, 10)), timed("bbbb0001", utc(2, 9), utc(2, 10))]
    )
    provider = sync.adapter(conn)
    work = Calendar.get(Calendar.external_id == EMAIL)
    assert busy_cache.sync_calendar(provider, work, host, now) == "full"
    assert busy_cache.sync_calendar(provider, Calendar.get_by_id(work.id), host, now) == "unchanged"
    fake_google.put_events(
        EMAIL, [timed("aaaa0001", utc(1, 14), utc(1, 15)), timed("cccc0001", utc(3, 9), utc(3, 10))]
    )
    assert (
        busy_cache.sync_calendar(provider, Calendar.get_by_id(work.id), host, now) == "incremental"
    )
    cached = sorted((b.start, b.end) for b in BusyBlock.select().where(BusyBlock.calendar == work))
    assert cached == [
        (utc(1, 14).replace(tzinfo=None), utc(1, 15).replace(tzinfo=None)),
        (utc(3, 9).replace(tzinfo=None), utc(3, 10).replace(tzinfo=None)),
    ]

    fake_google.expire_sync_tokens()  # the next sync token answers 410 GONE
    fake_google.put_events(EMAIL, [timed("dddd0001", utc(4, 9), utc(4, 10))])
    assert busy_cache.sync_calendar(provider, Calendar.get_by_id(work.id), host, now) == "full"
    cached = [(b.start, b.end) for b in BusyBlock.select().where(BusyBlock.calendar == work)]
    assert cached == [(utc(4, 9).replace(tzinfo=None), utc(4, 10).replace(tzinfo=None))]
    provider.close()


def book(host, start, now, name="Ada"):
    return booking.book(
        host, intro(host), start, name, f"{name.lower()}@example.com", now=now
    ).booking


def test_write_update_delete_exactly_once(host, conn, fake_google, now):
    b = book(host, utc(1, 9), now)
    assert write_back(b.id) == "written"
    [event] = fake_google.events(EMAIL)
    assert event["id"] == event_id_for(b.ical_uid)
    assert event["start"]["dateTime"] == iso_z(utc(1, 9))
    assert [a["email"] for a in event["attendees"]] == ["ada@example.com"]
    assert write_back(b.id) == "written"  # a second run changes nothing
    assert len(fake_google.events(EMAIL)) == 1

    moved = booking.reschedule(b, utc(2, 10), now=now)
    assert write_back(moved.id) == "written"
    [event] = fake_google.events(EMAIL)
    assert event["id"] == event_id_for(b.ical_uid) and event["start"]["dateTime"] == iso_z(
        utc(2, 10)
    )
    assert event["sequence"] == 1

    booking.cancel(moved, now=now)
    assert write_back(moved.id) == "deleted"
    assert fake_google.events(EMAIL) == []
    assert write_back(moved.id) == "nothing to delete"
    assert fake_google.inserts(EMAIL) == {event_id_for(b.ical_uid): 1}


def test_retry_after_a_lost_answer_does_not_duplicate(host, conn, fake_google, now):
    b = book(host, utc(1, 9), now)
    fake_google.fail(500, path="/events", method="POST", after=True)  # written, answer lost
    with pytest.raises(Transient):
        write_back(b.id)
    assert len(fake_google.events(EMAIL)) == 1
    assert CalendarEvent.get(CalendarEvent.booking == b).status == "pending"
    assert write_back(b.id) == "written"  # 409 duplicate → the existing event is kept
    assert len(fake_google.events(EMAIL)) == 1
    assert fake_google.inserts(EMAIL) == {event_id_for(b.ical_uid): 1}
    row = CalendarEvent.get(CalendarEvent.booking == b)
    assert (row.status, row.external_id) == ("written", event_id_for(b.ical_uid))


def test_rate_limit_and_server_errors_are_retried_later(host, conn, fake_google, now):
    fake_google.fail(429, retry_after=120, path="/calendars/", method="GET")
    assert sync.refresh_connection(conn.id, now=now) == "error"
    row = Connection.get_by_id(conn.id)
    assert row.next_sync_at == (now + timedelta(seconds=120)).replace(tzinfo=None)
    assert "slow down" in row.last_error
    assert sync.refresh_connection(conn.id, now=now) == "ok"

    b = book(host, utc(1, 9), now)
    fake_google.fail(429, retry_after=30, path="/events", method="POST")
    with pytest.raises(RateLimited) as err:
        write_back(b.id)
    assert err.value.retry_after == 30
    fake_google.fail(500, path="/events", method="POST")
    with pytest.raises(Transient):
        write_back(b.id)
    assert write_back(b.id) == "written"
    assert len(fake_google.events(EMAIL)) == 1


def test_a_slow_google_is_cut_off(host, conn, fake_google, now):
    fake_google.fail(0, delay=3, path="/calendarList")  # HTTP_TIMEOUT is 2 s
    assert sync.refresh_connection(conn.id, now=now) == "error"
    assert "did not answer in 2 s" in Connection.get_by_id(conn.id).last_error


def test_expired_access_token_is_refreshed_and_stored(host, conn, fake_google, now):
    before = sync.credentials(Connection.get_by_id(conn.id))
    fake_google.expire_access_tokens()
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    after = sync.credentials(Connection.get_by_id(conn.id))
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] == before["refresh_token"]  # Google keeps it
    assert fake_google.oauth_stats()["refresh_token"] == 1


def test_token_is_refreshed_before_it_expires(host, conn, fake_google, now):
    creds = sync.credentials(Connection.get_by_id(conn.id))
    sync.store_credentials(conn, creds | {"expires_at": int(datetime.now(UTC).timestamp()) + 30})
    fake_google.clear_log()
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    assert fake_google.oauth_stats()["refresh_token"] == 1
    assert all(r["status"] != 401 for r in fake_google.log())  # no failed call first


def test_revoked_grant_needs_reconnect_and_the_booking_page_keeps_serving(
    oauth_app, host, conn, fake_google, now
):
    fake_google.put_events(EMAIL, [timed("busy0001", utc(1, 9), utc(1, 10))])
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    fake_google.revoke()
    fake_google.expire_access_tokens()
    assert sync.refresh_connection(conn.id, now=now) == "needs_reconnect"
    assert sync.refresh_connection(conn.id, now=now) == "needs_reconnect"  # no retries
    assert Outbox.select().where(Outbox.kind == sync.ACTION_REQUIRED).count() == 1
    assert "Token has been expired or revoked" in Connection.get_by_id(conn.id).last_error

    # the cache still blocks the busy hour, and booking a free one still works
    offered = slots(host, 1, now)
    assert utc(1, 9) not in offered and utc(1, 10) in offered
    page = oauth_app.test_client().get("/alice/intro")
    assert page.status_code == 200
    b = book(host, utc(1, 10), now)
    assert write_back(b.id) == "failed"
    assert "reconnect" in CalendarEvent.get(CalendarEvent.booking == b).last_error


def test_freebusy_windows_are_chunked_and_joined(conn, fake_google):
    fake_google.put_events(
        EMAIL,
        [
            timed(
                "long0001",
                utc(60, 20),
                utc(61, 4),
            )
        ],
    )
    provider = sync.adapter(conn)
    fake_google.clear_log()
    start = utc(1, 0)
    result = provider.busy(
        [CalendarRef(EMAIL, "Europe/Berlin")], start, start + timedelta(days=200)
    )
    posts = fake_google.calls("POST", "/freeBusy")
    assert posts == 4  # 60-day pieces: Google refuses more than about three months at once
    # the event crosses the first chunk border (day 60) and comes back as one span
    border = start + timedelta(days=60)
    [span] = result[EMAIL]
    assert span.start < border < span.end
    provider.close()


def test_a_calendar_google_cannot_read_is_unknown_not_free(conn):
    provider = sync.adapter(conn)
    with pytest.raises(NotFound):
        provider.busy([CalendarRef("gone@example.com")], utc(1, 0), utc(2, 0))
    provider.close()


def test_calendar_list_is_paged(conn, fake_google):
    fake_google.page_size(1)
    provider = sync.adapter(conn)
    assert len(provider.list_calendars()) == 3
    provider.close()


def test_one_refresh_at_a_time_per_connection(host, conn, fake_google):
    """Two adapters with the same stale token refresh once; the second adopts the first's."""
    fake_google.expire_access_tokens()
    providers = [sync.adapter(Connection.get_by_id(conn.id)) for _ in range(2)]
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
    assert errors == []
    assert fake_google.oauth_stats()["refresh_token"] == 1
    assert providers[0].credentials["access_token"] == providers[1].credentials["access_token"]
