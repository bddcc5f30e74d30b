"""A Microsoft 365 account end to end: busy from calendarView, Graph's paging and throttling.

Against the fake Microsoft process; the app's own sync layer, booking service
and jobs do the work, as in production. What Microsoft does like every OAuth
provider (tokens, revocation, throttling, write-back exactly once) is in
tests/contract/test_oauth_accounts.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobs.outbox import run as run_outbox_row
from portal.calendars import sync
from portal.calendars.providers import CalendarRef
from portal.models import Outbox, from_db, to_db, utcnow
from tests.support.booking import assert_busy_types_decide, book, make_host, slots, utc
from tests.support.clock import day
from tests.support.oauth import ctx_fixture, grant, microsoft_account, oauth_app_fixture  # noqa: F401


def event(start, end, **extra):
    return {
        "subject": "Private",
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        **extra,
    }


@pytest.fixture
def host(ctx):
    return make_host()


@pytest.fixture
def cal(fake_microsoft, host):
    return microsoft_account(fake_microsoft)


@pytest.fixture
def conn(host, cal):
    return grant(host, "microsoft")


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
    assert_busy_types_decide(host, now)

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
