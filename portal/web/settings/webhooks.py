"""Settings → Webhooks: endpoints for booking events, their delivery log, and replay.

A new webhook's signing secret is shown once, in the response that created
it (or rotated it), never stored in the clear (``portal.notify.webhooks``).
"""

from __future__ import annotations

import json

from flask import abort, current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectChoice, SelectMultipleField, StringField, widgets

from portal.models import Webhook, WebhookDelivery
from portal.notify import webhooks
from portal.runtime.outbox import relay_quietly
from portal.web.render import is_htmx, render
from portal.web.settings import bp, done


class WebhookForm(FlaskForm):
    url = StringField(
        _l("Endpoint URL"),
        description=_l("Kairos POSTs JSON here, signed with the X-Kairos-Signature header."),
        render_kw={"type": "url", "spellcheck": "false", "autocomplete": "off"},
    )
    events = SelectMultipleField(
        _l("Events"),
        choices=lambda: [
            SelectChoice(e, f"{webhooks.EVENT_LABELS[e]} ({e})") for e in webhooks.EVENTS
        ],
        default=list(webhooks.EVENTS),
        option_widget=widgets.CheckboxInput(),
        widget=widgets.ListWidget(prefix_label=False),
        validate_choice=False,
    )
    description = StringField(
        _l("Note (optional)"), description=_l("What receives it, for your records.")
    )
    active = BooleanField(_l("Send events"), default=True)

    def cleaned(self) -> dict | None:
        """The checked values, or None with each problem next to its field."""
        if not self.validate_on_submit():
            return None
        values: dict = {}
        for name, check in (
            ("url", lambda v: webhooks.check_target(v, current_app.config)),
            ("events", webhooks.clean_events),
            ("description", webhooks.clean_description),
        ):
            try:
                values[name] = check(getattr(self, name).data)
            except webhooks.WebhookError as exc:
                getattr(self, name).errors.append(exc.message)
        return None if self.errors else values


@bp.app_template_filter("pretty_json")
def pretty_json(text: str) -> str:
    """A stored JSON body, indented for reading (the bytes sent were the compact form)."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def owned_webhook(webhook_id: int) -> Webhook:
    row = Webhook.get_or_none(Webhook.id == webhook_id, Webhook.user == current_user.id)
    if row is None:
        abort(404)
    return row


def _list(form: WebhookForm, secret: str = "", created: Webhook | None = None, status=200):
    hooks = list(Webhook.select().where(Webhook.user == current_user.id).order_by(Webhook.id))
    return render(
        "details/webhooks.html",
        "webhooks",
        status=status,
        form=form,
        hooks=hooks,
        secret=secret,
        created=created,
        labels=webhooks.EVENT_LABELS,
        limit=webhooks.MAX_WEBHOOKS,
        last={h.id: _last(h) for h in hooks},
    )


def _last(hook: Webhook) -> WebhookDelivery | None:
    return (
        WebhookDelivery.select()
        .where(WebhookDelivery.webhook == hook)
        .order_by(WebhookDelivery.id.desc())
        .first()
    )


@bp.route("/webhooks", methods=["GET", "POST"], endpoint="webhooks")
def webhooks_index():
    """The host's webhooks; a POST adds one and shows its secret in this response only."""
    form = WebhookForm()
    values = form.cleaned() if form.is_submitted() else None
    if values is not None:
        try:
            hook, secret = webhooks.create(
                current_user._get_current_object(),
                values["url"],
                values["events"],
                values["description"],
            )
        except webhooks.WebhookError as exc:
            getattr(form, exc.field).errors.append(exc.message)
        else:
            return _list(WebhookForm(formdata=None), secret=secret, created=hook)
    return _list(form)


def _detail(hook: Webhook, form: WebhookForm, secret: str = "", message: str = ""):
    return render(
        "details/webhook.html",
        "webhook",
        hook=hook,
        form=form,
        secret=secret,
        message=message,
        deliveries=webhooks.recent_deliveries(hook),
        labels=webhooks.EVENT_LABELS,
    )


@bp.route("/webhooks/<int:webhook_id>", methods=["GET", "POST"])
def webhooks_edit(webhook_id: int):
    """One webhook: change it, and its delivery log (newest first)."""
    hook = owned_webhook(webhook_id)
    form = WebhookForm(data=_data(hook))
    values = form.cleaned() if form.is_submitted() else None
    if values is not None:
        webhooks.update(hook, values | {"active": bool(form.active.data)})
        if not is_htmx():
            return done(_("Webhook saved."), "settings.webhooks_edit", webhook_id=hook.id)
        return _detail(hook, form, message=_("Saved."))
    return _detail(hook, form)


@bp.route("/webhooks/<int:webhook_id>/secret", methods=["POST"])
def webhooks_secret(webhook_id: int):
    """A new signing secret, shown once; the old one stops being used at once."""
    hook = owned_webhook(webhook_id)
    secret = webhooks.rotate_secret(hook)
    return _detail(hook, WebhookForm(formdata=None, data=_data(hook)), secret=secret)


def _data(hook: Webhook) -> dict:
    return {
        "url": hook.url,
        "events": hook.event_list(),
        "description": hook.description,
        "active": hook.is_active,
    }


@bp.route("/webhooks/<int:webhook_id>/delete", methods=["POST"])
def webhooks_delete(webhook_id: int):
    """Delete a webhook and its log; deliveries waiting to be retried are dropped."""
    hook = owned_webhook(webhook_id)
    hook.delete_instance()
    if not is_htmx():
        return done(_("Webhook deleted."), "settings.webhooks")
    return _list(WebhookForm(formdata=None))


def owned_delivery(hook: Webhook, delivery_id: int) -> WebhookDelivery:
    row = WebhookDelivery.get_or_none(
        WebhookDelivery.id == delivery_id, WebhookDelivery.webhook == hook.id
    )
    if row is None:
        abort(404)
    return row


@bp.route("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>")
def webhooks_delivery(webhook_id: int, delivery_id: int):
    """One delivery: the exact body sent, the receiver's answer, the error."""
    hook = owned_webhook(webhook_id)
    delivery = owned_delivery(hook, delivery_id)
    return render("details/delivery.html", hook=hook, d=delivery, labels=webhooks.EVENT_LABELS)


@bp.route("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/replay", methods=["POST"])
def webhooks_replay(webhook_id: int, delivery_id: int):
    """Send a finished delivery again (same body and event id, a new delivery id)."""
    hook = owned_webhook(webhook_id)
    delivery = owned_delivery(hook, delivery_id)
    try:
        webhooks.replay(delivery)
    except webhooks.WebhookError as exc:
        message = exc.message[0].upper() + exc.message[1:] + "."
    else:
        relay_quietly()
        message = _("Sent again; the new delivery is at the top of the log.")
    if not is_htmx():
        return done(message, "settings.webhooks_edit", webhook_id=hook.id)
    return _detail(hook, WebhookForm(formdata=None, data=_data(hook)), message=message)
