"""Appointments: upcoming, past and cancelled bookings, their details, and host cancel."""

from __future__ import annotations

from flask import abort, request
from flask_babel import gettext as _
from flask_login import current_user

from portal import clock
from portal.booking import service
from portal.booking.checks import BookingError
from portal.booking.shape import calendar_event_state
from portal.models import Booking, to_db
from portal.web.forms import CancelForm
from portal.web.render import is_htmx, render
from portal.web.settings import bp, done

TABS = ("upcoming", "past", "cancelled")


def tab_names() -> dict[str, str]:
    """Each tab's label, and the caption of its table, in the page's language."""
    return {"upcoming": _("Upcoming"), "past": _("Past"), "cancelled": _("Cancelled")}


def tab_captions(zone: str) -> dict[str, str]:
    return {
        "upcoming": _("Upcoming appointments, times in %(zone)s", zone=zone),
        "past": _("Past appointments, times in %(zone)s", zone=zone),
        "cancelled": _("Cancelled appointments, times in %(zone)s", zone=zone),
    }


PER_PAGE = 25


def owned_booking(uid: str) -> Booking:
    """The signed-in host's booking, or 404 (also for another host's uid)."""
    row = Booking.get_or_none(Booking.uid == uid, Booking.host == current_user.id)
    if row is None:
        abort(404)
    return row


def tab_query(tab: str):
    now = to_db(clock.now())
    query = Booking.select().where(Booking.host == current_user.id)
    if tab == "upcoming":
        return query.where(Booking.status == "confirmed", Booking.end > now).order_by(Booking.start)
    if tab == "past":
        return query.where(Booking.status == "confirmed", Booking.end <= now).order_by(
            Booking.start.desc()
        )
    # A moved booking lives on as its successor (upcoming or past): it was not cancelled.
    return query.where(Booking.status == "cancelled").order_by(Booking.start.desc())


@bp.route("/appointments")
def appointments():
    """One tab of the list (``?tab=upcoming|past|cancelled&page=N``), newest relevant first."""
    tab = request.args.get("tab", "upcoming")
    if tab not in TABS:
        tab = "upcoming"
    asked = request.args.get("page", "1")
    page = max(1, int(asked)) if asked.isdigit() and len(asked) < 6 else 1
    query = tab_query(tab)
    total = query.count()
    rows = list(query.paginate(page, PER_PAGE))
    counts = {t: tab_query(t).count() for t in TABS}
    return render(
        "settings/appointments.html",
        "appointments",
        tab=tab,
        tabs=TABS,
        tab_names=tab_names(),
        tab_captions=tab_captions(current_user.timezone),
        rows=rows,
        counts=counts,
        page=page,
        has_next=page * PER_PAGE < total,
    )


def _detail(row: Booking, form: CancelForm, error: str = ""):
    moved_to = None
    if row.status == "rescheduled":
        moved_to = Booking.get_or_none(Booking.rescheduled_from == row)
    return render(
        "settings/appointment.html",
        "appointment",
        b=row,
        form=form,
        error=error,
        moved_to=moved_to,
        calendar_event=calendar_event_state(row),
        can_cancel=row.status == "confirmed" and row.end_utc > clock.now(),
    )


@bp.route("/appointments/<uid>")
def appointments_detail(uid: str):
    """Everything about one booking, with the cancel form while it can still be cancelled."""
    return _detail(owned_booking(uid), CancelForm(formdata=None))


@bp.route("/appointments/<uid>/cancel", methods=["POST"])
def appointments_cancel(uid: str):
    """Cancel as the host, with an optional reason the invitee is told."""
    row = owned_booking(uid)
    form = CancelForm()
    if not form.validate_on_submit():
        return _detail(row, form)
    if row.end_utc <= clock.now():
        return _detail(row, form, _("This meeting is over; there is nothing to cancel."))
    try:
        row = service.cancel(row, by="host", reason=form.reason.data or "", now=clock.now())
    except BookingError as exc:
        return _detail(Booking.get_by_id(row.id), form, exc.message)
    if not is_htmx():
        return done(_("The meeting is cancelled."), "settings.appointments_detail", uid=uid)
    return _detail(row, CancelForm(formdata=None))
