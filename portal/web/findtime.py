"""Find a time (``/settings/find-time``): a week of co-workers' free/busy, and booking a slot.

Any signed-in host may use it. The page is a GET form (co-workers, week,
length) and, once co-workers are picked, the grid; every slot where everyone
is free is a submit button of one POST form, so a click books the meeting
(``portal.org.findtime.book_meeting``) and lands on the new appointment.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import clock
from portal.booking.checks import BookingError, parse_start, zone
from portal.models import User, parse_id
from portal.org import findtime
from portal.web.guards import hosts_only
from portal.web.render import form_status, render

bp = Blueprint("findtime", __name__, url_prefix="/settings/find-time")


hosts_only(bp)


def _ids(values: list[str]) -> list[int]:
    out: list[int] = []
    for value in values:
        number = parse_id(value)
        if number is not None and number not in out:
            out.append(number)
    return out


def _coworkers(ids: list[int]) -> list[User]:
    """The picked co-workers, in the order picked; unknown, inactive and self are dropped."""
    if not ids:
        return []
    found = {
        u.id: u
        for u in User.select().where(
            User.id.in_(ids[: findtime.MAX_COWORKERS + 1]),
            User.is_active == True,  # noqa: E712
            User.id != current_user.id,
        )
    }
    return [found[i] for i in ids if i in found]


def _week(value: str | None, today: date) -> date:
    try:
        day = date.fromisoformat(value) if value else today
    except ValueError:
        day = today
    lo = findtime.week_start(today)
    return min(max(findtime.week_start(day), lo), lo + timedelta(weeks=findtime.WEEKS_AHEAD))


def _duration(value: str | None) -> int:
    return int(value) if value and value.isdigit() and int(value) in findtime.DURATIONS else 30


def _page(
    coworkers: list[User],
    monday: date,
    duration: int,
    title: str = "",
    location: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
):
    host: User = current_user._get_current_object()
    now = clock.now()
    week = findtime.week_grid(host, coworkers, monday, duration, now) if coworkers else None
    today = now.astimezone(zone(host.timezone)).date()
    return render(
        "findtime/index.html",
        "findtime",
        status=status,
        choices=findtime.coworker_choices(host),
        picked={c.id for c in coworkers},
        coworkers=coworkers,
        week=week,
        monday=monday,
        prev_week=monday - timedelta(weeks=1) if monday > findtime.week_start(today) else None,
        next_week=monday + timedelta(weeks=1),
        duration=duration,
        durations=findtime.DURATIONS,
        title=title,
        location=location,
        errors=errors or {},
        max_coworkers=findtime.MAX_COWORKERS,
    )


@bp.get("/")
def index():
    """The picker, and the week grid once co-workers are chosen (changes nothing)."""
    host: User = current_user._get_current_object()
    today = clock.now().astimezone(zone(host.timezone)).date()
    ids = _ids(request.args.getlist("with"))
    errors = {}
    if len(ids) > findtime.MAX_COWORKERS:
        errors["with"] = _("pick at most %(num)d co-workers", num=findtime.MAX_COWORKERS)
        ids = ids[: findtime.MAX_COWORKERS]
    return _page(
        _coworkers(ids),
        _week(request.args.get("week"), today),
        _duration(request.args.get("duration")),
        errors=errors,
    )


@bp.post("/book")
def book():
    """Book the clicked slot for the host and the co-workers; a lost race re-shows the week."""
    host: User = current_user._get_current_object()
    today = clock.now().astimezone(zone(host.timezone)).date()
    ids = _ids(request.form.getlist("with"))
    coworkers = _coworkers(ids)
    raw_duration = request.form.get("duration", "")
    duration = int(raw_duration) if raw_duration.isdigit() else 0
    title = request.form.get("title", "")
    location = request.form.get("location", "")
    errors: dict[str, str] = {}
    if len(coworkers) != len(ids):
        errors["with"] = _("a co-worker you picked is no longer available")
    try:
        start = parse_start(request.form.get("start"))
    except BookingError as exc:
        errors["start"] = exc.message
        start = None
    status = 422
    if not errors and start is not None:
        try:
            meeting = findtime.book_meeting(host, coworkers, start, duration, title, location)
        except BookingError as exc:
            errors[exc.field or "start"] = exc.message
            status = exc.status
        else:
            names = ", ".join(c.display_name for c in coworkers)
            flash(_("Booked “%(title)s” with %(names)s.", title=meeting.title, names=names), "info")
            return redirect(url_for("settings.appointments_detail", uid=meeting.uid))
    when = start.date() if isinstance(start, datetime) else None
    return _page(
        coworkers,
        _week(request.form.get("week") or (when.isoformat() if when else None), today),
        _duration(raw_duration),
        title,
        location,
        errors,
        status=form_status(status),
    )
