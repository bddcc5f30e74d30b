"""Calendar jobs: the free/busy refresh of a connection, and writing bookings back.

Both take ids, re-read the database and are safe to run twice:

* ``refresh(connection_id)`` — enqueued with one job id per connection
  (``portal.calendars.refresh_queue.enqueue_refresh``), and guarded by a Redis lock, so two
  refreshes of one account never interleave their cursors.
* ``write_back`` — an outbox handler run for every booking event. It does
  not replay the event; it makes the host's calendar match the booking *as
  it is now* (confirmed → the event exists at this time; cancelled → it is
  gone). The adapters create events at an id derived from the booking's
  iCalendar UID, so a retry after the provider already wrote (a lost
  response, a crash before our commit) finds that event instead of making a
  second one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace

from flask_babel import gettext as _
from redis.exceptions import LockError

from jobs.outbox import handler
from portal import i18n
from portal.booking import locations
from portal.booking.questions import answers_text
from portal.calendars import sync
from portal.calendars.providers import (
    CalendarProvider,
    CredentialsInvalid,
    EventData,
    NotFound,
    ProviderError,
    Transient,
    WrittenEvent,
)
from portal.calendars.write_back import attach_calendar_event
from portal.models import (
    Booking,
    BookingAttendee,
    Calendar,
    CalendarEvent,
    Connection,
    User,
    db,
    to_db,
    utcnow,
)
from portal.notify.ical import meeting_link, meeting_title, summary
from portal.runtime.lease import lease_seconds, renewing
from portal.runtime.outbox import RETRY
from portal.runtime.queue import get_redis

log = logging.getLogger(__name__)


@contextmanager
def redis_lock(name: str, blocking_timeout: float) -> Iterator[bool]:
    """A Redis lock held as a lease; yields whether it was acquired (released on exit).

    It expires one lease (``OUTBOX_LEASE_SECONDS``) after its holder stops renewing
    it, so a worker killed while holding it blocks the booking for about a minute,
    not for as long as the slowest honest run could take.
    """
    lease = lease_seconds()
    # thread_local=False: the renewing thread must see the token this thread acquired.
    lock = get_redis().lock(f"kairos:lock:{name}", timeout=lease, thread_local=False)
    acquired = lock.acquire(blocking=blocking_timeout > 0, blocking_timeout=blocking_timeout)
    if not acquired:
        yield False
        return
    try:
        with renewing(lock.reacquire, every=lease / 4, what=f"lock {name}"):
            yield True
    finally:
        with suppress(LockError):  # expired meanwhile (Redis restarted): nothing to release
            lock.release()


def refresh(connection_id: int) -> str:
    """Refresh one connection's calendars and busy cache (incremental where possible)."""
    with redis_lock(f"refresh:{connection_id}", blocking_timeout=0) as acquired:
        if not acquired:
            return "already running"
        with db.connection_context():
            return sync.refresh_connection(connection_id)


# ---------------------------------------------------------------- write-back


def event_data(booking: Booking) -> EventData:
    """What the host's calendar shows for a booking, its texts in the host's language."""
    host: User = booking.host
    with i18n.in_locale(host.locale):
        return _event_data(booking, host)


def _event_data(booking: Booking, host: User) -> EventData:
    who = f"{booking.invitee_name} <{booking.invitee_email}>"
    lines = [_("Booked through Kairos by %(who)s.", who=who)]
    if booking.notes:
        lines += ["", _("Notes:"), booking.notes]
    answers = answers_text(booking.answer_list())
    if answers:
        lines += ["", answers]
    link = meeting_link(booking)
    if link:
        lines += ["", _("Where: %(link)s", link=link)]
    return EventData(
        booking_uid=booking.uid,
        ical_uid=booking.ical_uid,
        summary=summary(booking, host) or meeting_title(booking),
        description="\n".join(lines),
        start=booking.start_utc,
        end=booking.end_utc,
        attendee_name=booking.invitee_name,
        attendee_email=booking.invitee_email,
        location=link,
        sequence=booking.sequence,
        organizer_name=host.display_name,
        organizer_email=host.email,
        timezone=host.timezone,
        more_attendees=tuple(
            (a.name, a.email)
            for a in BookingAttendee.select()
            .where(BookingAttendee.booking == booking.id)
            .order_by(BookingAttendee.id)
            if a.email != booking.invitee_email
        ),
    )


def put_event(
    provider: CalendarProvider, calendar_id: str, external_id: str, etag: str, data: EventData
) -> WrittenEvent:
    """Move the event written before to ``data``, or write it (again, if it was deleted)."""
    if external_id:
        try:
            return provider.update_event(calendar_id, external_id, data, etag)
        except NotFound:
            pass  # deleted in the calendar meanwhile: write it again
    return provider.create_event(calendar_id, data)


def _fail(row: CalendarEvent, message: str) -> None:
    CalendarEvent.update(
        status="failed", last_error=message[:2000], updated_at=to_db(utcnow())
    ).where(CalendarEvent.id == row.id).execute()
    # No event, so no Meet/Teams link either: the host is told (portal.booking.locations).
    locations.record_failed(row.booking_id, f"the calendar event could not be written: {message}")


@handler("write_back")
def write_back(booking_id: int, event: str = "", **_: object) -> str:
    """Make the host's write calendar match this booking (see the module docstring).

    Transient provider errors are raised so RQ retries with backoff
    (``portal.runtime.outbox.RETRY``); the last attempt marks the event ``failed``,
    which the host sees on the booking with a retry action. Refused
    credentials mark the account ``needs_reconnect`` and stop at once.
    """
    return one_at_a_time("write-back", booking_id, _write_back)


def one_at_a_time(name: str, booking_id: int, work: Callable[[int], str]) -> str:
    """Run ``work(booking_id)`` holding a lock on the booking's calendar identity.

    A reschedule or cancel shares its iCalendar UID with the create, so this keeps
    a cancel from racing its own create. A busy lock is Transient: RQ retries later.
    """
    with db.connection_context():
        booking = Booking.get_or_none(Booking.id == booking_id)
        if booking is None:
            return "gone"
        ical_uid = booking.ical_uid
    with redis_lock(f"{name}:{ical_uid}", blocking_timeout=60) as acquired:
        if not acquired:
            raise Transient(f"another {name} run of this booking is still running")
        with db.connection_context():
            return work(booking_id)


def _row_for(booking: Booking) -> CalendarEvent | None:
    return (
        CalendarEvent.select()
        .where(CalendarEvent.booking == booking)
        .order_by(CalendarEvent.id.desc())
        .first()
    )


def _write_back(booking_id: int) -> str:
    booking = Booking.get_by_id(booking_id)
    row = _row_for(booking)
    wanted = booking.status == "confirmed"
    if row is None:
        if not wanted:
            return "nothing to do"
        row = attach_calendar_event(booking)
        if row is None:
            locations.record_failed(booking.id, "no calendar receives new bookings")
            return "no write calendar"
    if not wanted and (row.status == "deleted" or not row.external_id):
        CalendarEvent.update(status="deleted", updated_at=to_db(utcnow())).where(
            CalendarEvent.id == row.id
        ).execute()
        return "nothing to delete"
    calendar = Calendar.get_or_none(Calendar.id == row.calendar_id) if row.calendar_id else None
    if calendar is None:
        _fail(row, "the calendar was disconnected")
        return "failed"
    conn = Connection.get_by_id(calendar.connection_id)
    if conn.status == "needs_reconnect":
        _fail(row, "the calendar account needs to be reconnected")
        return "failed"
    CalendarEvent.update(attempts=CalendarEvent.attempts + 1).where(
        CalendarEvent.id == row.id
    ).execute()
    try:
        provider = sync.adapter(conn)
    except sync.crypto.SecretError as exc:
        sync.mark_needs_reconnect(conn, str(exc))
        _fail(row, str(exc))
        return "failed"
    try:
        if wanted:
            # Only the main event asks for a Meet/Teams conference; copies just show the link.
            data = replace(event_data(booking), conference=locations.conference_for(booking))
            written = put_event(provider, calendar.external_id, row.external_id, row.etag, data)
            CalendarEvent.update(
                status="written",
                external_id=written.external_id,
                etag=written.etag[:255],
                last_error="",
                attempts=0,
                updated_at=to_db(utcnow()),
            ).where(CalendarEvent.id == row.id).execute()
            locations.record_written(booking.id, written.join_url, written.conference_error)
            return "written"
        provider.delete_event(calendar.external_id, row.external_id, row.etag)
        CalendarEvent.update(
            status="deleted", last_error="", attempts=0, updated_at=to_db(utcnow())
        ).where(CalendarEvent.id == row.id).execute()
        return "deleted"
    except CredentialsInvalid as exc:
        sync.mark_needs_reconnect(conn, str(exc))
        _fail(row, f"the calendar account refused our credentials: {exc}")
        return "failed"
    except ProviderError as exc:
        attempts = CalendarEvent.get_by_id(row.id).attempts
        if exc.retryable and attempts <= RETRY.max:
            CalendarEvent.update(last_error=str(exc)[:2000]).where(
                CalendarEvent.id == row.id
            ).execute()
            raise  # RQ retries with backoff
        _fail(row, str(exc) or type(exc).__name__)
        return "failed"
    finally:
        provider.close()
