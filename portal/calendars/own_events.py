"""Kairos's own events in a host's calendar are not external busy time.

Write-back puts every booking into the host's write calendar under the
booking's iCalendar UID (``Booking.ical_uid``, kept across reschedules). Read
back by a refresh or the confirm-time re-check, that event would block the
very time its booking already blocks (``existing_bookings``, with the
booking's buffers) — and make a lost race look like "not available", or keep
the old time of a moved booking busy. Spans whose UID belongs to one of the
host's bookings (any status: a cancelled or moved booking's event is on its
way out) are therefore dropped. Providers that report no UIDs (free/busy
queries) are handled where the answer is given (``portal.booking.service``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import cast

from portal.calendars.providers import BusyChanges, BusyInterval
from portal.models import Booking, BookingAttendee, User, to_db


def booking_uids(user: User, start: datetime, end: datetime) -> set[str]:
    """iCalendar UIDs of the bookings of ``user`` (host or attendee) touching ``[start, end)``."""
    attending = BookingAttendee.select(BookingAttendee.booking).where(BookingAttendee.user == user)
    query = Booking.select(Booking.ical_uid).where(
        (Booking.host == user) | Booking.id.in_(attending),
        Booking.end > to_db(start - timedelta(days=1)),
        Booking.start < to_db(end + timedelta(days=1)),
    )
    rows = cast("Iterable[tuple[str]]", query.tuples())
    return {uid for (uid,) in rows if uid}


def drop_own(spans: Iterable[BusyInterval], uids: set[str]) -> list[BusyInterval]:
    return [s for s in spans if not (s.uid and s.uid in uids)]


def external_only(
    user: User, spans: Sequence[BusyInterval], start: datetime, end: datetime
) -> list[BusyInterval]:
    """``spans`` without the host's own bookings' events (one query, only when UIDs came)."""
    if not any(s.uid for s in spans):
        return list(spans)
    return drop_own(spans, booking_uids(user, start, end))


def external_changes(
    user: User, changes: BusyChanges, window: tuple[datetime, datetime]
) -> BusyChanges:
    """A refresh's changes without the host's own bookings' events.

    A source event that is entirely Kairos's keeps its key with no spans, so
    an incremental refresh still removes what was cached under it.
    """
    if changes.unchanged or not any(s.uid for spans in changes.busy.values() for s in spans):
        return changes
    uids = booking_uids(user, *window)
    if not uids:
        return changes
    busy = {source: tuple(drop_own(spans, uids)) for source, spans in changes.busy.items()}
    if changes.full:
        busy = {source: spans for source, spans in busy.items() if spans}
    return dataclasses.replace(changes, busy=busy)
