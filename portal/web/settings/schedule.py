"""Settings → Schedule: what is coming, as a day list or a week grid.

``?view=list`` (two weeks from ``date``) or ``?view=week`` (the Monday-to-Sunday
week holding ``date``), in the host's time zone; ``portal.booking.schedule`` gathers
bookings and busy blocks. Read only: the page never changes anything.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import request
from flask_login import current_user

from portal import clock
from portal.booking import schedule as agenda
from portal.booking.rules import local_day_range
from portal.web.render import render
from portal.web.settings import bp

LIST_DAYS = 14
DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day(value: str | None, today: date) -> date:
    if value and DAY_RE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return today
        if abs((day - today).days) <= 3 * 366:
            return day
    return today


@bp.route("/schedule")
def schedule():
    """The host's bookings and calendar busy times; htmx swaps the ``schedule`` block."""
    tz = ZoneInfo(current_user.timezone)
    today = clock.now().astimezone(tz).date()
    view = "week" if request.args.get("view") == "week" else "list"
    day = _day(request.args.get("date"), today)
    if view == "week":
        first = day - timedelta(days=day.weekday())
        last, step = first + timedelta(days=6), 7
    else:
        first, last, step = day, day + timedelta(days=LIST_DAYS - 1), LIST_DAYS
    start, end = local_day_range(first, last, tz)
    days = agenda.by_day(agenda.items(current_user, start, end), first, last, tz)
    grid = agenda.week_grid(days, tz) if view == "week" else None
    return render(
        "details/schedule.html",
        "schedule",
        view=view,
        tz=tz,
        today=today,
        first=first,
        last=last,
        days=days,
        grid=grid,
        prev_day=first - timedelta(days=step),
        next_day=first + timedelta(days=step),
        span_text=lambda item, day: agenda.span_text(item, day, tz),
    )
