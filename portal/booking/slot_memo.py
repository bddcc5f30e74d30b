"""Per-process memos that keep busy booking pages cheap, without ever going stale.

A host with a busy calendar has thousands of cached busy intervals in a month: turning
those rows into ``Busy`` records, and running the engine over a month of them, costs
many times more than everything else a booking page does. Between two page views the
inputs almost never change (the free/busy cache is refreshed every few minutes, and
all invitees of a host look at the same months), so both results are kept:

- ``merged_busy``: per host and UTC day, that day's busy intervals merged into a few,
  stored with the day's stamp: the version of each conflict calendar's blocks starting
  that day, which the database's triggers renew on every insert, update or delete
  (``BusyDay``, migration 0170), read for the whole window in one small query. Only the
  days whose stamp changed are read again, and reading the stamps does not grow with the
  number of blocks: a month of a 50,000-interval host costs what a quiet host's does.
- ``slots``: the engine's answer for exactly the same inputs (those stamps, the rules,
  the meeting type, the bookings, whole UTC days, ``now`` floored to the hour), which
  ``rules.available_slots`` cuts to the request's range, lead time and booking window.

Both share one least-recently-used store bounded by an approximate size in bytes
(``KAIROS_SLOT_MEMO_BYTES``, set by the app through ``set_limit``), not by a count of
entries: a month of a 50,000-interval host weighs a hundred times a quiet host's, and a
count bound let a worker grow by hundreds of megabytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import cast

from portal.booking import busy_read
from portal.booking.availability import Booked, Busy, HostRules, MeetingRules
from portal.models import db, to_epoch

DEFAULT_BYTES = 8 * 1024 * 1024
DAY = busy_read.DAY

# What the entries below cost in CPython, roughly: a list slot, a pair and its two ints;
# a slot start is a list slot and a datetime.
SPAN_BYTES = 8 + 56 + 2 * 32
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


def merged_busy(
    user_id: int, start: datetime, end: datetime
) -> tuple[tuple, list[tuple[int, int]]]:
    """``(key, spans)``: the host's busy time over the UTC days covering ``[start, end)`` as
    epoch seconds, overlapping intervals merged (so without calendar names: for the slot
    engine only, through ``as_busy`` when its answer is not memoised already).

    Each day's merged intervals are kept per host with that day's stamp
    (``busy_read.day_stamps``); only days whose stamp changed are read again.
    ``key`` names exactly this busy time (for the slot memo). The list is shared between
    requests: callers must not modify it.
    """
    first, last = to_epoch(start) // DAY, (to_epoch(end) - 1) // DAY
    stamps = busy_read.day_stamps(user_id, first - 1, last)  # short blocks start ≤ 1 day early
    where = ("days", db.database, user_id)
    held = cast("dict[int, tuple[tuple, list[tuple[int, int]]]]", _memo.get(where) or {})
    stale = [day for day, stamp in stamps.items() if held.get(day, ((),))[0] != stamp]
    if stale:
        fresh: dict[int, list[tuple[int, int]]] = {day: [] for day in stale}
        days = [day for day in stale if day >= 0]
        for s, e in busy_read.short_rows(user_id, min(days), max(days)) if days else ():
            if s // DAY in fresh:
                fresh[s // DAY].append((s, e))
        if -1 in fresh:
            fresh[-1] = busy_read.long_rows(user_id)  # few: all of them
        held = {**held, **{day: (stamps[day], _merge(spans)) for day, spans in fresh.items()}}
        # A host's whole year of days is one entry: a few intervals a day once merged.
        size = ENTRY_BYTES + sum(100 + SPAN_BYTES * len(v[1]) for v in held.values())
        _memo.put(where, held, size)
    spans = _merge([span for day in stamps for span in held[day][1]])
    return (where, first, last, tuple(sorted(stamps.items()))), spans


def as_busy(spans: list[tuple[int, int]]) -> list[Busy]:
    """``merged_busy``'s spans as the engine's records."""
    at = datetime.fromtimestamp
    return [Busy(at(s, UTC), at(e, UTC)) for s, e in spans]


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching intervals as one (a slot overlaps the one iff it overlaps any)."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def slots(
    busy_key: tuple,
    host: HostRules,
    mt: MeetingRules,
    booked: Sequence[Booked],
    as_of: datetime,
    start: datetime,
    end: datetime,
    compute: Callable[[], list[datetime]],
) -> list[datetime]:
    """``compute()`` (the engine on exactly these inputs), or its earlier answer.

    The list is shared between requests: callers must not modify it.
    """
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
        as_of,
    )
    hit = cast("list[datetime] | None", _memo.get(key))
    if hit is None:
        hit = compute()
        _memo.put(key, hit, ENTRY_BYTES + 64 * len(booked) + SLOT_BYTES * len(hit))
    return hit


def clear() -> None:
    """Forget everything (tests that compare a cold and a warm read)."""
    _memo.clear()
    browse.clear()
