"""Why starts are not offered: the slot engine's verdicts per start and per cell of time.

The host's preview (``portal.web.settings.preview``) shows them; they come from the very
``Engine`` that decides what ``portal.booking.availability.slots`` offers, so the two
cannot disagree. Pure and stdlib only, like the engine.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta

from portal.booking.availability import (
    REASONS,
    TICK,
    Blocked,
    Booked,
    Busy,
    Engine,
    HostRules,
    MeetingRules,
    aware_utc,
)

__all__ = ["explain", "explain_blocked", "explain_candidates"]


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
    start, end = aware_utc(start, "start"), aware_utc(end, "end")
    engine = Engine(host, mt, now)
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
    start, end = aware_utc(start, "start"), aware_utc(end, "end")
    if cell <= timedelta(0):
        raise ValueError("cell must be positive")
    engine = Engine(host, mt, now)
    first = start - engine.duration + TICK  # earliest start whose slot reaches the first cell
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
