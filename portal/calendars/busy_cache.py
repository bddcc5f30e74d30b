"""The free/busy cache of one calendar: its window, its provider cursor and its blocks.

A refresh reads what changed since the stored cursor (incremental where the
adapter allows) and writes it in one transaction; the window reaches a day
back and a week beyond the longest booking window, and a full read is due
once bookings can reach past it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from portal.calendars import own_events
from portal.calendars.providers import BusyChanges, CalendarProvider, CalendarRef, SyncTokenExpired
from portal.database import write_transaction
from portal.models import BusyBlock, Calendar, MeetingType, User, to_db

PAST_DAYS = 1  # the cache keeps a day of the past (events running now)
SLACK_DAYS = 7  # the cached window reaches this far beyond what bookings need


def zone_for(calendar: Calendar, user: User) -> str:
    """All-day events and floating times: the calendar's zone, else the host's."""
    return calendar.timezone or user.timezone or "UTC"


def calendar_ref(calendar: Calendar, user: User) -> CalendarRef:
    """What an adapter needs to know of a calendar row."""
    return CalendarRef(calendar.external_id, zone_for(calendar, user), calendar.all_busy)


def horizon_days(user: User) -> int:
    """How far ahead bookings can reach: the longest booking window of the host's types."""
    longest = (
        MeetingType.select(MeetingType.window_days)
        .where(MeetingType.user == user, MeetingType.is_active == True)  # noqa: E712
        .order_by(MeetingType.window_days.desc())
        .scalar()
    )
    return int(longest or 60) + 1


def _source_key(source: str) -> str:
    """BusyBlock.external_id is a 255-character column; long hrefs are hashed."""
    if len(source) <= 200:
        return source
    return "sha256:" + hashlib.sha256(source.encode()).hexdigest()


def apply_changes(
    calendar: Calendar, changes: BusyChanges, window: tuple[datetime, datetime], now: datetime
) -> None:
    """Write one calendar's :class:`BusyChanges` into the cache, in one transaction."""
    state = {
        "window": [window[0].isoformat(), window[1].isoformat()],
        "cursor": dict(changes.state),
    }
    with write_transaction():
        if changes.full:
            BusyBlock.delete().where(BusyBlock.calendar == calendar).execute()
        elif not changes.unchanged:
            touched = [_source_key(s) for s in set(changes.busy) | set(changes.removed)]
            for i in range(0, len(touched), 500):
                BusyBlock.delete().where(
                    BusyBlock.calendar == calendar, BusyBlock.external_id.in_(touched[i : i + 500])
                ).execute()
        if not changes.unchanged:
            rows = [
                BusyBlock.row(calendar.id, span.start, span.end, _source_key(source))
                for source, spans in changes.busy.items()
                for span in spans
            ]
            for i in range(0, len(rows), 500):
                BusyBlock.insert_many(rows[i : i + 500]).execute()
        # Blocks that ended before the window are no use to anyone.
        BusyBlock.delete().where(
            BusyBlock.calendar == calendar, BusyBlock.end < to_db(window[0])
        ).execute()
        Calendar.update(sync_state=json.dumps(state), last_synced_at=to_db(now)).where(
            Calendar.id == calendar.id
        ).execute()


def full_window(user: User, now: datetime) -> tuple[datetime, datetime]:
    """What a full read caches: a day back, and a week beyond the longest booking window."""
    return (
        now - timedelta(days=PAST_DAYS),
        now + timedelta(days=horizon_days(user) + SLACK_DAYS),
    )


def _window_and_cursor(
    calendar: Calendar, user: User, now: datetime
) -> tuple[tuple[datetime, datetime], dict]:
    """Reuse the cached window and cursor while it still covers what bookings need.

    Recurring events were expanded inside the cached window, so once bookings
    can reach past its end a full read (with a new window) is due.
    """
    needed_end = now + timedelta(days=horizon_days(user))
    try:
        state = json.loads(calendar.sync_state or "{}")
        start, end = (datetime.fromisoformat(v) for v in state["window"])
        if end >= needed_end and state.get("cursor"):
            return (start, end), dict(state["cursor"])
    except (KeyError, ValueError, TypeError):
        pass
    return full_window(user, now), {}


def sync_calendar(provider: CalendarProvider, calendar: Calendar, user: User, now: datetime) -> str:
    """Refresh one calendar's cache; returns "full", "incremental" or "unchanged"."""
    window, cursor = _window_and_cursor(calendar, user, now)
    ref = calendar_ref(calendar, user)
    try:
        changes = provider.sync_busy(ref, window[0], window[1], cursor)
    except SyncTokenExpired:
        window = full_window(user, now)
        changes = provider.sync_busy(ref, window[0], window[1], {})
    changes = own_events.external_changes(user, changes, window)
    apply_changes(calendar, changes, window, now)
    return "unchanged" if changes.unchanged else "full" if changes.full else "incremental"


def stored_cursor(calendar: Calendar) -> dict:
    """The provider cursor the calendar's last refresh stored ({} when none)."""
    try:
        cursor = json.loads(calendar.sync_state or "{}").get("cursor") or {}
    except (ValueError, AttributeError):
        return {}
    return dict(cursor) if isinstance(cursor, dict) else {}
