"""Write-back bookkeeping: the host's write calendar, the event a booking owes it, retries.

The write itself is a job (``jobs.calendar.write_back``); these rows record
that it is owed, in the booking's own transaction.
"""

from __future__ import annotations

from typing import Any

from portal.database import write_transaction
from portal.models import (
    Calendar,
    CalendarEvent,
    Connection,
    Outbox,
    User,
    compiled_sql,
    insert_instance,
)


def write_calendar(user: User) -> Calendar | None:
    """The host's one calendar that receives new bookings."""
    sql = compiled_sql(
        "write-calendar",
        lambda: (
            Calendar.select().join(Connection).where(Connection.user == 0, Calendar.write == True)  # noqa: E712
        ),
    )
    return next(iter(Calendar.raw(sql, user.id, True)), None)


def attach_calendar_event(booking: Any) -> CalendarEvent | None:
    """Record, with the booking, that its event is owed to the host's write calendar."""
    calendar = write_calendar(booking.host)
    if calendar is None:
        return None
    event = CalendarEvent(booking=booking, calendar=calendar, status="pending")
    return insert_instance(event)


def retry_write_back(booking: Any) -> bool:
    """The host's "retry" on a failed calendar event: reset it and record a new write-back."""
    from portal.runtime.outbox import relay_quietly

    with write_transaction():
        changed = (
            CalendarEvent.update(status="pending", attempts=0, last_error="")
            .where(CalendarEvent.booking == booking, CalendarEvent.status == "failed")
            .execute()
        )
        if changed:
            Outbox.add("write_back", booking_id=booking.id, event="retry")
    if changed:
        relay_quietly()
    return bool(changed)
