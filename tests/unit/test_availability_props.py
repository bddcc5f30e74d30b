"""Property tests: the slot engine against a slow minute-by-minute reference.

The reference below shares no code with the engine and uses a different algorithm. It
walks real time one minute at a time, converts each minute to the host's wall clock and
checks the day's rules on that wall time directly; busy and booked intervals are expanded
into sets of minutes. Everything generated is minute-aligned (window boundaries, DST
transitions of the zones used, busy intervals, durations), so minutes decide exactly.

The one subtle step is the autumn repeat. The rules say an ambiguous boundary means its
first occurrence, so during the second pass of a repeated hour every boundary inside that
hour has already been passed. The reference models this with a "high-water" wall clock: the
latest wall time seen so far while walking forward. A minute is available when its
high-water wall time falls in one of that date's windows. In a spring gap the high-water
time jumps past the missing times, which is the "moves to the first instant after the gap"
rule, with no special case needed.

Zones: Europe/Berlin and America/New_York (1 h shifts), Australia/Lord_Howe (a 30-minute
shift) and Asia/Kathmandu (+05:45, no DST). `now` and the ranges are drawn close to real
transitions of 2025-2027.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from portal.booking.availability import (
    Booked,
    Busy,
    HostRules,
    MeetingRules,
    check,
    is_offered,
    slots,
    windows,
)
from portal.booking.explain import explain, explain_candidates

MIN = timedelta(minutes=1)
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
ORDER = ["outside_hours", "lead_time", "window", "daily_limit", "busy", "booked", "buffer"]
SCAN_MARGIN = timedelta(days=2)
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def transitions(zone: str) -> list[datetime]:
    """UTC instants in 2025-2027 where the zone's offset changes, found to the minute."""
    tz = ZoneInfo(zone)
    found = []
    day = datetime(2025, 1, 1, tzinfo=UTC)
    while day.year < 2028:
        before = day.astimezone(tz).utcoffset()
        if (day + timedelta(days=1)).astimezone(tz).utcoffset() != before:
            lo, hi = 0, 1440  # minutes into the day: offset unchanged at lo, changed at hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if (day + mid * MIN).astimezone(tz).utcoffset() == before:
                    lo = mid
                else:
                    hi = mid
            found.append(day + hi * MIN)
        day += timedelta(days=1)
    return found


TRANSITIONS = {zone: transitions(zone) for zone in ZONES}


# --------------------------------------------------------------------------- the reference


def parse(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def rules_for(host: HostRules, day: date) -> list[tuple[int, int]]:
    spec = host.overrides[day] if day in host.overrides else host.weekly.get(day.weekday(), ())
    return [(parse(a), parse(b)) for a, b in spec]


def available_minutes(host: HostRules, t0: datetime, t1: datetime) -> list[datetime]:
    """Every minute in [t0, t1) at which the host is available, walking forward in real time."""
    tz = ZoneInfo(host.timezone)
    day_rules: dict[date, list[tuple[int, int]]] = {}
    high_water: datetime | None = None
    out = []
    minute = t0
    while minute < t1:
        wall = minute.astimezone(tz).replace(tzinfo=None)
        if high_water is None or wall > high_water:
            high_water = wall
        day = high_water.date()
        if day not in day_rules:
            day_rules[day] = rules_for(host, day)
        of_day = high_water.hour * 60 + high_water.minute
        if any(a <= of_day < b for a, b in day_rules[day]):
            out.append(minute)
        minute += MIN
    return out


def runs(minutes: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Maximal stretches of consecutive available minutes, as [start, end)."""
    out: list[tuple[datetime, datetime]] = []
    for m in minutes:
        if out and out[-1][1] == m:
            out[-1] = (out[-1][0], m + MIN)
        else:
            out.append((m, m + MIN))
    return out


def minute_labels(spans: list[tuple[datetime, datetime, str]]) -> dict[datetime, set[str]]:
    """Minute -> labels of the spans covering it (each span walked minute by minute)."""
    covered: dict[datetime, set[str]] = defaultdict(set)
    for start, end, label in spans:
        m = start
        while m < end:
            covered[m].add(label)
            m += MIN
    return covered


def labels_in(covered: dict[datetime, set[str]], start: datetime, end: datetime) -> set[str]:
    found: set[str] = set()
    m = start
    while m < end:
        found |= covered.get(m, set())
        m += MIN
    return found


class Reference:
    """The rules of SPEC.md, checked the slow way."""

    def __init__(self, host, mt, busy, booked, now, start, end) -> None:
        self.host, self.mt, self.now = host, mt, now
        self.tz = ZoneInfo(host.timezone)
        self.scan_start = start - SCAN_MARGIN
        scan_end = end + mt.duration + MIN
        self.runs = runs(available_minutes(host, self.scan_start, scan_end))
        self.busy = minute_labels([(b.start, b.end, b.source) for b in busy])
        self.core = minute_labels([(b.start, b.end, b.meeting_type) for b in booked])
        self.wide = minute_labels(
            [(b.start - b.buffer_before, b.end + b.buffer_after, b.meeting_type) for b in booked]
        )
        self.per_day: dict[date, int] = defaultdict(int)
        for b in booked:
            if b.meeting_type == mt.slug:
                self.per_day[b.start.astimezone(self.tz).date()] += 1

    def candidates(self, start: datetime, end: datetime) -> list[datetime]:
        """Run start + k * interval, for every run; None if a run's true start is unknown."""
        step = self.mt.slot_interval or self.mt.duration
        out = []
        for run_start, run_end in self.runs:
            s = run_start
            while s + self.mt.duration <= run_end:
                if start <= s < end:
                    # A run that began before the scan may have started anywhere earlier.
                    assume(run_start > self.scan_start)
                    out.append(s)
                s += step
        return out

    def verdict(self, s: datetime) -> tuple[str | None, set[str]]:
        """First failing rule and the details it could be reported with."""
        mt = self.mt
        if s < self.now + max(self.host.lead_time, mt.lead_time):
            return "lead_time", {""}
        if s > self.now + timedelta(hours=24 * mt.window_days):
            return "window", {""}
        if mt.daily_limit and self.per_day[s.astimezone(self.tz).date()] >= mt.daily_limit:
            return "daily_limit", {"any"}
        end = s + mt.duration
        if found := labels_in(self.busy, s, end):
            return "busy", found
        if found := labels_in(self.core, s, end):
            return "booked", found
        wide_start, wide_end = s - mt.buffer_before, end + mt.buffer_after
        if found := labels_in(self.busy, wide_start, wide_end):
            return "buffer", found
        if found := labels_in(self.wide, wide_start, wide_end):
            return "buffer", found
        return None, {""}


# --------------------------------------------------------------------------- strategies

BOUNDARIES = [0, 60, 90, 120, 135, 150, 165, 180, 210, 540, 1020, 1380, 1410, 1440]


@st.composite
def day_windows(draw) -> tuple[tuple[str, str], ...]:
    """0-2 windows per day, boundaries biased towards the small hours where DST happens, and
    now and then a whole day, so that windows chain across midnight."""
    if draw(st.integers(0, 7)) == 0:
        return (("00:00", "24:00"),)
    minute = st.one_of(st.sampled_from(BOUNDARIES), st.integers(0, 96).map(lambda q: q * 15))
    out = []
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 2]))):
        a, b = sorted(draw(st.lists(minute, min_size=2, max_size=2, unique=True)))
        out.append((f"{a // 60:02}:{a % 60:02}", f"{b // 60:02}:{b % 60:02}"))
    return tuple(out)


@st.composite
def scenarios(draw):
    zone = draw(st.sampled_from(ZONES))
    tz = ZoneInfo(zone)
    if TRANSITIONS[zone]:
        pivot = draw(st.sampled_from(TRANSITIONS[zone]))
    else:
        pivot = datetime(2026, 1, 1, tzinfo=UTC) + draw(st.integers(0, 364)) * timedelta(days=1)

    def near(days_before: int, days_after: int) -> datetime:
        return pivot + MIN * draw(st.integers(-days_before * 1440, days_after * 1440))

    weekly = {day: draw(day_windows()) for day in range(7)}
    assume(not all(w == (("00:00", "24:00"),) for w in weekly.values()))
    pivot_day = pivot.astimezone(tz).date()
    override_days = draw(st.lists(st.integers(-2, 2), max_size=2, unique=True))
    overrides = {pivot_day + timedelta(days=n): draw(day_windows()) for n in override_days}
    host = HostRules(zone, weekly, overrides, MIN * draw(st.sampled_from([0, 30, 120])))
    slug = "intro"
    interval = draw(st.sampled_from([None, 10, 15, 20, 30, 45, 60, 75]))
    mt = MeetingRules(
        slug=slug,
        duration=MIN * draw(st.sampled_from([15, 30, 45, 50, 60, 90])),
        buffer_before=MIN * draw(st.sampled_from([0, 5, 10, 30])),
        buffer_after=MIN * draw(st.sampled_from([0, 5, 15, 30])),
        lead_time=MIN * draw(st.sampled_from([0, 0, 15, 60, 240, 1440])),
        window_days=draw(st.sampled_from([60, 60, 60, 0, 1, 2])),
        slot_interval=None if interval is None else MIN * interval,
        daily_limit=draw(st.sampled_from([None, 0, 1, 2])),
    )
    start = near(2, 1)
    # Sampled hours: integers() alone favours tiny ranges, which rarely contain a slot.
    end = start + MIN * (60 * draw(st.sampled_from(range(37))) + draw(st.integers(1, 59)))
    now = start - MIN * draw(st.integers(-6 * 60, 2 * 1440))  # mostly before the range

    def around_range() -> datetime:
        return start + MIN * draw(st.integers(-6 * 60, (end - start) // MIN + 6 * 60))

    busy = []
    for _ in range(draw(st.integers(0, 8))):
        at = around_range()
        length = MIN * draw(st.integers(0, 240))
        busy.append(Busy(at, at + length, draw(st.sampled_from("ABC"))))
    booked = []
    for _ in range(draw(st.integers(0, 4))):
        at = around_range()
        booked.append(
            Booked(
                at,
                at + MIN * draw(st.sampled_from([15, 30, 60])),
                MIN * draw(st.sampled_from([0, 10, 20])),
                MIN * draw(st.sampled_from([0, 10, 20])),
                draw(st.sampled_from([slug, "other"])),
            )
        )
    return host, mt, busy, booked, now, start, end


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(scenarios())
def test_slots_match_the_reference(case) -> None:
    host, mt, busy, booked, now, start, end = case
    ref = Reference(*case)
    expected = [s for s in ref.candidates(start, end) if ref.verdict(s)[0] is None]
    assert slots(*case) == expected


@SETTINGS
@given(scenarios())
def test_explained_candidates_match_the_reference(case) -> None:
    host, mt, busy, booked, now, start, end = case
    ref = Reference(*case)
    got = explain_candidates(*case)
    assert [s for s, _, _ in got] == ref.candidates(start, end)
    for s, reason, detail in got:
        expected_reason, details = ref.verdict(s)
        assert reason == expected_reason, s
        assert detail in details or details == {"any"}, s


@SETTINGS
@given(scenarios())
def test_windows_match_the_reference(case) -> None:
    host, _, _, _, _, start, end = case
    # Walk from a day earlier: the high-water clock must have seen the first pass of a
    # repeated hour before it reaches the second.
    found = runs(available_minutes(host, start - timedelta(days=1), end))
    expected = [(max(a, start), min(b, end)) for a, b in found if b > start]
    assert windows(host, start, end) == expected


@SETTINGS
@given(scenarios(), st.data())
def test_single_start_checks_agree_with_slots(case, data) -> None:
    host, mt, busy, booked, now, start, end = case
    offered = slots(*case)
    candidates = [s for s, _, _ in explain_candidates(*case)]
    probes = candidates[:: max(1, len(candidates) // 8)]
    for _ in range(5):
        probes.append(start + MIN * data.draw(st.integers(0, (end - start) // MIN - 1)))
    for s in probes:
        blocked = check(host, mt, busy, booked, now, s)
        assert (blocked is None) == (s in offered), s
        assert is_offered(host, mt, busy, booked, now, s) == (s in offered)


@SETTINGS
@given(scenarios(), st.integers(0, 36 * 60))
def test_splitting_the_range_changes_nothing(case, cut_minutes) -> None:
    host, mt, busy, booked, now, start, end = case
    cut = min(start + MIN * cut_minutes, end)
    left = slots(host, mt, busy, booked, now, start, cut)
    right = slots(host, mt, busy, booked, now, cut, end)
    assert left + right == slots(*case)


@SETTINGS
@given(scenarios(), st.sampled_from([15, 30, 60]))
def test_explained_cells_match_the_reference(case, cell_minutes) -> None:
    host, mt, busy, booked, now, start, end = case
    cell = MIN * cell_minutes
    ref = Reference(*case)
    covering_starts = ref.candidates(start - mt.duration + MIN, end)
    verdicts = {s: ref.verdict(s) for s in covering_starts}
    got = explain(*case, cell=cell)
    assert got[0][0] == start and got[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(got, got[1:], strict=False))
    for cell_start, cell_end, reason, _ in got:
        covering = [s for s in covering_starts if s < cell_end and s + mt.duration > cell_start]
        if not covering:
            assert reason == "outside_hours"
        elif any(verdicts[s][0] is None for s in covering):
            assert reason is None
        else:
            assert reason == max((verdicts[s][0] for s in covering), key=ORDER.index)
