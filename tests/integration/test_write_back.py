"""Write-back of bookings into the host's CalDAV calendar (real Radicale), and refresh jobs."""

from __future__ import annotations

import icalendar
import pytest

from jobs import calendar as calendar_jobs
from jobs import outbox as outbox_jobs
from portal.booking import service as booking
from portal.booking.shape import booking_dict
from portal.calendars import refresh_queue, sync, write_back
from portal.calendars.providers import Transient
from portal.calendars.providers.caldav import CalDavProvider
from portal.calendars.providers.caldav.events import resource_name
from portal.models import Calendar, CalendarEvent, Connection, Outbox, db
from portal.runtime import worker
from portal.runtime.outbox import RETRY
from portal.runtime.queue import get_queue
from tests.support.clock import at
from tests.support.servers import TcpProxy

SLOT = at(1, 10, tz="Europe/Berlin")  # Tuesday after the test clock's Monday
LATER = at(2, 14, tz="Europe/Berlin")
LINK = "https://meet.example.com/intro-room"


@pytest.fixture
def ctx(app):
    with app.app_context(), db.connection_context():
        yield app


@pytest.fixture
def setup(ctx, hosts, radicale, now):
    """Alice with a Radicale account whose "Bookings" calendar receives bookings."""
    host = hosts.create("alice", tz="Europe/Berlin")
    mt = hosts.meeting_type(host, "intro", duration_minutes=30, location=LINK)
    user, password = radicale.add_user()
    bookings_url = radicale.make_calendar(user, "Bookings")
    proxy = TcpProxy(radicale.port).up()
    conn = sync.connect(host, "caldav", {"url": proxy.url, "username": user, "password": password})
    write = Calendar.get(Calendar.external_id == proxy.rewrite(bookings_url))
    sync.set_calendar_flags(write, write=True)
    sync.refresh_connection(conn.id, now=now)
    yield type(
        "Setup",
        (),
        {
            "host": host,
            "mt": mt,
            "conn": conn,
            "url": bookings_url,
            "proxy": proxy,
            "user": user,
            "radicale": radicale,
        },
    )
    proxy.down()


def run_write_backs(expect_error: type[Exception] | None = None) -> list[str]:
    """Run every write_back outbox row not done yet, oldest first (as the worker would)."""
    out = []
    for row in (
        Outbox.select()
        .where(Outbox.kind == "write_back", Outbox.status != "done")
        .order_by(Outbox.id)
    ):
        if expect_error:
            with pytest.raises(expect_error):
                outbox_jobs.run(row.id)
            out.append("raised")
        else:
            out.append(outbox_jobs.run(row.id))
    return out


def remote(setup):
    """The events in the Radicale calendar, read without the adapter."""
    events = []
    for name in setup.radicale.hrefs(setup.url, user=setup.user):
        cal = icalendar.Calendar.from_ical(setup.radicale.get(setup.url + name, user=setup.user))
        events += [(name, ev) for ev in cal.walk("VEVENT")]
    return events


def event_row(b):
    return CalendarEvent.get(CalendarEvent.booking == b)


def test_create_move_cancel_round_trip(setup, now):
    result = booking.book(setup.host, setup.mt, SLOT, "Ada Lovelace", "ada@example.com", now=now)
    b = result.booking
    assert event_row(b).status == "pending"
    assert booking_dict(b)["calendar_event"]["status"] == "pending"

    assert run_write_backs() == ["done"]
    row = event_row(b)
    assert row.status == "written" and row.etag
    [(name, ev)] = remote(setup)
    assert name == resource_name(b.ical_uid)
    assert ev["UID"] == b.ical_uid
    assert ev["DTSTART"].dt == SLOT
    assert str(ev["ATTENDEE"]) == "mailto:ada@example.com"
    assert ev["ATTENDEE"].params["SCHEDULE-AGENT"] == "CLIENT"
    assert str(ev["LOCATION"]) == LINK
    assert booking_dict(b)["calendar_event"] == {
        "status": "written",
        "calendar_id": row.calendar_id,
    }

    moved = booking.reschedule(b, LATER, now=now)
    assert event_row(moved).id == row.id  # the link followed the booking
    run_write_backs()
    [(name2, ev)] = remote(setup)
    assert name2 == name and ev["DTSTART"].dt == LATER and ev["SEQUENCE"] == 1
    assert event_row(moved).status == "written"

    booking.cancel(moved, now=now)
    run_write_backs()
    assert remote(setup) == []
    assert event_row(moved).status == "deleted"


def test_retry_after_lost_response_makes_no_second_event(setup, now, monkeypatch):
    """The provider wrote the event but the answer never arrived: the retry finds it."""
    real_create = CalDavProvider.create_event
    calls = []

    def create_then_lose_response(self, calendar_id, event):
        calls.append(real_create(self, calendar_id, event))
        raise Transient("connection reset while reading the response")

    monkeypatch.setattr(CalDavProvider, "create_event", create_then_lose_response)
    b = booking.book(setup.host, setup.mt, SLOT, "Ada", "ada@example.com", now=now).booking
    assert run_write_backs(expect_error=Transient) == ["raised"]
    assert len(calls) == 1 and len(remote(setup)) == 1  # written, though we did not hear so
    row = event_row(b)
    assert row.status == "pending" and row.external_id == "" and "reset" in row.last_error

    monkeypatch.setattr(CalDavProvider, "create_event", real_create)
    assert run_write_backs() == ["done"]
    assert len(remote(setup)) == 1
    assert event_row(b).status == "written"
    assert event_row(b).external_id == calls[0].external_id


def test_final_failure_shows_on_the_booking_and_the_host_can_retry(setup, now):
    b = booking.book(setup.host, setup.mt, SLOT, "Ada", "ada@example.com", now=now).booking
    setup.proxy.down()
    [row] = Outbox.select().where(Outbox.kind == "write_back")
    for _ in range(RETRY.max):
        with pytest.raises(Transient):
            outbox_jobs.run(row.id)
        assert event_row(b).status == "pending"
    outbox_jobs.run(row.id)  # the last attempt gives up without raising
    assert event_row(b).status == "failed" and event_row(b).last_error
    assert booking_dict(b)["calendar_event"]["status"] == "failed"

    setup.proxy.up()
    assert write_back.retry_write_back(b)
    assert event_row(b).status == "pending" and event_row(b).attempts == 0
    assert run_write_backs() == ["done"]
    assert event_row(b).status == "written" and len(remote(setup)) == 1


def test_refused_credentials_stop_write_back_and_need_reconnect(setup, now):
    b = booking.book(setup.host, setup.mt, SLOT, "Ada", "ada@example.com", now=now).booking
    sync.store_credentials(setup.conn, {"password": "revoked"})
    assert run_write_backs() == ["done"]  # no retry storm
    assert event_row(b).status == "failed"
    assert Connection.get_by_id(setup.conn.id).status == "needs_reconnect"
    assert Outbox.select().where(Outbox.kind == "host_action_required").count() == 1


def test_cancel_before_the_create_ran_writes_nothing(setup, now):
    b = booking.book(setup.host, setup.mt, SLOT, "Ada", "ada@example.com", now=now).booking
    booking.cancel(b, now=now)
    run_write_backs()
    assert remote(setup) == []
    assert event_row(b).status == "deleted"


def test_no_write_calendar_no_event(setup, now):
    sync.set_calendar_flags(write_back.write_calendar(setup.host), write=False)
    b = booking.book(setup.host, setup.mt, SLOT, "Ada", "ada@example.com", now=now).booking
    assert CalendarEvent.select().where(CalendarEvent.booking == b).count() == 0
    assert run_write_backs() == ["done"]
    assert remote(setup) == []


def test_event_deleted_by_the_host_is_written_again_on_reschedule(setup, now):
    b = booking.book(setup.host, setup.mt, SLOT, "Ada", "ada@example.com", now=now).booking
    run_write_backs()
    [(name, _)] = remote(setup)
    setup.radicale.delete(setup.url + name, user=setup.user)
    booking.reschedule(b, LATER, now=now)
    run_write_backs()
    [(_, ev)] = remote(setup)
    assert ev["DTSTART"].dt == LATER


# ---------------------------------------------------------------- refresh jobs


def test_refresh_jobs_are_deduplicated_and_periodic(setup, now):
    assert any(task is refresh_queue.enqueue_due_refreshes for _, task in worker.PERIODIC)
    queue = get_queue()
    queue.empty()
    job_id = refresh_queue.refresh_job_id(setup.conn.id)
    assert refresh_queue.request_refresh(setup.conn)
    assert not refresh_queue.request_refresh(setup.conn)  # already waiting
    assert queue.job_ids.count(job_id) == 1
    assert Connection.get_by_id(setup.conn.id).status == "syncing"
    assert refresh_queue.enqueue_due_refreshes(now) == 0  # due, but its job is already queued

    queue.empty()
    assert calendar_jobs.refresh(setup.conn.id) == "ok"
    conn = Connection.get_by_id(setup.conn.id)
    assert conn.status == "ok" and conn.next_sync_at is not None
    assert refresh_queue.enqueue_due_refreshes() == 0  # not due again yet
    Connection.update(next_sync_at=None).where(Connection.id == conn.id).execute()
    assert refresh_queue.enqueue_due_refreshes() == 1
