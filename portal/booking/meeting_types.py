"""Saving a host's meeting type: the one write the settings page and the JSON API share.

Bounds are checked where the input is parsed (the settings form and the API schema share
them, ``portal.api.schemas.meeting_types``); what needs the database or the host is checked
here: a link name (slug) is the host's only once, and a location is read with its kind
(``portal.booking.locations``).
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import gettext as _
from peewee import IntegrityError

from portal.booking import locations
from portal.booking.checks import BookingError
from portal.models import MeetingType, User, compiled_sql, db, first_row_as


class SlugTaken(BookingError):
    status = 409
    code = "slug_taken"

    def __init__(self, slug: object) -> None:
        super().__init__(
            _("you already have a meeting type with the link name “%(slug)s”", slug=slug), "slug"
        )


def bookable(host_slug: str, type_slug: str) -> tuple[User, MeetingType] | None:
    """An active meeting type of an active host who takes bookings, or None.

    The one lookup behind every public page and public API call (it runs on each of them,
    so its one statement is compiled once and read without peewee's cursor wrappers).
    """
    sql = compiled_sql(
        "public-host-and-type",
        lambda: (
            User.select(User, MeetingType)
            .join(MeetingType, on=(MeetingType.user == User.id))
            .where(
                User.slug == "",
                User.is_active == True,  # noqa: E712
                User.allow_booking == True,  # noqa: E712
                MeetingType.slug == "",
                MeetingType.is_active == True,  # noqa: E712
            )
        ),
    )
    found = first_row_as(sql, (host_slug, True, True, type_slug, True), User, MeetingType)
    if found is None:
        return None
    user, mt = found
    mt.user = user
    return user, mt


def save_meeting_type(
    host: User, values: Mapping[str, object], mt: MeetingType | None = None
) -> MeetingType:
    """Create (``mt`` None) or change one of ``host``'s meeting types; the saved row.

    ``values`` maps model attributes to new values; a change may name only some. Kind
    and location are checked together whenever either is given. Raises ``BookingError``
    naming the field at fault (``SlugTaken`` for a link name in use).
    """
    mt = mt if mt is not None else MeetingType(user=host.id)
    changes = dict(values)
    if "location_kind" in changes or "location" in changes:
        kind = changes.get("location_kind", mt.location_kind)
        where = changes.get("location", mt.location)
        try:
            changes["location_kind"], changes["location"] = locations.clean_location(
                str(kind), str(where or ""), host
            )
        except locations.LocationError as exc:
            raise BookingError(exc.message, exc.field) from exc
    slug = changes.get("slug", mt.slug)
    clash = MeetingType.select().where(MeetingType.user == host.id, MeetingType.slug == slug)
    if mt.id is not None:
        clash = clash.where(MeetingType.id != mt.id)
    if clash.exists():
        raise SlugTaken(slug)
    for attr, value in changes.items():
        setattr(mt, attr, value)
    try:
        with db.atomic():
            mt.save()
    except IntegrityError as exc:  # a concurrent request took the slug
        raise SlugTaken(slug) from exc
    return mt
