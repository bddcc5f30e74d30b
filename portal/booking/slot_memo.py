"""Per-process memos that keep busy booking pages cheap, without ever going stale.

A host with a busy calendar has thousands of cached busy intervals in a month: turning
those rows into ``Busy`` records, and running the engine over a month of them, costs
many times more than everything else a booking page does. Between two page views the
inputs almost never change (the free/busy cache is refreshed every few minutes, and
all invitees of a host look at the same months), so both results are kept:

- ``busy``: the converted rows of a host and range, stored with a fingerprint that the
  database computes in one aggregate query (per calendar and name: count, id sum and
  maximum, sum of the instants). A sync that inserts, deletes or moves an interval, or
  renames or unticks a calendar, changes the fingerprint and the rows are read again.
- ``slots``: the engine's answer for exactly the same inputs (that fingerprint, the
  rules, the meeting type, the bookings, the range) within one minute of ``now``.
  Slots that fall below the lead time are filtered out on every read; the only effect
  of the minute is that a start crossing the far end of the booking window appears up
  to a minute late.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime

from portal.booking import busy_read
from portal.booking.availability import Booked, Busy, HostRules, MeetingRules
from portal.models import User, db

MAX_BUSY_ENTRIES = 32
MAX_SLOT_ENTRIES = 256

_lock = threading.Lock()
_busy: OrderedDict[tuple, tuple[tuple, list[Busy]]] = OrderedDict()
_slots: OrderedDict[tuple, list[datetime]] = OrderedDict()


def fingerprint(user: User, start: datetime, end: datetime) -> tuple:
    """What identifies the rows ``rules.cached_busy(user, start, end)`` returns."""
    return busy_read.fingerprint(user.id, start, end)


def busy(
    user: User,
    start: datetime,
    end: datetime,
    load: Callable[[User, datetime, datetime], list[Busy]],
) -> tuple[tuple, list[Busy]]:
    """``(key, load(user, start, end))``, reusing an earlier load while the rows are unchanged.

    ``key`` names this exact set of rows (for the slot memo). The list is shared
    between requests: callers must not modify it.
    """
    where = (db.database, user.id, start, end)
    stamp = fingerprint(user, start, end)
    key = (where, stamp)
    with _lock:
        hit = _busy.get(where)
        if hit is not None and hit[0] == stamp:
            _busy.move_to_end(where)
            return key, hit[1]
    rows = load(user, start, end)
    with _lock:
        _remember(_busy, where, (stamp, rows), MAX_BUSY_ENTRIES)
    return key, rows


def slots(
    busy_key: tuple,
    host: HostRules,
    mt: MeetingRules,
    booked: Sequence[Booked],
    now: datetime,
    start: datetime,
    end: datetime,
    compute: Callable[[], list[datetime]],
) -> list[datetime]:
    """``compute()`` (the engine on exactly these inputs), or its answer from this minute."""
    key = (
        busy_key,
        host.timezone,
        tuple(sorted(host.weekly.items())),
        tuple(sorted(host.overrides.items())),
        host.lead_time,
        mt,
        tuple(booked),
        start,
        end,
        now.replace(second=0, microsecond=0),
    )
    earliest = now + max(host.lead_time, mt.lead_time)
    with _lock:
        hit = _slots.get(key)
        if hit is not None:
            _slots.move_to_end(key)
    if hit is None:
        hit = compute()
        with _lock:
            _remember(_slots, key, hit, MAX_SLOT_ENTRIES)
    if hit and hit[0] < earliest:
        return [s for s in hit if s >= earliest]
    return list(hit)


def _remember(memo: OrderedDict, key: tuple, value: object, limit: int) -> None:
    memo[key] = value
    memo.move_to_end(key)
    while len(memo) > limit:
        memo.popitem(last=False)


def clear() -> None:
    """Forget everything (tests that compare a cold and a warm read)."""
    with _lock:
        _busy.clear()
        _slots.clear()
