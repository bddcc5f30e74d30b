"""The slot engine's inputs read from the database, and the slots a host offers from them.

A host's rules (hours, overrides, notice), a meeting type's rules, the busy times cached
from the host's calendars and their confirmed bookings become the engine's plain values
(``portal.booking.availability``); pages and the API ask ``available_slots`` for starts.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from portal.booking import availability as engine
from portal.booking import busy_read, slot_memo
from portal.booking.hours import rules_of
from portal.models import (
    Booking,
    BookingAttendee,
    MeetingType,
    User,
    compiled_sql,
    db,
    to_db,
)


def host_rules(user: User) -> engine.HostRules:
    weekly, overrides = rules_of(user.id)
    return engine.HostRules(
        timezone=user.timezone,
        weekly={d: tuple(windows) for d, windows in weekly.items()},
        overrides={day: tuple(windows) for day, windows in overrides.items()},
        lead_time=timedelta(minutes=user.lead_time_minutes),
    )


def meeting_rules(mt: MeetingType) -> engine.MeetingRules:
    return engine.MeetingRules(
        slug=str(mt.id),
        duration=timedelta(minutes=mt.duration_minutes),
        buffer_before=timedelta(minutes=mt.buffer_before_minutes),
        buffer_after=timedelta(minutes=mt.buffer_after_minutes),
        lead_time=timedelta(minutes=mt.lead_time_minutes),
        window_days=mt.window_days,
        slot_interval=timedelta(minutes=mt.slot_interval_minutes)
        if mt.slot_interval_minutes
        else None,
        daily_limit=mt.daily_limit or None,
    )


def cached_busy(user: User, start: datetime, end: datetime) -> list[engine.Busy]:
    """Busy intervals from the free/busy cache of the host's conflict calendars.

    Only the window's rows are read, as integers straight from the driver's cursor
    (``busy_read``): a month page of a busy host reads thousands of them.
    """
    found = busy_read.rows(user.id, start, end)
    at = busy_read.instants(found)
    busy = engine.Busy
    return [busy(at[s], at[e], name) for s, e, name in found]


def _stored_instant(value: datetime | str) -> datetime:
    """A raw naive-UTC column value (SQLite gives ISO text, PostgreSQL a datetime) → aware."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def _bookings_query(excluding: bool):
    """``existing_bookings``'s query; parameters: user, user, "confirmed", lo, hi[, exclude]."""
    attending = BookingAttendee.select(BookingAttendee.booking).where(BookingAttendee.user == 0)
    query = Booking.select(
        Booking.start,
        Booking.end,
        Booking.buffer_before_minutes,
        Booking.buffer_after_minutes,
        Booking.meeting_type,
    ).where(
        (Booking.host == 0) | Booking.id.in_(attending),
        Booking.status == "confirmed",
        Booking.end > 0,
        Booking.start < 0,
    )
    return query.where(Booking.id != 0) if excluding else query


def existing_bookings(
    user: User, start: datetime, end: datetime, exclude: int | None = None
) -> list[engine.Booked]:
    # Meetings a co-worker booked with this user as an attendee block their time as well.
    # Only the columns the engine needs, SQL built once: this runs on every page view.
    sql = compiled_sql(
        "existing-bookings" if exclude is None else "existing-bookings-but",
        lambda: _bookings_query(exclude is not None),
    )
    lo, hi = to_db(start - timedelta(days=1)), to_db(end + timedelta(days=1))
    params = [user.id, user.id, "confirmed", Booking.end.db_value(lo), Booking.start.db_value(hi)]
    if exclude is not None:
        params.append(exclude)
    rows = cast(
        "Iterable[tuple[datetime | str, datetime | str, int, int, int | None]]",
        db.execute_sql(sql, params).fetchall(),
    )
    return [
        engine.Booked(
            start=_stored_instant(s),
            end=_stored_instant(e),
            buffer_before=timedelta(minutes=before),
            buffer_after=timedelta(minutes=after),
            meeting_type=str(type_id),
        )
        for s, e, before, after, type_id in rows
    ]


def available_slots(
    user: User,
    mt: MeetingType,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    exclude: int | None = None,
) -> list[datetime]:
    """Offered starts in [start, end), read from the cache; never waits on a provider.

    ``now`` is the caller's clock (``portal.clock.now()`` in views and jobs).
    ``exclude`` leaves one booking out, so rescheduling it can offer its neighbours.
    """
    rules, mrules = host_rules(user), meeting_rules(mt)
    earliest = max(start, now + max(rules.lead_time, mrules.lead_time))
    latest = now + timedelta(days=mrules.window_days)  # inclusive
    if earliest >= min(end, latest + TICK):
        return []
    # The engine runs over whole UTC days with "now" floored to the hour (and the window a
    # day longer to make up for it), and its answer is cut to exactly this request: page
    # views in every time zone, all hour long, share one memo entry. Slots do not depend
    # on the range asked, and lead time and window only cut them at either end.
    as_of = now.replace(minute=0, second=0, microsecond=0)
    wide = replace(mrules, window_days=mrules.window_days + 1)
    span_lo = _utc_midnight(earliest)
    span_hi = _utc_midnight(min(end, latest + TICK) - TICK) + _DAY
    # The busy time a slot or its buffers can reach, in whole UTC days.
    read_lo = _utc_midnight(span_lo - mrules.buffer_before)
    read_hi = _utc_midnight(span_hi + mrules.duration + mrules.buffer_after - TICK) + _DAY
    busy_key, busy = slot_memo.merged_busy(user.id, read_lo, read_hi)
    pad = timedelta(days=2)
    booked = existing_bookings(user, span_lo - pad, span_hi + pad, exclude=exclude)
    found = slot_memo.slots(
        busy_key,
        rules,
        wide,
        booked,
        as_of,
        span_lo,
        span_hi,
        lambda: engine.slots(rules, wide, slot_memo.as_busy(busy), booked, as_of, span_lo, span_hi),
    )
    return found[bisect_left(found, earliest) : bisect_right(found, min(latest, end - TICK))]


_DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


def _utc_midnight(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def local_day_range(day_from: date, day_to: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants covering local days ``day_from``..``day_to`` inclusive in ``tz``."""
    start = datetime.combine(day_from, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day_to + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end
