"""Table-driven cases for every booking rule of the slot engine (SPEC: "Booking rules").

Times are written as host-local wall clock ("2026-03-29 09:00" in the host zone) and turned
into UTC by `at`, so each case reads like the rule it checks. Berlin's 2026 DST changes are
on 29 March (02:00 -> 03:00) and 25 October (03:00 -> 02:00).
"""

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from portal.booking.availability import (
    REASONS,
    Blocked,
    Booked,
    Busy,
    HostRules,
    MeetingRules,
    check,
    is_offered,
    slots,
    windows,
)
from portal.booking.explain import explain, explain_blocked, explain_candidates

BERLIN = "Europe/Berlin"
MIN = timedelta(minutes=1)
WEEKDAYS_9_17 = {day: (("09:00", "17:00"),) for day in range(5)}


def at(text: str, zone: str = BERLIN, fold: int = 0) -> datetime:
    """Local wall time in `zone` -> aware UTC (fold=1 picks an ambiguous time's second pass)."""
    naive = datetime.fromisoformat(text)
    return naive.replace(tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)


def local(instants: list[datetime], zone: str = BERLIN) -> list[str]:
    """UTC instants as local "YYYY-MM-DD HH:MM" strings, the form the cases are written in."""
    return [i.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") for i in instants]


def host(
    weekly: dict[int, tuple[tuple[str, str], ...]] | None = None,
    overrides: dict[date, tuple[tuple[str, str], ...]] | None = None,
    zone: str = BERLIN,
    lead: int = 0,
) -> HostRules:
    return HostRules(
        zone,
        WEEKDAYS_9_17 if weekly is None else weekly,
        overrides or {},
        timedelta(minutes=lead),
    )


def meeting(
    duration: int = 30,
    before: int = 0,
    after: int = 0,
    lead: int = 0,
    window_days: int = 60,
    interval: int | None = None,
    limit: int | None = None,
    slug: str = "intro",
) -> MeetingRules:
    return MeetingRules(
        slug,
        timedelta(minutes=duration),
        timedelta(minutes=before),
        timedelta(minutes=after),
        timedelta(minutes=lead),
        window_days,
        None if interval is None else timedelta(minutes=interval),
        limit,
    )


LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)  # a `now` that never gets in the way


def day_slots(
    rules: HostRules,
    mt: MeetingRules,
    day: str,
    busy: list[Busy] | None = None,
    booked: list[Booked] | None = None,
    now: datetime | None = None,
    zone: str = BERLIN,
) -> list[str]:
    """Offered starts during one local day as local "HH:MM"; `now` defaults to a week before."""
    start = at(f"{day} 00:00", zone)
    now = now or start - timedelta(days=7)
    end = at(f"{day} 00:00", zone) + timedelta(days=1)
    return [
        t[11:] for t in local(slots(rules, mt, busy or [], booked or [], now, start, end), zone)
    ]


# --------------------------------------------------------------------------- windows

WINDOW_CASES = [
    pytest.param(
        host(),
        "2026-01-05",  # Monday, winter
        [("2026-01-05 09:00", "2026-01-05 17:00")],
        id="weekday-hours",
    ),
    pytest.param(host(), "2026-01-10", [], id="weekend-closed"),
    pytest.param(
        host(overrides={date(2026, 1, 5): ()}),
        "2026-01-05",
        [],
        id="override-day-off",
    ),
    pytest.param(
        host(overrides={date(2026, 1, 10): (("10:00", "12:00"), ("14:00", "15:30"))}),
        "2026-01-10",
        [("2026-01-10 10:00", "2026-01-10 12:00"), ("2026-01-10 14:00", "2026-01-10 15:30")],
        id="override-special-hours-on-saturday",
    ),
    pytest.param(
        host(weekly={0: (("09:00", "12:00"), ("12:00", "17:00"), ("16:00", "18:00"))}),
        "2026-01-05",
        [("2026-01-05 09:00", "2026-01-05 18:00")],
        id="touching-and-overlapping-windows-merge",
    ),
    pytest.param(
        host(weekly={0: (("20:00", "24:00"),), 1: (("00:00", "02:00"),)}),
        "2026-01-05",
        [("2026-01-05 20:00", "2026-01-06 02:00")],
        id="24:00-merges-with-next-midnight",
    ),
    pytest.param(
        host(weekly={6: (("09:00", "17:00"),)}),
        "2026-03-29",
        [("2026-03-29 09:00", "2026-03-29 17:00")],
        id="dst-spring-09-17-stays-local",
    ),
    pytest.param(
        host(weekly={6: (("09:00", "17:00"),)}),
        "2026-10-25",
        [("2026-10-25 09:00", "2026-10-25 17:00")],
        id="dst-fall-09-17-stays-local",
    ),
    pytest.param(
        host(weekly={6: (("02:30", "05:00"),)}),
        "2026-03-29",
        [("2026-03-29 03:00", "2026-03-29 05:00")],
        id="dst-spring-nonexistent-start-moves-to-03:00",
    ),
    pytest.param(
        host(weekly={6: (("01:00", "02:30"),)}),
        "2026-03-29",
        [("2026-03-29 01:00", "2026-03-29 03:00")],
        id="dst-spring-nonexistent-end-moves-to-03:00",
    ),
    pytest.param(
        host(weekly={6: (("02:00", "02:45"),)}),
        "2026-03-29",
        [],
        id="dst-spring-window-inside-gap-is-empty",
    ),
]


@pytest.mark.parametrize(("rules", "day", "expected"), WINDOW_CASES)
def test_windows(rules: HostRules, day: str, expected: list[tuple[str, str]]) -> None:
    start = at(f"{day} 00:00")
    got = windows(rules, start, start + timedelta(days=2))
    spans = zip(local([w[0] for w in got]), local([w[1] for w in got]), strict=True)
    assert [w for w in spans if w[0].startswith(day)] == expected


@pytest.mark.parametrize(
    ("window", "expected_utc"),
    [
        # 02:30 happens twice on 25 October; both boundaries take the first (CEST) pass.
        (("02:30", "05:00"), ("2026-10-25T00:30", "2026-10-25T04:00")),
        (("00:00", "02:30"), ("2026-10-24T22:00", "2026-10-25T00:30")),
        (("02:00", "03:00"), ("2026-10-25T00:00", "2026-10-25T02:00")),
    ],
    ids=["ambiguous-start-first", "ambiguous-end-first", "repeated-hour-all-inside"],
)
def test_windows_dst_fall_ambiguous_is_first_occurrence(
    window: tuple[str, str], expected_utc: tuple[str, str]
) -> None:
    rules = host(weekly={6: (window,)})
    got = windows(rules, at("2026-10-24 12:00"), at("2026-10-26 00:00"))
    assert got == [tuple(datetime.fromisoformat(t).replace(tzinfo=UTC) for t in expected_utc)]


def test_windows_are_clipped_to_the_range() -> None:
    got = windows(host(), at("2026-01-05 10:00"), at("2026-01-05 12:00"))
    assert got == [(at("2026-01-05 10:00"), at("2026-01-05 12:00"))]


@pytest.mark.parametrize(
    ("zone", "window", "day", "expected_utc"),
    [
        ("Asia/Kathmandu", ("09:00", "17:00"), "2026-01-05", ("03:15", "11:15")),
        # Lord Howe springs forward 30 minutes, 02:00 -> 02:30, on 4 October 2026.
        ("Australia/Lord_Howe", ("02:00", "04:00"), "2026-10-04", ("15:30", "17:00")),
        ("America/New_York", ("09:00", "17:00"), "2026-03-08", ("13:00", "21:00")),
    ],
    ids=["kathmandu-0545", "lord-howe-30min-gap", "new-york-spring"],
)
def test_windows_in_other_zones(
    zone: str, window: tuple[str, str], day: str, expected_utc: tuple[str, str]
) -> None:
    weekday = date.fromisoformat(day).weekday()
    rules = host(weekly={weekday: (window,)}, zone=zone)
    start = at(f"{day} 00:00", zone)
    (got,) = windows(rules, start, start + timedelta(days=1))
    assert tuple(t.strftime("%H:%M") for t in got) == expected_utc


# --------------------------------------------------------------------------- the slot grid

GRID_CASES = [
    pytest.param(
        meeting(duration=30),
        [f"{h:02}:{m:02}" for h in range(9, 17) for m in (0, 30)],
        id="interval-defaults-to-duration",
    ),
    pytest.param(
        meeting(duration=45),
        ["09:00", "09:45", "10:30", "11:15", "12:00", "12:45", "13:30", "14:15", "15:00", "15:45"],
        id="tail-too-short-for-another-meeting",
    ),
    pytest.param(
        meeting(duration=60, interval=30),
        [f"{h:02}:{m:02}" for h in range(9, 16) for m in (0, 30)] + ["16:00"],
        id="interval-shorter-than-duration",
    ),
    pytest.param(
        meeting(duration=30, interval=90),
        ["09:00", "10:30", "12:00", "13:30", "15:00", "16:30"],
        id="interval-longer-than-duration",
    ),
]


@pytest.mark.parametrize(("mt", "expected"), GRID_CASES)
def test_slot_grid(mt: MeetingRules, expected: list[str]) -> None:
    assert day_slots(host(), mt, "2026-01-05") == expected


def test_grid_steps_in_real_time_across_spring_forward() -> None:
    """90 real minutes after 01:30 CET is 04:00 CEST, not 03:00."""
    rules = host(weekly={6: (("00:00", "06:00"),)})
    got = day_slots(rules, meeting(duration=60, interval=90), "2026-03-29")
    assert got == ["00:00", "01:30", "04:00"]


def test_grid_steps_in_real_time_across_fall_back() -> None:
    """The repeated hour is bookable twice; a 60-minute grid from 01:00 visits 02:00 both times."""
    rules = host(weekly={6: (("01:00", "05:00"),)})
    mt = meeting(duration=60)
    start, end = at("2026-10-25 00:00"), at("2026-10-26 00:00")
    got = slots(rules, mt, [], [], start - timedelta(days=1), start, end)
    assert got == [
        at("2026-10-25 01:00"),
        at("2026-10-25 02:00"),
        at("2026-10-25 02:00", fold=1),
        at("2026-10-25 03:00"),
        at("2026-10-25 04:00"),
    ]


def test_slot_may_cross_midnight_inside_a_merged_window() -> None:
    rules = host(weekly={0: (("20:00", "24:00"),), 1: (("00:00", "02:00"),)})
    mt = meeting(duration=90)
    got = slots(rules, mt, [], [], LONG_AGO, at("2026-01-05 00:00"), at("2026-01-07 00:00"))
    assert local(got) == [
        "2026-01-05 20:00",
        "2026-01-05 21:30",
        "2026-01-05 23:00",  # runs to 00:30 Tuesday
        "2026-01-06 00:30",
    ]


def test_grid_anchor_does_not_depend_on_the_query_range() -> None:
    """A window that began on Sunday keeps its Sunday grid when the query starts on Tuesday."""
    rules = host(
        weekly={6: (("22:00", "24:00"),), 0: (("00:00", "24:00"),), 1: (("00:00", "12:00"),)}
    )
    mt = meeting(duration=50)
    whole = slots(rules, mt, [], [], LONG_AGO, at("2026-01-04 00:00"), at("2026-01-07 00:00"))
    tuesday = slots(rules, mt, [], [], LONG_AGO, at("2026-01-06 00:00"), at("2026-01-07 00:00"))
    assert tuesday == [s for s in whole if s >= at("2026-01-06 00:00")]
    assert local(whole)[:2] == ["2026-01-04 22:00", "2026-01-04 22:50"]


def test_round_the_clock_host_has_one_fixed_grid() -> None:
    rules = host(weekly={day: (("00:00", "24:00"),) for day in range(7)})
    mt = meeting(duration=50)
    a = slots(rules, mt, [], [], LONG_AGO, at("2026-02-01 00:00"), at("2026-02-03 00:00"))
    b = slots(rules, mt, [], [], LONG_AGO, at("2026-02-02 07:00"), at("2026-02-03 00:00"))
    assert b == [s for s in a if s >= at("2026-02-02 07:00")]
    assert all(y - x == timedelta(minutes=50) for x, y in pairwise(a))


# --------------------------------------------------------------------------- lead & window


@pytest.mark.parametrize(
    ("host_lead", "type_lead", "first"),
    [(120, 60, "12:00"), (60, 120, "12:00"), (0, 0, "10:00"), (90, 0, "11:30")],
    ids=["host-lead-wins", "type-lead-wins", "no-lead", "lead-boundary-inclusive"],
)
def test_lead_time_is_the_larger_of_host_and_type(
    host_lead: int, type_lead: int, first: str
) -> None:
    now = at("2026-01-05 10:00")
    got = day_slots(host(lead=host_lead), meeting(lead=type_lead), "2026-01-05", now=now)
    assert got[0] == first


@pytest.mark.parametrize(
    ("window_days", "expected_last"),
    [(1, "2026-01-06 10:00"), (2, "2026-01-07 10:00"), (0, "2026-01-05 10:00")],
    ids=["one-day-inclusive", "two-days", "zero-days-only-now"],
)
def test_booking_window_counts_24h_days_from_now(window_days: int, expected_last: str) -> None:
    now = at("2026-01-05 10:00")
    got = slots(host(), meeting(window_days=window_days), [], [], now, now, now + timedelta(days=9))
    assert local(got)[-1] == expected_last


def test_booking_window_is_real_hours_across_dst() -> None:
    """One day after Saturday 10:00 CET is Sunday 11:00 CEST: 24 real hours, not the wall clock."""
    rules = host(weekly={5: (("09:00", "17:00"),), 6: (("09:00", "17:00"),)})
    now = at("2026-03-28 10:00")
    got = slots(rules, meeting(window_days=1), [], [], now, now, now + timedelta(days=3))
    assert local(got)[-1] == "2026-03-29 11:00"


# --------------------------------------------------------------------------- daily limit


def test_daily_limit_counts_this_type_on_the_host_local_day() -> None:
    """New York: a booking Tuesday 23:30 local is Wednesday in UTC but fills Tuesday's limit."""
    ny = "America/New_York"
    rules = host(zone=ny)
    late = at("2026-01-06 23:30", ny)
    assert late.date() == date(2026, 1, 7)
    booked = [Booked(late, late + timedelta(minutes=30), meeting_type="intro")]
    mt = meeting(limit=1)
    assert day_slots(rules, mt, "2026-01-06", booked=booked, zone=ny) == []
    assert len(day_slots(rules, mt, "2026-01-07", booked=booked, zone=ny)) == 16


def test_daily_limit_booking_after_local_midnight_counts_for_the_next_local_day() -> None:
    """Berlin: 00:30 Wednesday local is Tuesday 23:30 UTC; it fills Wednesday, not Tuesday."""
    early = at("2026-01-07 00:30")
    assert early.date() == date(2026, 1, 6)
    booked = [Booked(early, early + timedelta(minutes=30), meeting_type="intro")]
    mt = meeting(limit=1)
    assert len(day_slots(host(), mt, "2026-01-06", booked=booked)) == 16
    assert day_slots(host(), mt, "2026-01-07", booked=booked) == []


@pytest.mark.parametrize(
    ("limit", "slugs", "offered"),
    [
        (2, ["intro"], 15),  # one left; the 09:00 booking itself blocks 09:00
        (2, ["intro", "intro"], 0),
        (1, ["other"], 15),  # other meeting types do not count
        (0, ["intro", "intro"], 14),  # 0 = unlimited
        (None, ["intro", "intro"], 14),
    ],
    ids=["under-limit", "at-limit", "other-type-ignored", "zero-unlimited", "none-unlimited"],
)
def test_daily_limit(limit: int | None, slugs: list[str], offered: int) -> None:
    starts = [at("2026-01-05 09:00"), at("2026-01-05 16:30")]
    booked = [
        Booked(s, s + timedelta(minutes=30), meeting_type=t)
        for s, t in zip(starts, slugs, strict=False)
    ]
    assert len(day_slots(host(), meeting(limit=limit), "2026-01-05", booked=booked)) == offered


# --------------------------------------------------------------------------- conflicts


def busy(start: str, end: str, source: str = "Work") -> Busy:
    return Busy(at(start), at(end), source)


def booking(start: str, end: str, before: int = 0, after: int = 0, slug: str = "x") -> Booked:
    return Booked(at(start), at(end), timedelta(minutes=before), timedelta(minutes=after), slug)


D = "2026-01-05"
CONFLICT_CASES = [
    pytest.param(meeting(), [busy(f"{D} 10:00", f"{D} 11:00")], [], ["09:30", "11:00"], id="busy"),
    pytest.param(
        meeting(), [busy(f"{D} 10:00", f"{D} 10:01")], [], ["09:30", "10:30"], id="busy-one-minute"
    ),
    pytest.param(
        meeting(),
        [busy(f"{D} 10:00", f"{D} 10:00")],
        [],
        ["09:30", "10:00"],
        id="empty-busy-ignored",
    ),
    pytest.param(
        meeting(before=10, after=10),
        [busy(f"{D} 10:00", f"{D} 11:00")],
        [],
        ["09:00", "11:30"],
        id="own-buffers-keep-off-busy",
    ),
    pytest.param(
        meeting(interval=5, before=10),
        [busy(f"{D} 10:00", f"{D} 11:00")],
        [],
        ["09:30", "11:10"],
        id="buffer-touching-busy-is-fine",
    ),
    pytest.param(
        meeting(interval=5),
        [],
        [booking(f"{D} 10:00", f"{D} 10:30")],
        ["09:30", "10:30"],
        id="booking-touching-is-fine",
    ),
    pytest.param(
        meeting(interval=5),
        [],
        [booking(f"{D} 10:00", f"{D} 10:30", before=5, after=15)],
        ["09:25", "10:45"],
        id="neighbours-own-buffers",
    ),
    pytest.param(
        meeting(interval=5, before=10, after=20),
        [],
        [booking(f"{D} 10:00", f"{D} 10:30", before=5, after=15)],
        ["09:05", "10:55"],
        id="buffers-add-up",
    ),
]


@pytest.mark.parametrize(("mt", "busy_list", "booked", "around"), CONFLICT_CASES)
def test_conflicts(
    mt: MeetingRules, busy_list: list[Busy], booked: list[Booked], around: list[str]
) -> None:
    """`around` = the last offered start before the conflict and the first one after it."""
    got = day_slots(host(), mt, D, busy=busy_list, booked=booked)
    last_before = max(t for t in got if t < "10:00")
    first_after = min(t for t in got if t >= "10:00")
    assert [last_before, first_after] == around


def test_busy_in_another_zone_compares_as_instants() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    start = at(f"{D} 10:00").astimezone(tokyo)
    got = day_slots(host(), meeting(), D, busy=[Busy(start, start + timedelta(hours=1))])
    assert "10:00" not in got and "10:30" not in got and "11:00" in got


# --------------------------------------------------------------------------- explanations

NOW = at(f"{D} 09:40")
EXPLAIN_HOST = host(weekly={0: (("09:00", "14:00"),)})
EXPLAIN_MT = meeting(before=10, after=10, lead=20, limit=5, window_days=1)
EXPLAIN_BUSY = [busy(f"{D} 11:00", f"{D} 12:00", "Work")]
EXPLAIN_BOOKED = [booking(f"{D} 13:00", f"{D} 13:30", slug="demo")]


def test_explain_candidates_gives_the_first_reason() -> None:
    got = explain_candidates(
        EXPLAIN_HOST,
        EXPLAIN_MT,
        EXPLAIN_BUSY,
        EXPLAIN_BOOKED,
        NOW,
        at(f"{D} 00:00"),
        at(f"{D} 23:00"),
    )
    assert [(local([s])[0][11:], reason, detail) for s, reason, detail in got] == [
        ("09:00", "lead_time", ""),
        ("09:30", "lead_time", ""),
        ("10:00", None, ""),
        ("10:30", "buffer", "Work"),
        ("11:00", "busy", "Work"),
        ("11:30", "busy", "Work"),
        ("12:00", "buffer", "Work"),
        ("12:30", "buffer", "demo"),
        ("13:00", "booked", "demo"),
        ("13:30", "buffer", "demo"),
    ]


def test_explain_cells_for_the_host_preview() -> None:
    got = explain(
        EXPLAIN_HOST,
        EXPLAIN_MT,
        EXPLAIN_BUSY,
        EXPLAIN_BOOKED,
        NOW,
        at(f"{D} 08:00"),
        at(f"{D} 15:00"),
    )
    assert [(local([a])[0][11:], local([b])[0][11:], r, d) for a, b, r, d in got] == [
        ("08:00", "08:30", "outside_hours", ""),
        ("08:30", "09:00", "outside_hours", ""),
        ("09:00", "09:30", "lead_time", ""),
        ("09:30", "10:00", "lead_time", ""),
        ("10:00", "10:30", None, ""),
        ("10:30", "11:00", "buffer", "Work"),
        ("11:00", "11:30", "busy", "Work"),
        ("11:30", "12:00", "busy", "Work"),
        ("12:00", "12:30", "buffer", "Work"),
        ("12:30", "13:00", "buffer", "demo"),
        ("13:00", "13:30", "booked", "demo"),
        ("13:30", "14:00", "buffer", "demo"),
        ("14:00", "14:30", "outside_hours", ""),
        ("14:30", "15:00", "outside_hours", ""),
    ]


def test_explain_cell_next_to_busy_is_buffer_not_busy() -> None:
    """With 60-minute slots the cell after a meeting is covered by a start that runs into the
    meeting and by one that only buffers into it; the cell itself is free, so it says "buffer"."""
    mt = meeting(duration=60, interval=30, before=10)
    team = [busy(f"{D} 12:00", f"{D} 13:00", "Team")]
    got = explain(host(), mt, team, [], LONG_AGO, at(f"{D} 11:00"), at(f"{D} 14:00"))
    assert [r for _, _, r, _ in got] == [None, None, "busy", "busy", "buffer", None]


@pytest.mark.parametrize(
    ("mt", "booked", "now", "reason", "detail"),
    [
        (meeting(window_days=1), [], at("2025-12-30 12:00"), "window", ""),
        (meeting(lead=60 * 24 * 30), [], at("2025-12-30 12:00"), "lead_time", ""),
        (
            meeting(limit=1),
            [booking(f"{D} 16:30", f"{D} 17:00", slug="intro")],
            LONG_AGO,
            "daily_limit",
            "1 of 1 booked that day",
        ),
    ],
    ids=["window", "lead-time", "daily-limit"],
)
def test_explain_rules_that_close_a_whole_day(
    mt: MeetingRules, booked: list[Booked], now: datetime, reason: str, detail: str
) -> None:
    got = explain(host(), mt, [], booked, now, at(f"{D} 10:00"), at(f"{D} 11:00"))
    assert [(r, d) for _, _, r, d in got] == [(reason, detail)] * 2


def test_precedence_daily_limit_before_busy_and_lead_before_everything() -> None:
    mt = meeting(limit=1)
    booked = [booking(f"{D} 16:30", f"{D} 17:00", slug="intro")]
    start, end = at(f"{D} 11:00"), at(f"{D} 11:30")
    got = explain_candidates(host(), mt, EXPLAIN_BUSY, booked, LONG_AGO, start, end)
    assert [r for _, r, _ in got] == ["daily_limit"]
    got = explain_candidates(host(), mt, EXPLAIN_BUSY, booked, at(f"{D} 12:00"), start, end)
    assert [r for _, r, _ in got] == ["lead_time"]


def test_explain_blocked_joins_runs() -> None:
    got = explain_blocked(
        EXPLAIN_HOST,
        EXPLAIN_MT,
        EXPLAIN_BUSY,
        EXPLAIN_BOOKED,
        NOW,
        at(f"{D} 08:00"),
        at(f"{D} 12:00"),
    )
    assert got == [
        Blocked(at(f"{D} 08:00"), at(f"{D} 09:00"), "outside_hours"),
        Blocked(at(f"{D} 09:00"), at(f"{D} 10:00"), "lead_time"),
        Blocked(at(f"{D} 10:30"), at(f"{D} 11:00"), "buffer", "Work"),
        Blocked(at(f"{D} 11:00"), at(f"{D} 12:00"), "busy", "Work"),
    ]


def test_explain_last_cell_is_cut_at_end() -> None:
    got = explain(host(), meeting(), [], [], LONG_AGO, at(f"{D} 09:00"), at(f"{D} 09:45"))
    assert [(b - a) for a, b, _, _ in got] == [timedelta(minutes=30), timedelta(minutes=15)]


def test_reasons_are_the_documented_set() -> None:
    assert REASONS == (
        "outside_hours",
        "lead_time",
        "window",
        "daily_limit",
        "busy",
        "booked",
        "buffer",
    )


# --------------------------------------------------------------------------- single start


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (f"{D} 10:00", None),
        (
            f"{D} 10:10",
            Blocked(at(f"{D} 10:10"), at(f"{D} 10:40"), "outside_hours", "off the slot grid"),
        ),
        (f"{D} 16:45", Blocked(at(f"{D} 16:45"), at(f"{D} 17:15"), "outside_hours", "")),
        (f"{D} 11:30", Blocked(at(f"{D} 11:30"), at(f"{D} 12:00"), "busy", "Work")),
    ],
    ids=["offered", "off-grid", "past-closing", "busy"],
)
def test_check_one_start(start: str, expected: Blocked | None) -> None:
    got = check(host(), meeting(), EXPLAIN_BUSY, [], LONG_AGO, at(start))
    assert got == expected
    assert is_offered(host(), meeting(), EXPLAIN_BUSY, [], LONG_AGO, at(start)) is (got is None)


def test_is_offered_agrees_with_slots_and_accepts_any_aware_zone() -> None:
    offered = slots(
        host(), meeting(), EXPLAIN_BUSY, [], LONG_AGO, at(f"{D} 00:00"), at(f"{D} 23:00")
    )
    tokyo = ZoneInfo("Asia/Tokyo")
    for s in offered:
        assert is_offered(host(), meeting(), EXPLAIN_BUSY, [], LONG_AGO, s.astimezone(tokyo))
    assert all(s.tzinfo is UTC for s in offered)


# --------------------------------------------------------------------------- validation

NAIVE = datetime(2026, 1, 5, 10, 0)


A, B = at(f"{D} 00:00"), at(f"{D} 23:00")


@pytest.mark.parametrize(
    ("busy_list", "booked", "now", "start", "end"),
    [
        pytest.param([], [], NAIVE, A, B, id="now"),
        pytest.param([], [], LONG_AGO, NAIVE, B, id="start"),
        pytest.param([], [], LONG_AGO, A, NAIVE, id="end"),
        pytest.param([Busy(NAIVE, NAIVE + MIN)], [], LONG_AGO, A, B, id="busy-start"),
        pytest.param([Busy(A, NAIVE + MIN)], [], LONG_AGO, A, B, id="busy-end"),
        pytest.param([], [Booked(NAIVE, NAIVE + MIN)], LONG_AGO, A, B, id="booked"),
    ],
)
def test_naive_datetimes_are_rejected(
    busy_list: list[Busy], booked: list[Booked], now: datetime, start: datetime, end: datetime
) -> None:
    with pytest.raises(ValueError, match="aware"):
        slots(host(), meeting(), busy_list, booked, now, start, end)
    with pytest.raises(ValueError, match="aware"):
        explain(host(), meeting(), busy_list, booked, now, start, end)


def test_naive_datetimes_are_rejected_by_the_other_entry_points() -> None:
    with pytest.raises(ValueError, match="aware"):
        is_offered(host(), meeting(), [], [], LONG_AGO, NAIVE)
    with pytest.raises(ValueError, match="aware"):
        windows(host(), NAIVE, B)


@pytest.mark.parametrize(
    ("rules", "mt"),
    [
        (host(zone="Mars/Olympus_Mons"), meeting()),
        (host(zone="../etc/passwd"), meeting()),
        (host(zone=""), meeting()),
        (host(weekly={0: (("9:00", "17:00"),)}), meeting()),
        (host(weekly={0: (("09:00", "24:30"),)}), meeting()),
        (host(weekly={0: (("17:00", "09:00"),)}), meeting()),
        (host(weekly={7: (("09:00", "17:00"),)}), meeting()),
        (host(lead=-1), meeting()),
        (host(), meeting(duration=0)),
        (host(), meeting(interval=0)),
        (host(), meeting(before=-5)),
        (host(), meeting(window_days=-1)),
        (host(), meeting(limit=-1)),
    ],
    ids=[
        "unknown-zone",
        "path-zone",
        "empty-zone",
        "one-digit-hour",
        "past-24:00",
        "inverted",
        "weekday-7",
        "negative-host-lead",
        "zero-duration",
        "zero-interval",
        "negative-buffer",
        "negative-window",
        "negative-limit",
    ],
)
def test_bad_rules_are_rejected(rules: HostRules, mt: MeetingRules) -> None:
    with pytest.raises(ValueError):
        slots(rules, mt, [], [], LONG_AGO, at(f"{D} 00:00"), at(f"{D} 23:00"))


def test_empty_or_reversed_range_gives_nothing() -> None:
    assert slots(host(), meeting(), [], [], LONG_AGO, at(f"{D} 12:00"), at(f"{D} 12:00")) == []
    assert slots(host(), meeting(), [], [], LONG_AGO, at(f"{D} 12:00"), at(f"{D} 09:00")) == []
    assert windows(host(), at(f"{D} 12:00"), at(f"{D} 09:00")) == []
