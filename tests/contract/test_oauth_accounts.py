"""What every OAuth provider (Google, Microsoft) does the same, through the app end to end.

Each case runs once per ``oauth_<name>`` fixture of tests/contract/harnesses/
against that provider's fake process: the app's own sync layer, booking
service and jobs do the work, as in production. What only one provider does
stays in tests/integration/test_google_calendar.py / test_microsoft_calendar.py.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask import current_app

from jobs.calendar import write_back
from portal.booking import service as booking
from portal.calendars import sync
from portal.calendars.providers import RateLimited, Transient
from portal.models import Calendar, CalendarEvent, Connection, Outbox
from tests.support.booking import book, make_host, slots, utc
from tests.support.oauth import ctx_fixture, grant, oauth_app_fixture  # noqa: F401


@pytest.fixture
def host(ctx, oauth_account):
    return make_host()


@pytest.fixture
def conn(host, oauth_account):
    return grant(host, oauth_account.provider)


def test_write_update_delete_exactly_once(host, conn, oauth_account, now):
    account = oauth_account
    b = book(host, utc(1, 9), now)
    assert write_back(b.id) == "written"
    [event] = account.fake.events(account.calendar_id)
    assert account.is_booking(event, b.ical_uid)
    assert account.event_start(event) == account.written_start(utc(1, 9))
    assert account.attendees(event) == ["ada@example.com"]
    assert write_back(b.id) == "written"  # a second run changes nothing
    assert len(account.fake.events(account.calendar_id)) == 1

    moved = booking.reschedule(b, utc(2, 10), now=now)
    assert write_back(moved.id) == "written"
    [again] = account.fake.events(account.calendar_id)
    assert again["id"] == event["id"] and account.is_booking(again, b.ical_uid)
    assert account.event_start(again) == account.written_start(utc(2, 10))
    if account.sequence is not None:
        assert account.sequence(again) == 1

    booking.cancel(moved, now=now)
    assert write_back(moved.id) == "deleted"
    assert account.fake.events(account.calendar_id) == []
    assert write_back(moved.id) == "nothing to delete"
    assert account.creates() == {account.create_key(b.ical_uid): 1}


def test_retry_after_a_lost_answer_does_not_duplicate(host, conn, oauth_account, now):
    account = oauth_account
    b = book(host, utc(1, 9), now)
    # the provider creates the event, and its answer is lost
    account.fake.fail(account.lost_answer_status, path="/events", method="POST", after=True)
    with pytest.raises(Transient):
        write_back(b.id)
    assert len(account.fake.events(account.calendar_id)) == 1
    assert CalendarEvent.get(CalendarEvent.booking == b).status == "pending"
    assert write_back(b.id) == "written"  # the retry finds the event made before
    [event] = account.fake.events(account.calendar_id)
    assert account.is_booking(event, b.ical_uid)
    assert account.creates() == {account.create_key(b.ical_uid): account.creates_after_lost_answer}
    row = CalendarEvent.get(CalendarEvent.booking == b)
    assert (row.status, row.external_id) == ("written", event["id"])


def test_throttling_and_server_errors_are_retried_later(host, conn, oauth_account, now):
    account = oauth_account
    account.fake.fail(429, retry_after=120, path=account.read_path, method="GET")
    assert sync.refresh_connection(conn.id, now=now) == "error"
    row = Connection.get_by_id(conn.id)
    assert row.next_sync_at == (now + timedelta(seconds=120)).replace(tzinfo=None)
    assert "slow down" in row.last_error
    assert sync.refresh_connection(conn.id, now=now) == "ok"

    b = book(host, utc(1, 9), now)
    account.fake.fail(429, retry_after=30, path="/events", method="POST")
    with pytest.raises(RateLimited) as err:
        write_back(b.id)
    assert err.value.retry_after == 30
    account.fake.fail(503, retry_after=3, path="/events", method="POST")
    with pytest.raises(RateLimited):
        write_back(b.id)
    account.fake.fail(500, path="/events", method="POST")
    with pytest.raises(Transient):
        write_back(b.id)
    account.fake.fail(0, delay=3, path="/events", method="POST")  # slower than HTTP_TIMEOUT
    with pytest.raises(Transient):
        write_back(b.id)
    assert write_back(b.id) == "written"
    assert len(account.fake.events(account.calendar_id)) == 1


def test_an_expired_access_token_is_refreshed_and_stored(host, conn, oauth_account, now):
    fake = oauth_account.fake
    before = sync.credentials(Connection.get_by_id(conn.id))
    fake.expire_access_tokens()
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    after = sync.credentials(Connection.get_by_id(conn.id))
    assert after["access_token"] != before["access_token"]
    if oauth_account.rotates_refresh_tokens:
        # rotated, the new one sealed to the row, the old one spent
        assert after["refresh_token"] != before["refresh_token"]
        assert fake.oauth_stats()["live_refresh_tokens"] == 1
    else:
        assert after["refresh_token"] == before["refresh_token"]  # Google keeps it
    assert fake.oauth_stats()["refresh_token"] == 1
    fake.expire_access_tokens()
    assert sync.refresh_connection(conn.id, now=now) == "ok"  # works with the stored one
    assert fake.oauth_stats()["refresh_token"] == 2


def test_concurrent_refreshes_spend_the_refresh_token_once(conn, oauth_account):
    """Adapters with the same stale token refresh once; the others adopt the first's."""
    fake = oauth_account.fake
    fake.expire_access_tokens()
    providers = [sync.adapter(Connection.get_by_id(conn.id)) for _ in range(3)]
    app = current_app._get_current_object()
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
    assert fake.oauth_stats()["refresh_token"] == 1
    stored = sync.credentials(Connection.get_by_id(conn.id))
    assert all(p.credentials["access_token"] == stored["access_token"] for p in providers)
    assert all(p.credentials["refresh_token"] == stored["refresh_token"] for p in providers)


def test_revoked_grant_needs_reconnect_and_the_booking_page_keeps_serving(
    oauth_app, host, conn, oauth_account, now
):
    account = oauth_account
    account.fake.put_events(account.calendar_id, [account.busy_event(utc(1, 9), utc(1, 10))])
    assert sync.refresh_connection(conn.id, now=now) == "ok"
    calendars = Calendar.select().where(Calendar.connection == conn).count()
    account.fake.revoke()
    account.fake.expire_access_tokens()
    assert sync.refresh_connection(conn.id, now=now) == "needs_reconnect"
    assert sync.refresh_connection(conn.id, now=now) == "needs_reconnect"  # no retries
    assert Outbox.select().where(Outbox.kind == sync.ACTION_REQUIRED).count() == 1
    assert account.revoked_error in Connection.get_by_id(conn.id).last_error
    assert Calendar.select().where(Calendar.connection == conn).count() == calendars

    # the cache still blocks the busy hour, and booking a free one still works
    offered = slots(host, 1, now)
    assert utc(1, 9) not in offered and utc(1, 10) in offered
    page = oauth_app.test_client().get("/alice/intro")
    assert page.status_code == 200
    b = book(host, utc(1, 10), now)
    assert write_back(b.id) == "failed"
    assert "reconnect" in CalendarEvent.get(CalendarEvent.booking == b).last_error
