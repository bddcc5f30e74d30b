"""Weekly hours (a 7 × 48 grid of half hours) and date overrides.

The grid is a form of checkboxes, one per half hour, posting to the same URL
with or without JavaScript; the script only paints the checkboxes and submits
them through htmx. The server keeps windows, not cells: adjacent cells merge.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time

from flask import abort, request
from flask_babel import gettext as _
from flask_login import current_user

from portal import clock
from portal.booking.checks import zone
from portal.booking.hours import delete_override, save_availability, save_override
from portal.booking.wallclock import format_clock, parse_clock
from portal.i18n import date_medium, time_label, weekday_names
from portal.models import DateOverride, WeeklyHours
from portal.web.forms import OverrideForm, timezone_names, zone_suggestions
from portal.web.render import is_htmx, render
from portal.web.settings import SLOTS, bp, done
from portal.web.timezones import canonical

CELL_RE = re.compile(r"^([0-6])-([0-9]|[1-3][0-9]|4[0-7])$")


def cells_from_rows(rows) -> tuple[list[list[bool]], bool]:
    """``grid[weekday][slot]`` from stored windows, and whether any window is off the grid.

    A cell is on only when a window covers all of it, so saving the grid never
    offers time the host did not give (windows set through the API at, say,
    09:15 are rounded inwards, and the page says so).
    """
    grid = [[False] * SLOTS for _ in range(7)]
    ragged = False
    for row in rows:
        start, end = parse_clock(row.start, loose=True), parse_clock(row.end, loose=True)
        if start is None or end is None or not 0 <= row.weekday <= 6:
            ragged = True
            continue
        if start % 30 or end % 30:
            ragged = True
        for slot in range(-(-start // 30), end // 30):
            grid[row.weekday][slot] = True
    return grid, ragged


def windows_from_cells(grid: list[list[bool]]) -> dict[int, list[tuple[str, str]]]:
    """Runs of adjacent cells → ``{weekday: [("09:00", "17:00"), …]}``; the last cell ends 24:00."""
    out: dict[int, list[tuple[str, str]]] = {}
    for weekday, day in enumerate(grid):
        runs: list[tuple[str, str]] = []
        slot = 0
        while slot < SLOTS:
            if not day[slot]:
                slot += 1
                continue
            first = slot
            while slot < SLOTS and day[slot]:
                slot += 1
            runs.append((format_clock(first * 30), format_clock(slot * 30)))
        out[weekday] = runs
    return out


def parse_cells(values: list[str]) -> list[list[bool]] | None:
    """The grid from posted ``cell=<weekday>-<slot>`` values; None when one is malformed."""
    grid = [[False] * SLOTS for _ in range(7)]
    for value in values:
        m = CELL_RE.match(value)
        if not m:
            return None
        grid[int(m.group(1))][int(m.group(2))] = True
    return grid


def clock_label(text: str) -> str:
    """A stored wall-clock time ("13:30", "24:00") as the page's language writes it
    ("1:30 PM" / "13:30"); "24:00" is the end of the day, midnight in 12-hour locales."""
    minutes = parse_clock(text, loose=True)
    if minutes is None:
        return text
    shown = time_label(datetime.combine(date(2000, 1, 3), time(minutes // 60 % 24, minutes % 60)))
    if minutes == 24 * 60 and shown.startswith("00:00"):
        return "24:00"
    return shown


def ranges_label(ranges) -> str:
    """``[("09:00", "12:00"), …]`` as "9:00 AM–12:00 PM, …" in the page's language."""
    return ", ".join(f"{clock_label(a)}–{clock_label(b)}" for a, b in ranges)


def summary(windows: dict[int, list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """``[("Monday", "9:00 AM–12:00 PM, 1:00 PM–5:00 PM"), …]`` for the text version of the
    grid, in the page's language."""
    names = weekday_names("wide")
    return [(names[d], ranges_label(windows.get(d, [])) or _("unavailable")) for d in range(7)]


def _hours_page(
    state: str = "",
    error: str = "",
    code: int = 200,
    posted: list[list[bool]] | None = None,
    timezone: str | None = None,
    zone_error: bool = False,
):
    """The grid page (or its status line for htmx); a refused POST shows what was posted."""
    rows = list(WeeklyHours.select().where(WeeklyHours.user == current_user.id))
    stored, ragged = cells_from_rows(rows)
    return render(
        "settings/hours.html",
        "hours_status" if state or error else "hours",
        status=code,
        grid=posted or stored,
        ragged=ragged,
        days=weekday_names("wide"),
        short_days=weekday_names("abbreviated"),
        times=[clock_label(format_clock(s * 30)) for s in range(SLOTS + 1)],
        slots=SLOTS,
        state=state,
        error=error,
        zone_error=zone_error,
        timezone=current_user.timezone if timezone is None else timezone,
        timezones=zone_suggestions(),
        saved_at=time_label(clock.now().astimezone(zone(current_user.timezone))),
    )


@bp.route("/hours", methods=["GET", "POST"])
def hours():
    """The weekly hours grid; a POST replaces the week with the posted cells."""
    if request.method == "GET":
        return _hours_page()
    grid = parse_cells(request.form.getlist("cell"))
    if grid is None:
        # Only a tampered form gets here; htmx shows it through its error handler.
        return _hours_page(error=_("Some cells were not understood; nothing was saved."), code=422)
    # The zone the hours are in, as in PUT /api/v1/availability; absent keeps the host's.
    tz_name = (request.form.get("timezone") or current_user.timezone).strip()
    if tz_name not in timezone_names():
        shown = tz_name if len(tz_name) <= 60 else tz_name[:60] + "…"
        error = _(
            "Time zone: “%(zone)s” is not one we know (e.g. Europe/Berlin); nothing was saved.",
            zone=shown,
        )
        return _hours_page(error=error, code=422, posted=grid, timezone=tz_name, zone_error=True)
    tz_name = canonical(tz_name)  # an alias is kept as the zone it names
    moved = tz_name != current_user.timezone
    save_availability(current_user.id, windows_from_cells(grid), timezone=tz_name)
    if not is_htmx():
        return done(_("Weekly hours saved."), "settings.hours")
    if moved:  # every time on the page is in the old zone: show it afresh
        return "", 200, {"HX-Refresh": "true"}
    return _hours_page(state="saved")


# ---------------------------------------------------------------- date overrides


def host_today() -> date:
    """Today in the host's zone, on the app's clock: overrides before it are refused."""
    return clock.now().astimezone(zone(current_user.timezone)).date()


def _override_rows():
    today = host_today()
    rows = list(
        DateOverride.select()
        .where(DateOverride.user == current_user.id)
        .order_by(DateOverride.date)
    )
    upcoming = [r for r in rows if r.date >= today]
    past = [r for r in rows if r.date < today][-20:]
    return upcoming, past


def _overrides_page(form: OverrideForm, saved: str = ""):
    upcoming, past = _override_rows()
    return render(
        "settings/overrides.html",
        "overrides",
        form=form,
        upcoming=upcoming,
        past=past,
        saved=saved,
        today=host_today(),
    )


@bp.route("/overrides", methods=["GET", "POST"])
def overrides():
    """List date overrides, and add one (a day off, or special hours replacing the week's)."""
    form = OverrideForm(today=host_today())
    if form.validate_on_submit():
        windows = form.ranges if form.mode.data == "hours" else []
        save_override(current_user.id, form.date.data, windows)
        label = date_medium(form.date.data)
        if not is_htmx():
            return done(_("Saved the override for %(date)s.", date=label), "settings.overrides")
        return _overrides_page(OverrideForm(formdata=None, today=host_today()), saved=label)
    return _overrides_page(form)


@bp.route("/overrides/<int:override_id>/delete", methods=["POST"])
def overrides_delete(override_id: int):
    """Remove an override; that date follows the weekly hours again."""
    if not delete_override(current_user.id, override_id):
        abort(404)
    if not is_htmx():
        return done(_("Override removed."), "settings.overrides")
    return _overrides_page(OverrideForm(formdata=None, today=host_today()))


def override_label(row: DateOverride) -> str:
    ranges = row.interval_list()
    if not ranges:
        return _("Day off")
    return ranges_label(ranges)


@bp.app_template_filter("override_hours")
def _override_hours(row: DateOverride) -> str:
    return override_label(row)
