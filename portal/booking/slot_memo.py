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

Both share one least-recently-used store bounded by an approximate size in bytes
(``KAIROS_SLOT_MEMO_BYTES``, set by the app through ``set_limit``), not by a count of
entries: a month of a 50,000-interval host weighs a hundred times a quiet host's, and a
count bound let a worker grow by hundreds of megabytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import cast

from portal.booking import busy_read
from portal.booking.availability import Booked, Busy, HostRules, MeetingRules
from portal.models import User, db

DEFAULT_BYTES = 8 * 1024 * 1024

# What the entries below cost in CPython, roughly: a list slot, a 3-field named tuple
# and its share of two datetimes (one timestamp is shared by the intervals that touch
# it, so this errs on the high side); a slot start is a list slot and a datetime.
BUSY_BYTES = 8 + 64 + 2 * 48
SLOT_BYTES = 8 + 48
ENTRY_BYTES = 1024  # key, fingerprint, dictionary slot and list headers


class ByteLRU:
    """A thread-safe least-recently-used map holding at most ``limit`` (approximate) bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> object | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: tuple, value: object, size: int) -> None:
        """Keep ``value`` (``size`` bytes), evicting the least recently used to make room;
        a value larger than the whole limit is not kept."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= old[1]
            if size > self.limit:
                return
            self._items[key] = (value, size)
            self.size += size
            while self.size > self.limit:
                _, (_, dropped) = self._items.popitem(last=False)
                self.size -= dropped

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0


_memo = ByteLRU(DEFAULT_BYTES)
# The pages' few-second cache of slots by day (portal.web.picker): a quarter as much.
browse = ByteLRU(DEFAULT_BYTES // 4)


def set_limit(limit: int) -> None:
    """Bound the memos to ``limit`` bytes (the app's ``SLOT_MEMO_BYTES``); 0 turns them off."""
    limit = max(0, int(limit))
    for memo, share in ((_memo, limit), (browse, limit // 4)):
        memo.limit = share
        if memo.size > memo.limit:
            memo.clear()


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
    where = ("busy", db.database, user.id, start, end)
    stamp = fingerprint(user, start, end)
    key = (where, stamp)
    hit = cast("tuple[tuple, list[Busy]] | None", _memo.get(where))
    if hit is not None and hit[0] == stamp:
        return key, hit[1]
    rows = load(user, start, end)
    _memo.put(where, (stamp, rows), ENTRY_BYTES + BUSY_BYTES * len(rows))
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
        "slots",
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
    hit = cast("list[datetime] | None", _memo.get(key))
    if hit is None:
        hit = compute()
        _memo.put(key, hit, ENTRY_BYTES + 64 * len(booked) + SLOT_BYTES * len(hit))
    if hit and hit[0] < earliest:
        return [s for s in hit if s >= earliest]
    return list(hit)


def clear() -> None:
    """Forget everything (tests that compare a cold and a warm read)."""
    _memo.clear()
    browse.clear()
