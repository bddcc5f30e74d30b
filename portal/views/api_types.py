"""API: the host's meeting types (/api/v1/meeting-types)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, url_for
from peewee import IntegrityError

from .. import booking as svc
from .. import locations, openapi
from ..models import (
    SLUG_RE,
    MeetingType,
    User,
    db,
    validate_slug,
)
from .api import (
    MISSING,
    ApiError,
    Fields,
    bp,
    invalid,
    json_body,
    not_found,
    require_token,
)

# ---------------------------------------------------------------- meeting types

# JSON name → model attribute, for the fields a client may write.
TYPE_FIELDS = {
    "slug": "slug",
    "name": "name",
    "description": "description",
    "duration_minutes": "duration_minutes",
    "buffer_before_minutes": "buffer_before_minutes",
    "buffer_after_minutes": "buffer_after_minutes",
    "lead_time_minutes": "lead_time_minutes",
    "window_days": "window_days",
    "slot_interval_minutes": "slot_interval_minutes",
    "daily_limit": "daily_limit",
    "location": "location",
    "location_kind": "location_kind",
    "active": "is_active",
}
_NULLABLE = ("slot_interval_minutes", "daily_limit")


def meeting_type_dict(mt: MeetingType, host: User) -> dict:
    out = {key: getattr(mt, attr) for key, attr in TYPE_FIELDS.items()}
    out["booking_url"] = svc.external_url(f"/{host.slug}/{mt.slug}")
    return out


def parse_meeting_type(data: dict, creating: bool) -> dict:
    """Model values from a POST (``creating``) or PATCH body; absent keys are left out."""
    f = Fields(data)
    f.only(TYPE_FIELDS, ignored=() if creating else ("booking_url",))
    values: dict[str, Any] = {}
    slug = f.string("slug", 40, required=creating)
    if slug is not MISSING:
        problem = validate_slug(slug)
        if problem:
            raise invalid("slug", problem)
        values["slug"] = slug
    name = f.string("name", openapi.MAX_TYPE_NAME, required=creating, one_line=True)
    if name is not MISSING:
        if not name.strip():
            raise invalid("name", "name is required")
        values["name"] = name.strip()
    for key, limit in (
        ("description", openapi.MAX_DESCRIPTION),
        ("location", openapi.MAX_LOCATION),
    ):
        value = f.string(key, limit, one_line=key == "location")
        if value is not MISSING:
            values[key] = value.strip()
    for key, (low, high) in openapi.MEETING_TYPE_BOUNDS.items():
        required = creating and key == "duration_minutes"
        value = f.integer(key, low, high, required=required, nullable=key in _NULLABLE)
        if value is not MISSING:
            values[key] = value
    kind = f.raw("location_kind", False)
    if kind is not MISSING:
        if kind not in locations.KINDS:
            raise invalid("location_kind", "expected one of " + ", ".join(locations.KINDS))
        values["location_kind"] = kind
    active = f.boolean("active")
    if active is not MISSING:
        values["is_active"] = active
    return values


def check_location(values: dict, user: User, mt: MeetingType | None = None) -> None:
    """Kind and location are checked together (portal.locations), also when only one changes."""
    if "location_kind" not in values and "location" not in values:
        return
    kind = values.get("location_kind", mt.location_kind if mt else "custom")
    where = values.get("location", mt.location if mt else "")
    try:
        values["location_kind"], values["location"] = locations.clean_location(kind, where, user)
    except locations.LocationError as exc:
        raise invalid(exc.field, exc.message) from exc


def own_type(slug: str) -> MeetingType:
    if not SLUG_RE.fullmatch(slug):
        raise not_found("no such meeting type")
    mt = MeetingType.get_or_none(MeetingType.user == g.api_user, MeetingType.slug == slug)
    if mt is None:
        raise not_found("no such meeting type")
    return mt


def _slug_taken(slug: str) -> ApiError:
    return ApiError(409, "slug_taken", f"you already have a meeting type {slug!r}", "slug")


@bp.get("/meeting-types")
@require_token
def list_meeting_types():
    query = MeetingType.select().where(MeetingType.user == g.api_user).order_by(MeetingType.id)
    return jsonify(meeting_types=[meeting_type_dict(mt, g.api_user) for mt in query])


@bp.post("/meeting-types")
@require_token
def create_meeting_type():
    values = parse_meeting_type(json_body(), creating=True)
    user = g.api_user
    check_location(values, user)
    if MeetingType.get_or_none(MeetingType.user == user, MeetingType.slug == values["slug"]):
        raise _slug_taken(values["slug"])
    try:
        with db.atomic():
            mt = MeetingType.create(user=user, **values)
    except IntegrityError as exc:  # a concurrent request took the slug
        raise _slug_taken(values["slug"]) from exc
    response = jsonify(meeting_type_dict(mt, user))
    response.headers["Location"] = url_for("api.get_meeting_type", slug=mt.slug)
    return response, 201


@bp.get("/meeting-types/<slug>")
@require_token
def get_meeting_type(slug: str):
    return jsonify(meeting_type_dict(own_type(slug), g.api_user))


@bp.patch("/meeting-types/<slug>")
@require_token
def patch_meeting_type(slug: str):
    mt = own_type(slug)
    values = parse_meeting_type(json_body(), creating=False)
    check_location(values, g.api_user, mt)
    new_slug = values.get("slug", mt.slug)
    if new_slug != mt.slug and MeetingType.get_or_none(
        MeetingType.user == g.api_user, MeetingType.slug == new_slug
    ):
        raise _slug_taken(new_slug)
    for attr, value in values.items():
        setattr(mt, attr, value)
    try:
        with db.atomic():
            mt.save()
    except IntegrityError as exc:
        raise _slug_taken(new_slug) from exc
    return jsonify(meeting_type_dict(mt, g.api_user))


@bp.delete("/meeting-types/<slug>")
@require_token
def delete_meeting_type(slug: str):
    """Existing bookings stay (their type becomes null); they keep the slug they were made with."""
    mt = own_type(slug)
    mt.delete_instance()
    return "", 204
