"""Meeting types: list, create, edit, delete.

A type is addressed by its id in these URLs, so renaming its link name never
breaks the edit page; the invitee-facing URL uses the slug.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from flask import abort
from flask_babel import gettext as _
from flask_login import current_user
from peewee import fn

from portal import clock
from portal.booking.checks import BookingError
from portal.booking.meeting_types import save_meeting_type
from portal.models import Booking, MeetingType, to_db
from portal.web.forms import MeetingTypeForm
from portal.web.render import is_htmx, render
from portal.web.settings import bp, done

FIELDS = (
    "name",
    "slug",
    "description",
    "duration_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "lead_time_minutes",
    "window_days",
    "slot_interval_minutes",
    "daily_limit",
    "location",
    "location_kind",
    "is_active",
)


def owned_type(type_id: int) -> MeetingType:
    """The signed-in host's meeting type, or 404 (also for another host's id)."""
    mt = MeetingType.get_or_none(MeetingType.id == type_id, MeetingType.user == current_user.id)
    if mt is None:
        abort(404)
    return mt


def _list_page():
    types = list(
        MeetingType.select()
        .where(MeetingType.user == current_user.id)
        .order_by(MeetingType.name, MeetingType.id)
    )
    counts = (
        Booking.select(Booking.meeting_type, fn.COUNT(Booking.id))
        .where(
            Booking.host == current_user.id,
            Booking.status == "confirmed",
            Booking.start >= to_db(clock.now()),
        )
        .group_by(Booking.meeting_type)
        .tuples()
    )
    upcoming: dict[int, int] = dict(cast("Iterable[tuple[int, int]]", counts))
    return render("settings/types.html", "types", types=types, upcoming=upcoming)


@bp.route("/types")
def types():
    """The host's meeting types with their booking links."""
    return _list_page()


def _save(form: MeetingTypeForm, mt: MeetingType | None) -> bool:
    """Save the form as ``mt`` (a new type when None); False with the error on its field."""
    values = {name: getattr(form, name).data for name in FIELDS}
    values["description"] = values["description"] or ""
    try:
        save_meeting_type(current_user, values, mt)
    except BookingError as exc:
        getattr(form, exc.field or "slug").errors.append(exc.message)
        return False
    return True


@bp.route("/types/new", methods=["GET", "POST"])
def types_new():
    """Create a meeting type; errors come back next to their fields."""
    form = MeetingTypeForm()
    if form.validate_on_submit() and _save(form, None):
        return done(_("Created “%(name)s”.", name=form.name.data), "settings.types")
    return render("settings/type_form.html", "type_form", form=form, mt=None)


@bp.route("/types/<int:type_id>", methods=["GET", "POST"])
def types_edit(type_id: int):
    """Edit a meeting type. Existing bookings keep the buffers they were made with."""
    mt = owned_type(type_id)
    form = MeetingTypeForm(obj=mt)
    if form.validate_on_submit() and _save(form, mt):
        return done(_("Saved “%(name)s”.", name=mt.name), "settings.types")
    return render("settings/type_form.html", "type_form", form=form, mt=mt)


@bp.route("/types/<int:type_id>/delete", methods=["POST"])
def types_delete(type_id: int):
    """Delete a meeting type; its bookings stay (they keep the type's link name)."""
    mt = owned_type(type_id)
    name = mt.name
    mt.delete_instance()
    if is_htmx():
        return _list_page()
    return done(_("Deleted “%(name)s”.", name=name), "settings.types")
