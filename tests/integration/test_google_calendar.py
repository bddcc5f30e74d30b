"""A Google account end to end: calendars, busy times, incremental reads, Google's limits.

Against the fake Google process; the app's own sync layer does the work, as
in production. What Google does like every OAuth provider (tokens, revocation,
throttling, write-back exactly once) is in tests/contract/test_oauth_accounts.py.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from portal.calendars import busy_cache, sync
from portal.calendars.providers import CalendarRef, NotFound
from portal.models import BusyBlock, Calendar, Connection
from tests.support.booking import make_host, slots, utc
from tests.support.oauth import EMAIL, ctx_fixture, google_account, grant, oauth_app_fixture  # noqa: F401


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
    google_account(fake_google)
    return make_host()


@pytest.fixture
def conn(host):
    return grant(host, "google")


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


def test_a_slow_google_is_cut_off(host, conn, fake_google, now):
    fake_google.fail(0, delay=3, path="/calendarList")  # HTTP_TIMEOUT is 2 s
    assert sync.refresh_connection(conn.id, now=now) == "error"
    assert "did not answer in 2 s" in Connection.get_by_id(conn.id).last_error
    # The fake (one process for the session) still holds the request we gave up on: let it
    # answer here, not in the middle of the next test's log.
    deadline = time.monotonic() + 10
    while not fake_google.calls("GET", "/calendarList") and time.monotonic() < deadline:
        time.sleep(0.1)


def test_token_is_refreshed_before_it_expires(host, conn, fake_google, now):
    creds = sync.credentials(Connection.get_by_id(conn.id))
    sync.store_credentials(conn, creds | {"expires_at": int(datetime.now(UTC).timestamp()) + 30})
    fake_google.clear_log()
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    assert fake_google.oauth_stats()["refresh_token"] == 1
    assert all(r["status"] != 401 for r in fake_google.log())  # no failed call first


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
