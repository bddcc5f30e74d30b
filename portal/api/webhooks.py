"""API: the host's webhooks, their signing secrets, delivery log and replays (/api/v1/webhooks)."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, jsonify, url_for

from portal.api.base import ApiError, not_found, operation, require_token
from portal.api.details import bp
from portal.api.schemas.details import (
    Delivery,
    DeliveryList,
    WebhookCreated,
    WebhookList,
    WebhookPatch,
    WebhookRequest,
)
from portal.api.schemas.details import Webhook as WebhookAnswer
from portal.models import Webhook, WebhookDelivery
from portal.notify import webhooks
from portal.runtime.outbox import relay_quietly


def _own_webhook(webhook_id: int) -> Webhook:
    hook = Webhook.get_or_none(Webhook.id == webhook_id, Webhook.user == g.api_user)
    if hook is None:
        raise not_found("no such webhook")
    return hook


def _webhook_values(body: WebhookRequest | WebhookPatch) -> dict[str, Any]:
    """The fields the body gave, checked by the webhook rules (``portal.notify.webhooks``)."""
    given = body.model_fields_set
    values: dict[str, Any] = {}
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
        active=values.get("active") is not False,
    )
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
    webhooks.update(hook, _webhook_values(body))
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
