"""JSON API for meeting details: meeting link and signature, questions, webhooks, the
calendar feed and the schedule. Declared in ``portal.openapi`` like every /api/v1 route.

The rules are the domain modules' (``portal.locations``, ``questions``,
``webhooks``, ``feeds``, ``schedule``); this module parses, calls and answers,
turning their errors into the API's 422 naming the field.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request, url_for

from .. import feeds, locations, questions, webhooks
from .. import schedule as agenda
from ..booking import local_day_range
from ..models import MeetingType, User, Webhook, WebhookDelivery, db, utcnow
from ..outbox import relay_quietly
from .api import (
    MISSING,
    ApiError,
    Fields,
    api_error,
    invalid,
    json_body,
    json_errors,
    not_found,
    parse_date,
    parse_zone,
    require_token,
)
from .api_bookings import public_type
from .api_types import own_type

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
def get_meeting_details():
    return jsonify(_details(g.api_user))


@bp.patch("/me/meeting-details")
@require_token
def patch_meeting_details():
    """Change the personal meeting link and/or the e-mail signature."""
    f = Fields(json_body())
    f.only(("meeting_link", "email_signature"))
    user = User.get_by_id(g.api_user.id)
    link = f.string("meeting_link", locations.MAX_MEETING_LINK)
    if link is not MISSING:
        user.meeting_link = locations.clean_meeting_link(link)
        uses = (
            MeetingType.select()
            .where(MeetingType.user == user, MeetingType.location_kind == "personal")
            .count()
        )
        if not user.meeting_link and uses:
            raise invalid("meeting_link", f"{uses} meeting type(s) use your personal link")
    signature = f.string("email_signature", locations.MAX_SIGNATURE)
    if signature is not MISSING:
        user.email_signature = locations.clean_signature(signature)
    user.save()
    return jsonify(_details(user))


# ---------------------------------------------------------------- questions


@bp.get("/meeting-types/<slug>/questions")
@require_token
def get_questions(slug: str):
    mt = own_type(slug)
    return jsonify(questions=[questions.question_dict(q) for q in mt.question_list()])


@bp.put("/meeting-types/<slug>/questions")
@require_token
def put_questions(slug: str):
    """Replace the type's questions with this ordered list (answers given earlier stay)."""
    mt = own_type(slug)
    f = Fields(json_body())
    f.only(("questions",))
    specs = questions.clean_specs(f.raw("questions", True))
    with db.atomic():
        questions.replace_all(mt, specs)
    return jsonify(questions=[questions.question_dict(q) for q in mt.question_list()])


@bp.get("/hosts/<host>/<type>/questions")
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


def _webhook_values(f: Fields, creating: bool) -> dict:
    values: dict = {}
    url = f.string("url", webhooks.MAX_URL, required=creating)
    if url is not MISSING:
        values["url"] = webhooks.check_target(url, current_app.config)
    events = f.raw("events", False)
    if events is not MISSING:
        values["events"] = webhooks.clean_events(events)
    elif creating:
        values["events"] = list(webhooks.EVENTS)
    description = f.raw("description", False)
    if description is not MISSING:
        values["description"] = webhooks.clean_description(description)
    active = f.boolean("active")
    if active is not MISSING:
        values["active"] = active
    return values


@bp.get("/webhooks")
@require_token
def list_webhooks():
    hooks = Webhook.select().where(Webhook.user == g.api_user).order_by(Webhook.id)
    return jsonify(webhooks=[webhooks.webhook_dict(h) for h in hooks])


@bp.post("/webhooks")
@require_token
def create_webhook():
    """Register an endpoint; the answer holds its signing ``secret``, shown this once."""
    f = Fields(json_body())
    f.only(("url", "events", "description", "active"))
    values = _webhook_values(f, creating=True)
    hook, secret = webhooks.create(
        g.api_user, values["url"], values["events"], values.get("description", "")
    )
    if values.get("active") is False:
        hook.is_active = False
        hook.save()
    response = jsonify(webhooks.webhook_dict(hook) | {"secret": secret})
    response.headers["Location"] = url_for("api_details.get_webhook", webhook_id=hook.id)
    return response, 201


@bp.get("/webhooks/<int:webhook_id>")
@require_token
def get_webhook(webhook_id: int):
    return jsonify(webhooks.webhook_dict(_own_webhook(webhook_id)))


@bp.patch("/webhooks/<int:webhook_id>")
@require_token
def patch_webhook(webhook_id: int):
    hook = _own_webhook(webhook_id)
    f = Fields(json_body())
    f.only(
        ("url", "events", "description", "active"), ignored=("id", "created_at", "last_delivery")
    )
    values = _webhook_values(f, creating=False)
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
def delete_webhook(webhook_id: int):
    _own_webhook(webhook_id).delete_instance()
    return "", 204


@bp.post("/webhooks/<int:webhook_id>/secret")
@require_token
def rotate_webhook_secret(webhook_id: int):
    """A new signing secret, answered this once; deliveries from now on use it."""
    hook = _own_webhook(webhook_id)
    return jsonify(webhooks.webhook_dict(hook) | {"secret": webhooks.rotate_secret(hook)})


@bp.get("/webhooks/<int:webhook_id>/deliveries")
@require_token
def list_deliveries(webhook_id: int):
    hook = _own_webhook(webhook_id)
    rows = webhooks.recent_deliveries(hook, limit=100)
    return jsonify(deliveries=[webhooks.delivery_dict(d, with_body=True) for d in rows])


@bp.post("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/replay")
@require_token
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
def get_feed():
    return jsonify(_feed(User.get_by_id(g.api_user.id)))


@bp.post("/feed")
@require_token
def regenerate_feed():
    """Create the feed, or give it a new URL (the old one stops working)."""
    user = User.get_by_id(g.api_user.id)
    feeds.regenerate(user)
    return jsonify(_feed(user)), 201


@bp.delete("/feed")
@require_token
def revoke_feed():
    feeds.revoke(User.get_by_id(g.api_user.id))
    return "", 204


# ---------------------------------------------------------------- schedule


@bp.get("/schedule")
@require_token
def get_schedule():
    """Bookings and busy blocks for whole days ``start``..``end`` in ``tz``."""
    user = g.api_user
    tz_name = request.args.get("tz") or user.timezone
    tz = parse_zone(tz_name, "tz")
    today = utcnow().astimezone(tz).date()
    first = parse_date(request.args["start"], "start") if request.args.get("start") else today
    last = parse_date(request.args["end"], "end") if request.args.get("end") else first
    if last < first:
        raise invalid("end", "end is before start")
    if (last - first).days + 1 > agenda.MAX_DAYS:
        raise invalid("end", f"at most {agenda.MAX_DAYS} days at once")
    start, end = local_day_range(first, last, tz)
    found = agenda.items(user, start, end)
    return jsonify(timezone=tz_name, items=[agenda.item_dict(i) for i in found])
