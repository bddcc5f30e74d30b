"""API: the host's personal meeting link and e-mail signature (/api/v1/me/meeting-details)."""

from __future__ import annotations

from flask import g, jsonify

from portal.api.base import operation, require_token
from portal.api.details import bp
from portal.api.schemas.details import MeetingDetails, MeetingDetailsPatch
from portal.booking import locations
from portal.models import User


def _details(user: User) -> dict:
    return {"meeting_link": user.meeting_link, "email_signature": user.email_signature}


@bp.get("/me/meeting-details")
@require_token
@operation(
    "Your personal meeting link and e-mail signature",
    "host",
    {200: ("meeting details", MeetingDetails)},
)
def get_meeting_details():
    return jsonify(_details(g.api_user))


@bp.patch("/me/meeting-details")
@require_token
@operation(
    "Change your personal meeting link and/or e-mail signature",
    "host",
    {200: ("meeting details", MeetingDetails)},
    body=MeetingDetailsPatch,
)
def patch_meeting_details(body: MeetingDetailsPatch):
    """Change the personal meeting link and/or the e-mail signature."""
    user = User.get_by_id(g.api_user.id)
    locations.save_meeting_details(user, body.meeting_link, body.email_signature)
    return jsonify(_details(user))
