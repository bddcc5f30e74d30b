"""Availability preview: one week of half-hour cells for a meeting type, each saying why.

The reasons come from the slot engine itself (``portal.booking.explain``), fed
with exactly what the booking page uses (rules, cached busy times, bookings),
so the preview cannot disagree with what invitees are offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import abort, request
from flask_login import current_user

from portal import clock
from portal.booking.checks import zone
from portal.booking.explain import explain
from portal.booking.rules import cached_busy, existing_bookings, host_rules, meeting_rules
from portal.models import MeetingType
from portal.web.render import render
from portal.web.settings import DAYS, SLOTS, bp

CELL = timedelta(minutes=30)
# Wide enough for any buffer or meeting reaching into the week from outside it.
PAD = timedelta(days=2)

SHORT = {
    None: "Open",
    "outside_hours": "",
    "lead_time": "Notice",
    "window": "Window",
    "daily_limit": "Limit",
    "busy": "Busy",
    "booked": "Booked",
    "buffer": "Buffer",
}


# Cells the text list of blocked times leaves out: open, off hours, the past, DST gaps.
QUIET = (None, "outside_hours", "missing", "past")


@dataclass(frozen=True)
class Cell:
    reason: str | None  # None = bookable; also "past", and "missing" (skipped by a DST change)
    short: str
    text: str


def describe(reason: str | None, detail: str, type_names: dict[str, str]) -> str:
    """The sentence a host reads for one cell; ``detail`` as ``explain`` documents it."""
    if reason is None:
        return "Open: invitees can book this time"
    if reason == "outside_hours":
        return "Outside your hours"
    if reason == "lead_time":
        return "Too soon: inside the minimum notice"
    if reason == "window":
        return "Too far ahead: beyond the booking window"
    if reason == "daily_limit":
        return f"Daily limit reached ({detail})" if detail else "Daily limit reached"
    if reason == "busy":
        return f"Busy on calendar {detail}" if detail else "Busy on a calendar"
    if reason == "booked":
        name = type_names.get(detail)
        return f"Booked: {name}" if name else "Booked"
    if reason == "buffer":
        if detail in type_names:
            return f"Buffer next to a booking ({type_names[detail]})"
        if detail:
            return f"Buffer next to busy time on calendar {detail}"
        return "Buffer next to a meeting"
    return reason.replace("_", " ").capitalize()


def week_start(value: str | None, today: date) -> date:
    """The Monday of the week containing ``value`` (YYYY-MM-DD), else of ``today``."""
    try:
        day = date.fromisoformat(value) if value else today
    except ValueError:
        day = today
    if abs((day - today).days) > 3 * 366:
        day = today
    return day - timedelta(days=day.weekday())


def week_cells(user, mt: MeetingType, monday: date, now: datetime, type_names: dict[str, str]):
    """``grid[slot][day]`` of :class:`Cell` for the local week starting ``monday``."""
    tz = zone(user.timezone)
    first = datetime.combine(monday, time(0), tzinfo=tz).astimezone(UTC)
    last = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz).astimezone(UTC)
    rules, mrules = host_rules(user), meeting_rules(mt)
    busy = cached_busy(user, first - PAD, last + PAD)
    booked = existing_bookings(user, first - PAD, last + PAD)
    missing = Cell("missing", "", "This time does not exist on this day (clock change)")
    grid = [[missing] * 7 for _ in range(SLOTS)]
    filled = [[False] * 7 for _ in range(SLOTS)]
    for day in range(7):
        local_day = monday + timedelta(days=day)
        start = datetime.combine(local_day, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(local_day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        for cell_start, _end, reason, detail in explain(
            rules, mrules, busy, booked, now, start, end, CELL
        ):
            local = cell_start.astimezone(tz)
            slot = (local.hour * 60 + local.minute) // 30
            # After a clock change backwards the repeated hour keeps its first occurrence.
            if filled[slot][day]:
                continue
            filled[slot][day] = True
            if reason == "lead_time" and cell_start < now:
                # The engine calls the past "lead time"; the host reads it as the past.
                grid[slot][day] = Cell("past", "", "In the past")
            else:
                text = describe(reason, detail, type_names)
                grid[slot][day] = Cell(reason, SHORT.get(reason, ""), text)
    return grid


def visible_rows(grid) -> range:
    """Whole hours around everything not simply "outside your hours"; 08:00–18:00 if none."""
    used = [
        slot
        for slot, row in enumerate(grid)
        if any(c.reason not in ("outside_hours", "missing", "past") for c in row)
    ]
    if not used:
        return range(16, 36)
    return range(max(0, min(used) - min(used) % 2), min(SLOTS, max(used) + 2 - max(used) % 2))


def runs(grid, rows: range, monday: date) -> list[tuple[str, str]]:
    """Blocked spans as text (``("Tue 10:00–11:00", "Busy on calendar Work")``), for phones
    and screen readers where a grid of cells is hard to read."""
    out: list[tuple[str, str]] = []
    for day in range(7):
        current: tuple[int, Cell] | None = None
        for slot in [*rows, None]:
            cell: Cell | None = grid[slot][day] if slot is not None else None
            interesting = cell is not None and cell.reason not in QUIET
            if current and (cell is None or not interesting or cell.text != current[1].text):
                begin, c = current
                label = (monday + timedelta(days=day)).strftime("%a %d %b")
                end_slot = slot if slot is not None else rows.stop
                out.append((f"{label} {_hhmm(begin)}–{_hhmm(end_slot)}", c.text))
                current = None
            if cell is not None and slot is not None and interesting and current is None:
                current = (slot, cell)
    return out


def _any_open(grid) -> bool:
    return any(c.reason is None for row in grid for c in row)


def _hhmm(slot: int) -> str:
    return f"{slot // 2:02d}:{30 * (slot % 2):02d}"


@dataclass(frozen=True)
class Week:
    """The preview of one local week: its Monday, the cells, and the rows worth showing."""

    today: date
    monday: date
    grid: list | None
    rows: range

    @property
    def hidden(self) -> str:
        """The hours left out above and below the rows shown ("" when none are)."""
        spans = []
        if self.rows and self.rows.start > 0:
            spans.append(f"00:00–{_hhmm(self.rows.start)}")
        if self.rows and self.rows.stop < SLOTS:
            spans.append(f"{_hhmm(self.rows.stop)}–24:00")
        return " and ".join(spans)


def preview_week(user, mt: MeetingType | None, week: str | None, now: datetime, names) -> Week:
    """The week ``week`` names (else this one, or the next when nothing is left to book)."""
    today = now.astimezone(zone(user.timezone)).date()
    monday = week_start(week, today)
    if mt is None:
        return Week(today, monday, None, range(0))
    grid = week_cells(user, mt, monday, now, names)
    if not week and not _any_open(grid):
        # Late in the week nothing is left to book: start with next week instead.
        monday += timedelta(days=7)
        grid = week_cells(user, mt, monday, now, names)
    return Week(today, monday, grid, visible_rows(grid))


def _chosen_type(types: list[MeetingType], wanted: str) -> MeetingType | None:
    """The type ``?type=<id>`` names (404 if it is not the host's), else the first active."""
    if not wanted:
        return next((t for t in types if t.is_active), types[0]) if types else None
    chosen = next((t for t in types if t.id == int(wanted)), None) if wanted.isdigit() else None
    if chosen is None:
        abort(404)
    return chosen


@bp.route("/preview")
def preview():
    """The week view; ``?type=<id>&week=YYYY-MM-DD`` pick the meeting type and the week."""
    user = current_user._get_current_object()
    types = list(MeetingType.select().where(MeetingType.user == user.id).order_by(MeetingType.name))
    chosen = _chosen_type(types, request.args.get("type", ""))
    names = {str(t.id): t.name for t in types}
    week = preview_week(user, chosen, request.args.get("week"), clock.now(), names)
    monday = week.monday
    return render(
        "settings/preview.html",
        "preview",
        types=types,
        chosen=chosen,
        monday=monday,
        days=[(DAYS[d][:3], monday + timedelta(days=d)) for d in range(7)],
        grid=week.grid,
        rows=week.rows,
        hidden=week.hidden,
        hhmm=_hhmm,
        runs=runs(week.grid, week.rows, monday) if week.grid else [],
        prev_week=(monday - timedelta(days=7)).isoformat(),
        next_week=(monday + timedelta(days=7)).isoformat(),
        this_week=week_start(None, week.today).isoformat(),
        today=week.today,
    )
