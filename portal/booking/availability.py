"""The slot engine: which meeting starts a host can offer.

Beside it: ``portal.booking.wallclock`` turns the host's ``HH:MM`` hours into instants, and
``portal.booking.explain`` says why the other starts are not offered.

The engine is a pure function of its arguments (rules, busy intervals, bookings and `now`);
it imports nothing from the app and reads no clock, so every rule below can be tested with
plain values and the booking service can re-run exactly the same decision when it confirms.

How the rules in SPEC.md ("Booking rules") are read here:

* **Wall-clock windows.** A window ``("09:00", "17:00")`` on local date *d* is the real-time
  interval ``[L(d, 09:00), L(d, 17:00))``, where ``L(d, t)`` is the *earliest instant whose
  local wall time is at or after d t* in the host zone. That single definition covers
  the DST cases: an ambiguous time (autumn) is its first occurrence (``fold=0``), and a time
  that does not exist (spring gap) moves to the first instant after the gap, so a window
  starting at 02:30 on Berlin's spring-forward day starts at 03:00 CEST, and a window lying
  wholly inside the gap is empty. ``"24:00"`` is ``L(d + 1 day, 00:00)``.
* **Merging.** Windows that overlap or touch - within a day or across midnight, e.g. Monday
  ``00:00-24:00`` then Tuesday ``00:00-12:00`` - form one window, so a slot may run across
  the seam, and the slot grid keeps stepping from the merged window's start.
* **Slot grid.** Candidate starts are ``window_start + k * interval`` for whole ``k >= 0``,
  stepping in real (UTC) time, whose ``[s, s + duration)`` ends inside the same window.
  A window that never starts - the host is available around the clock since before
  the earliest override and for at least a whole week - has no start to step from; its
  grid is anchored at local midnight of 2000-01-03 instead, so every query sees the same grid.
* **Limits.** ``s >= now + max(host.lead_time, mt.lead_time)``;
  ``s <= now + window_days * 24 h`` (both inclusive); fewer than ``daily_limit`` bookings of
  this meeting type (``Booked.meeting_type == mt.slug``) start on the local date of ``s``.
* **Conflicts.** ``[s - buffer_before, s + duration + buffer_after)`` must not overlap any
  busy interval, nor any booking widened by its own buffers, so two meetings' buffers add up.
  All intervals are half-open: touching is not overlapping. Intervals with ``end <= start``
  (after widening) are empty and block nothing.

When the booking service re-checks a reschedule it should leave the booking being moved out
of ``booked``, otherwise it conflicts with itself.
"""

from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter
from typing import NamedTuple

from portal.booking.wallclock import Schedule

__all__ = [
    "REASONS",
    "Blocked",
    "Booked",
    "Busy",
    "HostRules",
    "MeetingRules",
    "check",
    "is_offered",
    "slots",
    "windows",
]

REASONS: tuple[str, ...] = (
    "outside_hours",
    "lead_time",
    "window",
    "daily_limit",
    "busy",
    "booked",
    "buffer",
)
"""Why a start is not offered, in precedence order: a start gets the FIRST that applies.

Rules that hold whatever the calendars say (hours, lead time, booking window, daily limit)
come before the calendar conflicts, because they are what the host can change in settings;
among the conflicts the slot's own time is judged before its buffers.
"""

TICK = timedelta(microseconds=1)
_START = attrgetter("start")


class Busy(NamedTuple):
    """A busy interval from one of the host's calendars (aware datetimes).

    A named tuple rather than a frozen dataclass: a month of a busy host is thousands
    of them per page, and a tuple is built in a third of the time.
    """

    start: datetime
    end: datetime
    source: str = ""  # calendar name, shown to the host as "busy on calendar X"


@dataclass(frozen=True, slots=True)
class Booked:
    """An existing confirmed booking of this host, of any meeting type (aware datetimes)."""

    start: datetime
    end: datetime
    buffer_before: timedelta = timedelta(0)  # that booking's own type's buffers
    buffer_after: timedelta = timedelta(0)
    meeting_type: str = ""  # slug of its meeting type, for the daily limit


@dataclass(frozen=True, slots=True)
class HostRules:
    """When a host is bookable: weekly wall-clock windows plus per-date replacements."""

    timezone: str  # IANA name
    weekly: dict[int, tuple[tuple[str, str], ...]]  # 0=Mon..6=Sun -> (("09:00", "17:00"), ...)
    overrides: dict[date, tuple[tuple[str, str], ...]]  # replaces that date; () = day off
    lead_time: timedelta = timedelta(0)  # host's personal minimum notice


@dataclass(frozen=True, slots=True)
class MeetingRules:
    """The slot-shaping part of a meeting type."""

    slug: str
    duration: timedelta
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    lead_time: timedelta = timedelta(0)
    window_days: int = 60
    slot_interval: timedelta | None = None  # None = duration
    daily_limit: int | None = None  # None/0 = unlimited


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why a span of time cannot be booked; `reason` is one of `REASONS`."""

    start: datetime
    end: datetime
    reason: str
    detail: str = ""  # calendar name for "busy"; see `explain_candidates` for the others


_Verdict = tuple[str | None, str]

# --------------------------------------------------------------------------- validation


def aware_utc(value: datetime, name: str) -> datetime:
    """Reject naive datetimes up front: comparing them later would fail far from the cause."""
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _check_meeting(mt: MeetingRules) -> None:
    """Negative or zero spans would make the grid loop forever or invert intervals."""
    zero = timedelta(0)
    if mt.duration <= zero:
        raise ValueError("duration must be positive")
    if mt.slot_interval is not None and mt.slot_interval <= zero:
        raise ValueError("slot_interval must be positive")
    if min(mt.buffer_before, mt.buffer_after, mt.lead_time) < zero:
        raise ValueError("buffers and lead time must not be negative")
    if mt.window_days < 0:
        raise ValueError("window_days must not be negative")
    if mt.daily_limit is not None and mt.daily_limit < 0:
        raise ValueError("daily_limit must not be negative")


# --------------------------------------------------------------------------- conflicts


class _Index:
    """Intervals sorted by start with the running maximum of their ends.

    "Does anything overlap ``[a, b)``?" is then one bisection: the last interval starting
    before `b` carries the furthest end reached so far, and it overlaps iff that end is after
    `a`. Building it is one sort, which is what keeps 10,000 busy intervals cheap.
    Items are `Busy` records because that is what most of them already are; bookings are
    re-labelled into the same shape.
    """

    __slots__ = ("_items", "_reach", "_starts")

    def __init__(self, items: list[Busy]) -> None:
        items.sort(key=_START)
        self._items = items
        self._starts: list[datetime] = list(map(_START, items))
        # A plain loop: accumulate(..., max) pays a builtin call per item and is 3x slower.
        self._reach: list[datetime] = []
        if items:
            furthest = items[0].end
            append = self._reach.append
            for item in items:
                if item.end > furthest:
                    furthest = item.end
                append(furthest)

    def hit(self, a: datetime, b: datetime) -> str | None:
        """Label of an interval overlapping ``[a, b)`` (the one reaching furthest), or None."""
        i = bisect_left(self._starts, b) - 1
        if i < 0 or self._reach[i] <= a:
            return None
        # The running maximum first took this value at the interval that owns it.
        return self._items[bisect_left(self._reach, self._reach[i])].source


def _busy_items(busy: Sequence[Busy], lo: datetime, hi: datetime) -> list[Busy]:
    """Busy intervals that can matter for ``[lo, hi)``, empty ones dropped."""
    try:
        if any(b.start.tzinfo is None or b.end.tzinfo is None for b in busy):
            raise TypeError
        return [b for b in busy if b.start < hi and lo < b.end > b.start]
    except TypeError:  # also what a tzinfo whose utcoffset() is None ends in
        raise ValueError("busy intervals must have timezone-aware start and end") from None


def _booked_items(booked: Sequence[Booked], lo: datetime, hi: datetime, widen: bool) -> list[Busy]:
    """Bookings (optionally widened by their own buffers) that can matter for ``[lo, hi)``."""
    items = []
    for b in booked:
        start, end = b.start, b.end
        if widen:
            start, end = start - b.buffer_before, end + b.buffer_after
        if start < hi and lo < end > start:
            items.append(Busy(start, end, b.meeting_type or "booking"))
    return items


# --------------------------------------------------------------------------- the engine


class Engine:
    """One call's compiled rules: the slot grid and the verdict for any start on it.

    Built in two steps because `slots` needs the lead-time and booking-window bounds to
    decide which conflicts are worth indexing at all.
    """

    def __init__(self, host: HostRules, mt: MeetingRules, now: datetime) -> None:
        _check_meeting(mt)
        if host.lead_time < timedelta(0):
            raise ValueError("lead_time must not be negative")
        now = aware_utc(now, "now")
        self.schedule = Schedule(host.timezone, host.weekly, host.overrides)
        self.slug = mt.slug
        self.duration = mt.duration
        self.step = mt.slot_interval or mt.duration
        self.before, self.after = mt.buffer_before, mt.buffer_after
        self.earliest = now + max(host.lead_time, mt.lead_time)
        self.latest = now + timedelta(days=mt.window_days)
        self.limit = mt.daily_limit or 0
        self.per_day: Counter[date] = Counter()
        self.busy = self.booked = self.booked_wide = _Index([])

    def load(
        self, busy: Sequence[Busy], booked: Sequence[Booked], lo: datetime, hi: datetime
    ) -> None:
        """Index the conflicts that can reach a slot starting in ``[lo, hi)``; drop the rest."""
        for b in booked:
            aware_utc(b.start, "booking start")
            aware_utc(b.end, "booking end")
        if self.limit:
            local_date = self.schedule.local_date
            self.per_day.update(local_date(b.start) for b in booked if b.meeting_type == self.slug)
        reach_lo, reach_hi = lo - self.before, hi + self.duration + self.after
        self.busy = _Index(_busy_items(busy, reach_lo, reach_hi))
        self.booked = _Index(_booked_items(booked, reach_lo, reach_hi, widen=False))
        self.booked_wide = _Index(_booked_items(booked, reach_lo, reach_hi, widen=True))

    def grid(self, lo: datetime, hi: datetime) -> list[datetime]:
        """Every candidate start in ``[lo, hi)`` whose slot fits one window, sorted."""
        if lo >= hi:
            return []
        first_day, merged = self.schedule.merged(lo, hi + self.duration)
        starts: list[datetime] = []
        for n, (win_start, win_end) in enumerate(merged):
            anchor = win_start
            if n == 0:
                anchor = self.schedule.chain_anchor(first_day, win_start)
            begin = max(win_start, lo)
            s = anchor - ((anchor - begin) // self.step) * self.step  # first grid point >= begin
            last = win_end - self.duration
            while s < hi and s <= last:
                starts.append(s)
                s += self.step
        return starts

    def verdict(self, s: datetime) -> _Verdict:
        """The first reason in `REASONS` order that keeps grid start `s` from being offered."""
        if s < self.earliest:
            return "lead_time", ""
        if s > self.latest:
            return "window", ""
        if self.limit:
            taken = self.per_day[self.schedule.local_date(s)]
            if taken >= self.limit:
                return "daily_limit", f"{taken} of {self.limit} booked that day"
        end = s + self.duration
        if (label := self.busy.hit(s, end)) is not None:
            return "busy", label
        if (label := self.booked.hit(s, end)) is not None:
            return "booked", label
        wide_start, wide_end = s - self.before, end + self.after
        if (label := self.busy.hit(wide_start, wide_end)) is not None:
            return "buffer", label
        if (label := self.booked_wide.hit(wide_start, wide_end)) is not None:
            return "buffer", label
        return None, ""


# --------------------------------------------------------------------------- public API


def slots(
    host: HostRules,
    mt: MeetingRules,
    busy: Sequence[Busy],
    booked: Sequence[Booked],
    now: datetime,
    start: datetime,
    end: datetime,
) -> list[datetime]:
    """Offered slot starts (aware UTC, sorted) with start in ``[start, end)``.

    The range is first narrowed to what lead time and booking window allow, so a careless
    caller asking for a year costs no more than the booking window.
    """
    start, end = aware_utc(start, "start"), aware_utc(end, "end")
    engine = Engine(host, mt, now)
    lo = max(start, engine.earliest)
    hi = min(end, engine.latest + TICK)
    engine.load(busy, booked, lo, hi)
    return [s for s in engine.grid(lo, hi) if engine.verdict(s)[0] is None]


def check(
    host: HostRules,
    mt: MeetingRules,
    busy: Sequence[Busy],
    booked: Sequence[Booked],
    now: datetime,
    slot_start: datetime,
) -> Blocked | None:
    """Why one start is not offered (None when it is); what `slots` decides for it.

    A start that is not on the slot grid is "outside_hours"; its detail says "off the slot
    grid" when the meeting would fit the hours, so the caller can tell a stale link from
    a start the host never offered.
    """
    s = aware_utc(slot_start, "slot_start")
    engine = Engine(host, mt, now)
    engine.load(busy, booked, s, s + TICK)
    end = s + engine.duration
    if s not in engine.grid(s, s + TICK):
        _, merged = engine.schedule.merged(s, end)
        fits = any(w_start <= s and end <= w_end for w_start, w_end in merged)
        return Blocked(s, end, "outside_hours", "off the slot grid" if fits else "")
    reason, detail = engine.verdict(s)
    return None if reason is None else Blocked(s, end, reason, detail)


def is_offered(
    host: HostRules,
    mt: MeetingRules,
    busy: Sequence[Busy],
    booked: Sequence[Booked],
    now: datetime,
    slot_start: datetime,
) -> bool:
    """Whether `slots` would offer exactly this start; the booking service's re-check."""
    return check(host, mt, busy, booked, now, slot_start) is None


def windows(host: HostRules, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The host's availability windows in UTC, merged and clipped to ``[start, end)``."""
    start, end = aware_utc(start, "start"), aware_utc(end, "end")
    if start >= end:
        return []
    _, merged = Schedule(host.timezone, host.weekly, host.overrides).merged(start, end)
    return [(max(a, start), min(b, end)) for a, b in merged if a < end and b > start]
