"""API: the host's meeting types (/api/v1/meeting-types)."""

from __future__ import annotations

from flask import g, jsonify, url_for

from portal.api.base import bp, not_found, operation, require_token
from portal.api.schemas.meeting_types import MeetingType as MeetingTypeAnswer
from portal.api.schemas.meeting_types import MeetingTypeCreate, MeetingTypeList, MeetingTypePatch
from portal.booking.meeting_types import save_meeting_type
from portal.models import SLUG_RE, MeetingType, User
from portal.runtime.appconfig import external_url

# ---------------------------------------------------------------- meeting types

# JSON name → model attribute, where they differ.
_ATTR = {"active": "is_active"}
_ANSWER_FIELDS = [f for f in MeetingTypeAnswer.model_fields if f != "booking_url"]


def meeting_type_dict(mt: MeetingType, host: User) -> dict:
    out = {key: getattr(mt, _ATTR.get(key, key)) for key in _ANSWER_FIELDS}
    out["booking_url"] = external_url(f"/{host.slug}/{mt.slug}")
    return out


def model_values(body: MeetingTypeCreate | MeetingTypePatch) -> dict:
    """Model attribute → value for the fields the body gave (a POST's defaults included)."""
    given = body.model_fields_set if isinstance(body, MeetingTypePatch) else type(body).model_fields
    return {_ATTR.get(key, key): getattr(body, key) for key in given if key != "booking_url"}


def own_type(slug: str) -> MeetingType:
    if not SLUG_RE.fullmatch(slug):
        raise not_found("no such meeting type")
    mt = MeetingType.get_or_none(MeetingType.user == g.api_user, MeetingType.slug == slug)
    if mt is None:
        raise not_found("no such meeting type")
    return mt


@bp.get("/meeting-types")
@require_token
@operation("The host's meeting types", "meeting types", {200: ("meeting types", MeetingTypeList)})
def list_meeting_types():
    query = MeetingType.select().where(MeetingType.user == g.api_user).order_by(MeetingType.id)
    return jsonify(meeting_types=[meeting_type_dict(mt, g.api_user) for mt in query])


@bp.post("/meeting-types")
@require_token
@operation(
    "Create a meeting type",
    "meeting types",
    {201: ("created", MeetingTypeAnswer)},
    body=MeetingTypeCreate,
    errors=(409,),
    description="409 `slug_taken` when the host already has a type with this slug.",
)
def create_meeting_type(body: MeetingTypeCreate):
    mt = save_meeting_type(g.api_user, model_values(body))
    response = jsonify(meeting_type_dict(mt, g.api_user))
    response.headers["Location"] = url_for("api.get_meeting_type", slug=mt.slug)
    return response, 201


@bp.get("/meeting-types/<slug>")
@require_token
@operation("One meeting type", "meeting types", {200: ("the meeting type", MeetingTypeAnswer)})
def get_meeting_type(slug: str):
    return jsonify(meeting_type_dict(own_type(slug), g.api_user))


@bp.patch("/meeting-types/<slug>")
@require_token
@operation(
    "Change some fields of a meeting type",
    "meeting types",
    {200: ("the changed meeting type", MeetingTypeAnswer)},
    body=MeetingTypePatch,
    errors=(409,),
)
def patch_meeting_type(slug: str, body: MeetingTypePatch):
    mt = save_meeting_type(g.api_user, model_values(body), own_type(slug))
    return jsonify(meeting_type_dict(mt, g.api_user))


@bp.delete("/meeting-types/<slug>")
@require_token
@operation(
    "Delete a meeting type (its existing bookings stay)",
    "meeting types",
    {204: ("deleted", None)},
)
def delete_meeting_type(slug: str):
    """Existing bookings stay (their type becomes null); they keep the slug they were made with."""
    mt = own_type(slug)
    mt.delete_instance()
    return "", 204
