"""Host hours on the wall clock: ``HH:MM`` text, and a local date's windows as real instants.

Part of the slot engine (``portal.booking.availability``): stdlib only, no clock read.
A window ``("09:00", "17:00")`` on local date *d* is ``[L(d, 09:00), L(d, 17:00))``, where
``L(d, t)`` is the earliest instant whose local wall time is at or after *d t*; the engine's
docstring says how that reads the DST gaps and folds.
"""

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAY = timedelta(days=1)
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


def _zone(name: str) -> ZoneInfo:
    """Turn every flavour of bad zone name into the ValueError callers are told to expect."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


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


class Schedule:
    """A host's rules compiled once per call, with each local day's windows memoised."""

    def __init__(
        self,
        timezone: str,
        weekly: Mapping[int, Iterable[tuple[str, str]]],
        overrides: Mapping[date, Iterable[tuple[str, str]]],
    ) -> None:
        self.tz = _zone(timezone)
        self.weekly: dict[int, tuple[tuple[int, int], ...]] = {}
        for weekday, spec in weekly.items():
            if weekday not in range(7):
                raise ValueError(f"weekly keys are 0 (Monday) to 6 (Sunday), got {weekday!r}")
            self.weekly[weekday] = _day_spec(spec)
        self.overrides: dict[date, tuple[tuple[int, int], ...]] = {}
        for day, spec in overrides.items():
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
