"""The ``api_details`` blueprint, shared by the host's meeting details, questions, webhooks,
calendar feed and schedule (``portal.api.meeting_details``, ``questions``, ``webhooks``,
``feed``, ``schedule``); their bodies and answers are in ``portal.api.schemas.details``.

The rules are the domain modules' (``portal.booking.locations``, ``questions``,
``portal.notify.webhooks``, ``feeds``, ``portal.booking.schedule``); the route
modules parse, call and answer, and their errors become the API's 422 naming the field.
"""

from __future__ import annotations

from flask import Blueprint

from portal.api.base import api_error, json_errors
from portal.booking import locations, questions
from portal.notify import webhooks

bp = json_errors(Blueprint("api_details", __name__, url_prefix="/api/v1"))


@bp.errorhandler(questions.QuestionError)
@bp.errorhandler(webhooks.WebhookError)
@bp.errorhandler(locations.LocationError)
def _field_error(exc):
    return api_error(422, "invalid", exc.message, exc.field)
