"""JSON API for meeting details: meeting link and signature, questions, webhooks, the
calendar feed and the schedule; their bodies and answers are in ``portal.api.schemas.details``.

The rules are the domain modules' (``portal.booking.locations``, ``questions``,
``webhooks``, ``feeds``, ``schedule``); this module parses, calls and answers,
turning their errors into the API's 422 naming the field.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, url_for

from portal.api.base import (
    ApiError,
    api_error,
    day_range,
    invalid,
    json_errors,
    not_found,
    operation,
    require_token,
)
from portal.api.bookings import public_type
from portal.api.schemas.bookings import DaysQuery
from portal.api.schemas.details import (
    Delivery,
    DeliveryList,
    Feed,
    MeetingDetails,
    MeetingDetailsPatch,
    QuestionList,
    QuestionsRequest,
    Schedule,
    WebhookCreated,
    WebhookList,
    WebhookPatch,
    WebhookRequest,
)
from portal.api.schemas.details import Webhook as WebhookAnswer
from portal.api.types import own_type
from portal.booking import locations, questions
from portal.booking import schedule as agenda
from portal.booking.checks import zone
from portal.models import MeetingType, User, Webhook, WebhookDelivery, db
from portal.notify import feeds, webhooks
from portal.runtime.outbox import relay_quietly

bp = json_errors(Blueprint("api_details", __name__, url_prefix="/api/v1"))


@bp.errorhandler(questions.QuestionError)
@bp.errorhandler(webhooks.WebhookError)
@bp.errorhandler(locations.LocationError)
def _field_error(exc):
    return api_error(422, "invalid", exc.message, exc.field)


# ---------------------------------------------------------------- meeting link and signature


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
    if body.meeting_link is not None:
        user.meeting_link = locations.clean_meeting_link(body.meeting_link)
        uses = (
            MeetingType.select()
            .where(MeetingType.user == user, MeetingType.location_kind == "personal")
            .count()
        )
        if not user.meeting_link and uses:
            raise invalid("meeting_link", f"{uses} meeting type(s) use your personal link")
    if body.email_signature is not None:
        user.email_signature = locations.clean_signature(body.email_signature)
    user.save()
    return jsonify(_details(user))


# ---------------------------------------------------------------- questions


@bp.get("/meeting-types/<slug>/questions")
@require_token
@operation(
    "The questions a meeting type asks invitees",
    "meeting types",
    {200: ("questions, in order", QuestionList)},
)
def get_questions(slug: str):
    mt = own_type(slug)
    return jsonify(questions=[questions.question_dict(q) for q in mt.question_list()])


@bp.put("/meeting-types/<slug>/questions")
@require_token
@operation(
    "Replace a meeting type's questions",
    "meeting types",
    {200: ("the stored questions", QuestionList)},
    body=QuestionsRequest,
    description="Answers given to earlier questions stay with their bookings.",
)
def put_questions(slug: str, body: QuestionsRequest):
    """Replace the type's questions with this ordered list (answers given earlier stay)."""
    mt = own_type(slug)
    specs = questions.clean_specs([q.model_dump(exclude_unset=True) for q in body.questions])
    with db.atomic():
        questions.replace_all(mt, specs)
    return jsonify(questions=[questions.question_dict(q) for q in mt.question_list()])


@bp.get("/hosts/<host>/<type>/questions")
@operation(
    "The questions a booking must answer (public)",
    "public",
    {200: ("questions, in order", QuestionList)},
)
def public_questions(host: str, type: str):
    """What the booking body's ``answers`` must answer (public, like the slots)."""
    _user, mt = public_type(host, type)
    return jsonify(questions=[questions.question_dict(q) for q in mt.question_list()])


# ---------------------------------------------------------------- webhooks


def _own_webhook(webhook_id: int) -> Webhook:
    hook = Webhook.get_or_none(Webhook.id == webhook_id, Webhook.user == g.api_user)
    if hook is None:
        raise not_found("no such webhook")
    return hook


def _webhook_values(body: WebhookRequest | WebhookPatch) -> dict:
    """The fields the body gave, checked by the webhook rules (``portal.notify.webhooks``)."""
    given = body.model_fields_set
    values: dict = {}
    if "url" in given:
        values["url"] = webhooks.check_target(body.url, current_app.config)
    if body.events is not None:
        values["events"] = webhooks.clean_events(body.events)
    if "description" in given:
        values["description"] = webhooks.clean_description(body.description)
    if "active" in given:
        values["active"] = body.active
    return values


@bp.get("/webhooks")
@require_token
@operation("Your webhooks", "webhooks", {200: ("webhooks", WebhookList)})
def list_webhooks():
    hooks = Webhook.select().where(Webhook.user == g.api_user).order_by(Webhook.id)
    return jsonify(webhooks=[webhooks.webhook_dict(h) for h in hooks])


@bp.post("/webhooks")
@require_token
@operation(
    "Register a webhook",
    "webhooks",
    {201: ("registered; `secret` is shown only in this answer", WebhookCreated)},
    body=WebhookRequest,
    description="Deliveries are POSTs of JSON signed with `X-Kairos-Signature: "
    't=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`.',
)
def create_webhook(body: WebhookRequest):
    """Register an endpoint; the answer holds its signing ``secret``, shown this once."""
    values = _webhook_values(body)
    hook, secret = webhooks.create(
        g.api_user,
        values["url"],
        values.get("events", list(webhooks.EVENTS)),
        values.get("description", ""),
    )
    if values.get("active") is False:
        hook.is_active = False
        hook.save()
    response = jsonify(webhooks.webhook_dict(hook) | {"secret": secret})
    response.headers["Location"] = url_for("api_details.get_webhook", webhook_id=hook.id)
    return response, 201


@bp.get("/webhooks/<int:webhook_id>")
@require_token
@operation("One webhook", "webhooks", {200: ("the webhook", WebhookAnswer)})
def get_webhook(webhook_id: int):
    return jsonify(webhooks.webhook_dict(_own_webhook(webhook_id)))


@bp.patch("/webhooks/<int:webhook_id>")
@require_token
@operation("Change a webhook", "webhooks", {200: ("the webhook", WebhookAnswer)}, body=WebhookPatch)
def patch_webhook(webhook_id: int, body: WebhookPatch):
    hook = _own_webhook(webhook_id)
    values = _webhook_values(body)
    if "url" in values:
        hook.url = values["url"]
    if "events" in values:
        hook.events = ",".join(values["events"])
    if "description" in values:
        hook.description = values["description"]
    if "active" in values:
        hook.is_active = values["active"]
    hook.save()
    return jsonify(webhooks.webhook_dict(hook))


@bp.delete("/webhooks/<int:webhook_id>")
@require_token
@operation("Delete a webhook and its log", "webhooks", {204: ("deleted", None)})
def delete_webhook(webhook_id: int):
    _own_webhook(webhook_id).delete_instance()
    return "", 204


@bp.post("/webhooks/<int:webhook_id>/secret")
@require_token
@operation(
    "Make a new signing secret",
    "webhooks",
    {200: ("the new `secret`, shown only in this answer", WebhookCreated)},
)
def rotate_webhook_secret(webhook_id: int):
    """A new signing secret, answered this once; deliveries from now on use it."""
    hook = _own_webhook(webhook_id)
    return jsonify(webhooks.webhook_dict(hook) | {"secret": webhooks.rotate_secret(hook)})


@bp.get("/webhooks/<int:webhook_id>/deliveries")
@require_token
@operation(
    "The delivery log (last 30 days, newest first)",
    "webhooks",
    {200: ("deliveries", DeliveryList)},
)
def list_deliveries(webhook_id: int):
    hook = _own_webhook(webhook_id)
    rows = webhooks.recent_deliveries(hook, limit=100)
    return jsonify(deliveries=[webhooks.delivery_dict(d, with_body=True) for d in rows])


@bp.post("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/replay")
@require_token
@operation(
    "Send a finished delivery again",
    "webhooks",
    {202: ("the new delivery, queued", Delivery)},
    errors=(409,),
    description="Same body and event id, a new delivery id. 409 `not_finished` while "
    "the delivery is still being tried.",
)
def replay_delivery(webhook_id: int, delivery_id: int):
    """Send a finished delivery again: same body and event id, a new delivery (202)."""
    hook = _own_webhook(webhook_id)
    original = WebhookDelivery.get_or_none(
        WebhookDelivery.id == delivery_id, WebhookDelivery.webhook == hook
    )
    if original is None:
        raise not_found("no such delivery")
    try:
        delivery = webhooks.replay(original)
    except webhooks.NotReplayable as exc:
        raise ApiError(409, "not_finished", exc.message, "delivery") from exc
    relay_quietly()
    return jsonify(webhooks.delivery_dict(delivery, with_body=True)), 202


# ---------------------------------------------------------------- calendar feed


def _feed(user: User) -> dict:
    url = feeds.feed_url(user)
    return {"active": bool(url), "url": url or None}


@bp.get("/feed")
@require_token
@operation("Your private calendar feed URL", "feed", {200: ("feed", Feed)})
def get_feed():
    return jsonify(_feed(User.get_by_id(g.api_user.id)))


@bp.post("/feed")
@require_token
@operation(
    "Create the feed, or give it a new URL (the old one stops working)",
    "feed",
    {201: ("feed", Feed)},
)
def regenerate_feed():
    """Create the feed, or give it a new URL (the old one stops working)."""
    user = User.get_by_id(g.api_user.id)
    feeds.regenerate(user)
    return jsonify(_feed(user)), 201


@bp.delete("/feed")
@require_token
@operation("Turn the feed off", "feed", {204: ("turned off", None)})
def revoke_feed():
    feeds.revoke(User.get_by_id(g.api_user.id))
    return "", 204


# ---------------------------------------------------------------- schedule


@bp.get("/schedule")
@require_token
@operation(
    "Your bookings and calendar busy blocks, day by day",
    "host",
    {200: ("the schedule", Schedule)},
    query=DaysQuery,
    description=f"At most {agenda.MAX_DAYS} days at once; `end` defaults to `start`.",
)
def get_schedule(query: DaysQuery):
    """Bookings and busy blocks for whole days ``start``..``end`` in ``tz``."""
    user = g.api_user
    tz_name = query.tz or user.timezone
    tz = zone(tz_name)
    start, end = day_range(query.start, query.end, tz, 1, agenda.MAX_DAYS)
    found = agenda.items(user, start, end)
    return jsonify(timezone=tz_name, items=[agenda.item_dict(i) for i in found])
