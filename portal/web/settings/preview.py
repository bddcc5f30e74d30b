"""Availability preview: one week of half-hour cells for a meeting type, each saying why.

The reasons come from the slot engine itself (``portal.booking.explain``), fed
with exactly what the booking page uses (rules, cached busy times, bookings),
so the preview cannot disagree with what invitees are offered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import abort, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal import clock
from portal.booking.checks import zone
from portal.booking.explain import explain
from portal.booking.rules import cached_busy, existing_bookings, host_rules, meeting_rules
from portal.i18n import short_day, time_label, weekday_names
from portal.models import MeetingType
from portal.web.render import render
from portal.web.settings import SLOTS, bp

CELL = timedelta(minutes=30)
# Wide enough for any buffer or meeting reaching into the week from outside it.
PAD = timedelta(days=2)

# The word in each cell (the legend explains them); lazy, read in the page's language.
SHORT = {
    None: _l("Open"),
    "outside_hours": "",
    "lead_time": _l("Notice"),
    "window": _l("Window"),
    "daily_limit": _l("Limit"),
    "busy": _l("Busy"),
    "booked": _l("Booked"),
    "buffer": _l("Buffer"),
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
        return _("Open: invitees can book this time")
    if reason == "outside_hours":
        return _("Outside your hours")
    if reason == "lead_time":
        return _("Too soon: inside the minimum notice")
    if reason == "window":
        return _("Too far ahead: beyond the booking window")
    if reason == "daily_limit":
        # The engine's detail is "N of M booked that day" (stdlib only, so not translated).
        counts = re.match(r"(\d+) of (\d+)", detail)
        if counts:
            taken, limit = int(counts.group(1)), int(counts.group(2))
            return _(
                "Daily limit reached (%(taken)d of %(limit)d booked that day)",
                taken=taken,
                limit=limit,
            )
        return _("Daily limit reached")
    if reason == "busy":
        return _("Busy on calendar %(name)s", name=detail) if detail else _("Busy on a calendar")
    if reason == "booked":
        name = type_names.get(detail)
        return _("Booked: %(name)s", name=name) if name else _("Booked")
    if reason == "buffer":
        if detail in type_names:
            return _("Buffer next to a booking (%(name)s)", name=type_names[detail])
        if detail:
            return _("Buffer next to busy time on calendar %(name)s", name=detail)
        return _("Buffer next to a meeting")
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
    missing = Cell("missing", "", _("This time does not exist on this day (clock change)"))
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
                grid[slot][day] = Cell("past", "", _("In the past"))
            else:
                text = describe(reason, detail, type_names)
                grid[slot][day] = Cell(reason, str(SHORT.get(reason, "")), text)
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
    """Blocked spans as text (``("Tue, Dec 15, 10:00 AM–11:00 AM", "Busy on calendar Work")``),
    for phones and screen readers where a grid of cells is hard to read."""
    out: list[tuple[str, str]] = []
    for day in range(7):
        current: tuple[int, Cell] | None = None
        for slot in [*rows, None]:
            cell: Cell | None = grid[slot][day] if slot is not None else None
            interesting = cell is not None and cell.reason not in QUIET
            if current and (cell is None or not interesting or cell.text != current[1].text):
                begin, c = current
                end_slot = slot if slot is not None else rows.stop
                label = short_day(monday + timedelta(days=day))
                out.append((f"{label}, {_hhmm(begin)}–{_hhmm(end_slot)}", c.text))
                current = None
            if cell is not None and slot is not None and interesting and current is None:
                current = (slot, cell)
    return out


def _any_open(grid) -> bool:
    return any(c.reason is None for row in grid for c in row)


def _hhmm(slot: int) -> str:
    """The start of half hour ``slot`` as the page's language writes times ("9:30 AM", "09:30");
    slot 48 is the end of the day ("24:00" where the locale counts to 24, else midnight)."""
    clock = time(slot // 2, 30 * (slot % 2)) if slot < SLOTS else time(0)
    text = time_label(datetime.combine(date(2000, 1, 3), clock))
    return text.replace("00:00", "24:00", 1) if slot >= SLOTS and text.startswith("00:00") else text


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
        before = self.rows and self.rows.start > 0
        after = self.rows and self.rows.stop < SLOTS
        if before and after:
            return _(
                "%(a)s–%(b)s and %(c)s–%(d)s",
                a=_hhmm(0),
                b=_hhmm(self.rows.start),
                c=_hhmm(self.rows.stop),
                d=_hhmm(SLOTS),
            )
        if before:
            return f"{_hhmm(0)}–{_hhmm(self.rows.start)}"
        if after:
            return f"{_hhmm(self.rows.stop)}–{_hhmm(SLOTS)}"
        return ""


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
    week_days = [monday + timedelta(days=d) for d in range(7)]
    return render(
        "settings/preview.html",
        "preview",
        types=types,
        chosen=chosen,
        monday=monday,
        days=list(zip(weekday_names("abbreviated"), week_days, strict=True)),
        day_names=weekday_names("wide"),
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
