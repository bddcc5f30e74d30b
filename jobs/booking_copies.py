"""Copies of bookings in *additional booking calendars* (``Calendar.copy_bookings``).

An Exchange member may mark their calendar as an additional booking
calendar (``portal.calendars.exchange_org``): every booking of theirs is then written
there as well as to the main booking calendar. Like ``write_back``, the job
makes each copy match the booking *as it is now* (confirmed → the copy exists
at this time; cancelled or moved away → it is gone), takes ids, and is safe
to run twice: adapters find a copy an earlier, interrupted run created
through the booking's iCalendar UID.
"""

from __future__ import annotations

import logging

from jobs.calendar import event_data, one_at_a_time, put_event
from jobs.outbox import handler
from portal.calendars import sync
from portal.calendars.providers import CredentialsInvalid, ProviderError
from portal.models import Booking, BookingCopy, Calendar, Connection, to_db, utcnow
from portal.runtime.outbox import RETRY

log = logging.getLogger(__name__)


@handler("booking_copies")
def booking_copies(booking_id: int, event: str = "", **_: object) -> str:
    """Bring every copy of this booking in line; one run per calendar identity at a time."""
    return one_at_a_time("booking-copies", booking_id, _sync_copies)


def _targets(booking: Booking) -> list[Calendar]:
    return list(
        Calendar.select()
        .join(Connection)
        .where(Connection.user == booking.host_id, Calendar.copy_bookings == True)  # noqa: E712
        .order_by(Calendar.id)
    )


def _sync_copies(booking_id: int) -> str:
    booking = Booking.get_by_id(booking_id)
    if booking.rescheduled_from_id:
        # the copies follow the booking that replaced the old one (like the main event)
        BookingCopy.update(booking=booking).where(
            BookingCopy.booking == booking.rescheduled_from_id
        ).execute()
    wanted = booking.status == "confirmed"
    rows = {r.calendar_id: r for r in BookingCopy.select().where(BookingCopy.booking == booking)}
    if wanted:
        for calendar in _targets(booking):
            if calendar.id not in rows:
                rows[calendar.id] = BookingCopy.create(
                    booking=booking, calendar=calendar, updated_at=to_db(utcnow())
                )
    outcomes = []
    retry: ProviderError | None = None
    for row in rows.values():
        try:
            outcomes.append(_sync_one(booking, row, wanted))
        except ProviderError as exc:  # retryable, and attempts left: try the others first
            retry = exc
    if retry is not None:
        raise retry  # RQ retries with backoff (portal.runtime.outbox.RETRY)
    return ",".join(outcomes) or "no additional calendars"


def _mark(row: BookingCopy, **fields: object) -> None:
    BookingCopy.update(updated_at=to_db(utcnow()), **fields).where(
        BookingCopy.id == row.id
    ).execute()


def _sync_one(booking: Booking, row: BookingCopy, wanted: bool) -> str:
    if not wanted and (row.status == "deleted" or not row.external_id):
        _mark(row, status="deleted")
        return "deleted"
    calendar = Calendar.get_or_none(Calendar.id == row.calendar_id) if row.calendar_id else None
    if calendar is None:
        _mark(row, status="failed", last_error="the calendar was disconnected")
        return "failed"
    conn = Connection.get_by_id(calendar.connection_id)
    if conn.status == "needs_reconnect":
        _mark(row, status="failed", last_error="the calendar account needs to be reconnected")
        return "failed"
    BookingCopy.update(attempts=BookingCopy.attempts + 1).where(BookingCopy.id == row.id).execute()
    try:
        provider = sync.adapter(conn)
    except sync.crypto.SecretError as exc:
        sync.mark_needs_reconnect(conn, str(exc))
        _mark(row, status="failed", last_error=str(exc))
        return "failed"
    try:
        if wanted:
            data = event_data(booking)
            written = put_event(provider, calendar.external_id, row.external_id, row.etag, data)
            _mark(
                row,
                status="written",
                external_id=written.external_id,
                etag=written.etag[:255],
                last_error="",
                attempts=0,
            )
            return "written"
        provider.delete_event(calendar.external_id, row.external_id, row.etag)
        _mark(row, status="deleted", last_error="", attempts=0)
        return "deleted"
    except CredentialsInvalid as exc:
        sync.mark_needs_reconnect(conn, str(exc))
        _mark(
            row, status="failed", last_error=f"the calendar account refused our credentials: {exc}"
        )
        return "failed"
    except ProviderError as exc:
        attempts = BookingCopy.get_by_id(row.id).attempts
        if exc.retryable and attempts <= RETRY.max:
            _mark(row, last_error=str(exc)[:2000])
            raise
        _mark(row, status="failed", last_error=(str(exc) or type(exc).__name__)[:2000])
        return "failed"
    finally:
        provider.close()
