"""The slot engine: which meeting starts a host can offer, and why the others are not offered.

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

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "REASONS",
    "Blocked",
    "Booked",
    "Busy",
    "HostRules",
    "MeetingRules",
    "check",
    "explain",
    "explain_blocked",
    "explain_candidates",
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

_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)
# The one reader of wall-clock times ("HH:MM", "24:00" = the end of a day), used by the
# engine, the API schemas and the settings forms. Stored and API values are zero-padded;
# ``loose`` also reads the "9:00" people type into a form.
CLOCK_PATTERN = r"^(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$"
_CLOCK = re.compile(CLOCK_PATTERN)
_LOOSE_CLOCK = re.compile(r"^(?:([01]?\d|2[0-3]):([0-5]\d)|(24):(00))$")
# A chain of windows reaching this far back without a break is treated as never starting, so
# a pathological override in year 1 cannot make every query walk back two thousand years.
_MAX_WALK_DAYS = 3660
_GRID_ORIGIN = date(2000, 1, 3)
_START = attrgetter("start")


@dataclass(frozen=True, slots=True)
class Busy:
    """A busy interval from one of the host's calendars (aware datetimes)."""

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


def _utc(value: datetime, name: str) -> datetime:
    """Reject naive datetimes up front: comparing them later would fail far from the cause."""
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _zone(name: str) -> ZoneInfo:
    """Turn every flavour of bad zone name into the ValueError callers are told to expect."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


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


def parse_clock(text: object, loose: bool = False) -> int | None:
    """Minutes after local midnight of ``HH:MM`` (``24:00`` is 1440); None if it is no time."""
    match = (_LOOSE_CLOCK if loose else _CLOCK).fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    hours, minutes = match.group(1, 2) if match.group(1) is not None else match.group(3, 4)
    return int(hours) * 60 + int(minutes)


def format_clock(minutes: int) -> str:
    """``HH:MM`` of minutes after midnight (1440 → ``24:00``)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(text: str) -> int:
    minutes = parse_clock(text)
    if minutes is None:
        raise ValueError(f"bad time of day {text!r}, expected HH:MM (00:00-24:00)")
    return minutes


def _day_spec(spec: Iterable[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    """Parse one day's windows; an inverted window is a data error, not an empty one."""
    parsed = []
    for pair in spec:
        start, end = (_minutes(part) for part in pair)
        if start >= end:
            raise ValueError(f"window {pair!r} must start before it ends")
        parsed.append((start, end))
    return tuple(sorted(parsed))


# --------------------------------------------------------------------------- wall clock


class _Schedule:
    """A host's rules compiled once per call, with each local day's windows memoised."""

    def __init__(self, host: HostRules) -> None:
        self.tz = _zone(host.timezone)
        self.weekly: dict[int, tuple[tuple[int, int], ...]] = {}
        for weekday, spec in host.weekly.items():
            if weekday not in range(7):
                raise ValueError(f"weekly keys are 0 (Monday) to 6 (Sunday), got {weekday!r}")
            self.weekly[weekday] = _day_spec(spec)
        self.overrides: dict[date, tuple[tuple[int, int], ...]] = {}
        for day, spec in host.overrides.items():
            if not isinstance(day, date) or isinstance(day, datetime):
                raise ValueError(f"override keys must be dates, got {day!r}")
            self.overrides[day] = _day_spec(spec)
        self.first_override = min(self.overrides, default=None)
        self._days: dict[date, list[tuple[datetime, datetime]]] = {}

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    def instant(self, day: date, minute: int) -> datetime:
        """``L(day, minute)``: the earliest instant whose wall time is at or after it."""
        if minute >= 1440:
            day, minute = day + _DAY, minute - 1440
        wall = datetime.combine(day, time(minute // 60, minute % 60))
        first = wall.replace(tzinfo=self.tz).astimezone(UTC)  # fold=0: first occurrence
        if first.astimezone(self.tz).replace(tzinfo=None) == wall:
            return first
        # The wall time falls in a gap. The two folds bracket the transition; the first
        # instant after the gap is the earliest whose wall time is already past `wall`.
        second = wall.replace(tzinfo=self.tz, fold=1).astimezone(UTC)
        lo, hi = min(first, second), max(first, second)
        step = timedelta(seconds=1)
        while hi - lo > step:
            mid = lo + (hi - lo) // 2
            if mid.astimezone(self.tz).replace(tzinfo=None) > wall:
                hi = mid
            else:
                lo = mid
        return hi

    def day_windows(self, day: date) -> list[tuple[datetime, datetime]]:
        """That local date's windows in UTC, merged, without the empty ones (a DST gap)."""
        cached = self._days.get(day)
        if cached is not None:
            return cached
        spec = self.overrides.get(day)
        if spec is None:
            spec = self.weekly.get(day.weekday(), ())
        merged: list[tuple[datetime, datetime]] = []
        for start_min, end_min in spec:
            start, end = self.instant(day, start_min), self.instant(day, end_min)
            if start >= end:
                continue
            if merged and start <= merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        self._days[day] = merged
        return merged

    def merged(self, lo: datetime, hi: datetime) -> tuple[date, list[tuple[datetime, datetime]]]:
        """Merged windows of every local date that can touch ``[lo, hi)``, and the first date.

        One spare date on each side covers zones whose clocks once jumped back across
        midnight, where an instant's wall date and its window's date differ.
        """
        first = self.local_date(lo) - _DAY
        last = self.local_date(hi) + _DAY
        merged: list[tuple[datetime, datetime]] = []
        day = first
        while day <= last:
            for start, end in self.day_windows(day):
                if merged and start <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
                else:
                    merged.append((start, end))
            day += _DAY
        return first, merged

    def chain_anchor(self, first_day: date, start: datetime) -> datetime:
        """Where the grid of a window seen starting at `start` on `first_day` steps from.

        The window may really begin days earlier (touching windows merge across midnight),
        so walk back while the previous day is available up to its very end. Seven whole
        available days before the earliest override mean every weekday is 24 h and the
        window has no start at all: then anchor at a fixed local midnight, the same for
        every query, so a shifted query range never shifts the grid.
        """
        day, whole_days = first_day, 0
        for _ in range(_MAX_WALK_DAYS):
            day -= _DAY
            windows = self.day_windows(day)
            if not windows or windows[-1][1] != start:
                return start
            start = windows[-1][0]
            if start != self.instant(day, 0):
                return start
            if self.first_override is None or day < self.first_override:
                whole_days += 1
                if whole_days >= 7:
                    break
        return self.instant(_GRID_ORIGIN, 0)


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


class _Engine:
    """One call's compiled rules: the slot grid and the verdict for any start on it.

    Built in two steps because `slots` needs the lead-time and booking-window bounds to
    decide which conflicts are worth indexing at all.
    """

    def __init__(self, host: HostRules, mt: MeetingRules, now: datetime) -> None:
        _check_meeting(mt)
        if host.lead_time < timedelta(0):
            raise ValueError("lead_time must not be negative")
        now = _utc(now, "now")
        self.schedule = _Schedule(host)
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
            _utc(b.start, "booking start")
            _utc(b.end, "booking end")
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
    start, end = _utc(start, "start"), _utc(end, "end")
    engine = _Engine(host, mt, now)
    lo = max(start, engine.earliest)
    hi = min(end, engine.latest + _TICK)
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
    s = _utc(slot_start, "slot_start")
    engine = _Engine(host, mt, now)
    engine.load(busy, booked, s, s + _TICK)
    end = s + engine.duration
    if s not in engine.grid(s, s + _TICK):
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


def explain_candidates(
    host: HostRules,
    mt: MeetingRules,
    busy: Sequence[Busy],
    booked: Sequence[Booked],
    now: datetime,
    start: datetime,
    end: datetime,
) -> list[tuple[datetime, str | None, str]]:
    """Every grid start in ``[start, end)`` with the first reason (in `REASONS` order) that
    blocks it, or None when it is offered, and a detail.

    Grid starts are those whose slot fits the hours, so "outside_hours" never appears here.
    Details: the calendar name for "busy"; the booking's meeting-type slug for "booked";
    for "buffer" the calendar name or booking slug the buffers run into; "N of M booked that
    day" for "daily_limit"; empty otherwise.
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    engine = _Engine(host, mt, now)
    engine.load(busy, booked, start, end)
    return [(s, *engine.verdict(s)) for s in engine.grid(start, end)]


def explain(
    host: HostRules,
    mt: MeetingRules,
    busy: Sequence[Busy],
    booked: Sequence[Booked],
    now: datetime,
    start: datetime,
    end: datetime,
    cell: timedelta = timedelta(minutes=30),
) -> list[tuple[datetime, datetime, str | None, str]]:
    """The host's preview: for each cell ``[start + k*cell, start + (k+1)*cell)`` of real time
    before `end` (the last one cut at `end`), ``(cell_start, cell_end, reason, detail)``.

    A cell is judged by the grid starts whose slot ``[s, s + duration)`` overlaps it:

    * reason None - at least one of them is offered, so an invitee can book into the cell;
    * "outside_hours" - none exists: no slot within the hours covers this time (also the
      tail of a window too short for another meeting);
    * otherwise the reason of the covering start that got furthest through the checks,
      i.e. latest in `REASONS` order (ties: the earliest start), with its detail. A free
      half hour next to a meeting is thus "buffer", not the "busy" of a neighbouring start
      whose slot runs into that meeting, while a half hour inside the meeting is "busy".
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    if cell <= timedelta(0):
        raise ValueError("cell must be positive")
    engine = _Engine(host, mt, now)
    first = start - engine.duration + _TICK  # earliest start whose slot reaches the first cell
    engine.load(busy, booked, first, end)
    starts = engine.grid(first, end)
    verdicts = [engine.verdict(s) for s in starts]
    ends = [s + engine.duration for s in starts]
    cells: list[tuple[datetime, datetime, str | None, str]] = []
    cell_start = start
    while cell_start < end:
        cell_end = min(cell_start + cell, end)
        covering = verdicts[bisect_right(ends, cell_start) : bisect_left(starts, cell_end)]
        if not covering:
            cells.append((cell_start, cell_end, "outside_hours", ""))
        elif any(reason is None for reason, _ in covering):
            cells.append((cell_start, cell_end, None, ""))
        else:
            reason, detail = max(covering, key=lambda v: REASONS.index(v[0]))
            cells.append((cell_start, cell_end, reason, detail))
        cell_start = cell_end
    return cells


def explain_blocked(
    host: HostRules,
    mt: MeetingRules,
    busy: Sequence[Busy],
    booked: Sequence[Booked],
    now: datetime,
    start: datetime,
    end: datetime,
    cell: timedelta = timedelta(minutes=30),
) -> list[Blocked]:
    """`explain` with runs of equally blocked cells joined, for a compact legend or tooltip."""
    runs: list[Blocked] = []
    for cell_start, cell_end, reason, detail in explain(
        host, mt, busy, booked, now, start, end, cell
    ):
        if reason is None:
            continue
        last = runs[-1] if runs else None
        if last and last.end == cell_start and (last.reason, last.detail) == (reason, detail):
            runs[-1] = Blocked(last.start, cell_end, reason, detail)
        else:
            runs.append(Blocked(cell_start, cell_end, reason, detail))
    return runs


def windows(host: HostRules, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The host's availability windows in UTC, merged and clipped to ``[start, end)``."""
    start, end = _utc(start, "start"), _utc(end, "end")
    if start >= end:
        return []
    _, merged = _Schedule(host).merged(start, end)
    return [(max(a, start), min(b, end)) for a, b in merged if a < end and b > start]
