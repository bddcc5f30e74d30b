"""Webhooks: a host's endpoints hear of ``booking.created``, ``booking.cancelled`` and
``booking.rescheduled`` as signed JSON POSTs.

Rules, payloads, signing and the fan-out live here; the HTTP POST itself is
the job ``jobs.webhooks.deliver``.

Flow. Every booking event records a ``webhooks`` outbox row (listed in
``portal.booking.service.BOOKING_EVENT_HANDLERS``, like e-mail and write-back);
its job (:func:`fan_out`) writes one :class:`~portal.models.WebhookDelivery`
per subscribed webhook with the exact body to send, and one
``webhook_delivery`` outbox row for each, in one transaction. Each delivery
is then tried by RQ with the outbox's backoff (10 s, 1 min, 5 min, 15 min,
1 h); a 2xx answer ends it, anything else is logged on the delivery (status,
the start of the answer, the error) and tried again, six attempts in all.
The host sees the log and can replay any finished delivery: a new delivery
with the same body and event id.

Signature. ``X-Kairos-Signature: t=<unix time>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256 with the webhook's secret over ``"<t>." + body``. Receivers
recompute it over the raw body, compare in constant time and refuse old
timestamps (see :func:`verify`, which receivers in Python may copy). The
secret (``whsec_…``, 256 bits) is shown to the host once and stored sealed
(``portal.crypto``). ``X-Kairos-Event`` names the event, ``X-Kairos-Delivery``
the delivery (a replay has a new one); the body's ``id`` stays the same
across replays and retries, so receivers can drop duplicates.

Targets. ``https://`` only unless ``KAIROS_ALLOW_HTTP_WEBHOOKS`` is set;
addresses on private, loopback or link-local networks are refused unless
``KAIROS_ALLOW_PRIVATE_URLS`` is set — checked when the URL is saved and
again on the connected socket at every delivery (``portal.calendars.providers.net``).
Redirects are not followed: a 3xx answer is a failed delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from peewee import IntegrityError

from portal import crypto
from portal.models import (
    Booking,
    Outbox,
    User,
    Webhook,
    WebhookDelivery,
    db,
    from_db,
    to_db,
    utcnow,
)

EVENTS = ("booking.created", "booking.cancelled", "booking.rescheduled")
EVENT_LABELS = {  # translated when shown (the host's settings)
    "booking.created": _l("New booking"),
    "booking.cancelled": _l("Booking cancelled"),
    "booking.rescheduled": _l("Booking rescheduled"),
}
MAX_WEBHOOKS = 10
MAX_URL = 2000
MAX_DESCRIPTION = 200
SIGNATURE_HEADER = "X-Kairos-Signature"
#: how many characters of a receiver's answer the log keeps
RESPONSE_KEEP = 2000
#: finished deliveries older than this leave the log
KEEP_LOG = timedelta(days=30)
TOLERANCE_SECONDS = 300
_NAMESPACE = uuid.UUID("b0c1c4e5-9a52-4a3e-8f43-5a0e7d0f6f21")


class WebhookError(ValueError):
    """Bad webhook input; ``field`` names it (``url``, ``events``, ``description``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# ---------------------------------------------------------------- configuring


def check_target(url: str, config: Mapping[str, Any]) -> str:
    """The URL a host typed, if deliveries may go there; WebhookError on ``url`` otherwise."""
    from portal.calendars.providers import net

    url = (url or "").strip()
    if not url:
        raise WebhookError("url", "enter the URL to send events to")
    if len(url) > MAX_URL:
        raise WebhookError("url", f"at most {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise WebhookError("url", "a URL cannot contain spaces or line breaks")
    parts = urlsplit(url)
    schemes = ("https", "http") if config.get("ALLOW_HTTP_WEBHOOKS") else ("https",)
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise WebhookError(
            "url",
            "enter an https:// URL" if len(schemes) == 1 else "enter an https:// or http:// URL",
        )
    if parts.username is not None or parts.password is not None:
        raise WebhookError("url", "no user name or password in the URL; the signature proves it")
    if parts.fragment:
        raise WebhookError("url", "a webhook URL has no #fragment")
    try:
        _ = parts.port
    except ValueError as exc:
        raise WebhookError("url", "the port must be a number from 1 to 65535") from exc
    if not config.get("ALLOW_PRIVATE_URLS"):
        try:
            net.check_host(url)
        except net.AddressNotAllowed as exc:
            raise WebhookError(
                "url", "this address is on a private or local network; it cannot be used"
            ) from exc
    return url


def clean_events(values: Iterable[object] | object) -> list[str]:
    """Known event names, in the canonical order; at least one."""
    if not isinstance(values, list | tuple):
        raise WebhookError("events", "expected a list of event names")
    unknown = [v for v in values if v not in EVENTS]
    if unknown:
        raise WebhookError("events", f"unknown event {str(unknown[0])[:60]!r}")
    chosen = [e for e in EVENTS if e in values]
    if not chosen:
        raise WebhookError("events", "choose at least one event")
    return chosen


def clean_description(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebhookError("description", "expected text")
    value = " ".join(value.split())
    if len(value) > MAX_DESCRIPTION:
        raise WebhookError("description", f"at most {MAX_DESCRIPTION} characters")
    return value


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create(
    user: User, url: str, events: list[str], description: str = "", active: bool = True
) -> tuple[Webhook, str]:
    """A new webhook and its secret — the only time the secret is returned in the clear."""
    if Webhook.select().where(Webhook.user == user).count() >= MAX_WEBHOOKS:
        raise WebhookError("url", f"you have {MAX_WEBHOOKS} webhooks; delete one first")
    secret = new_secret()
    with db.atomic():
        hook = Webhook.create(
            user=user,
            url=url,
            events=",".join(events),
            description=description,
            is_active=active,
        )
        crypto.seal(hook, "secret", {"secret": secret})
        hook.save()
    return hook, secret


def update(hook: Webhook, values: Mapping[str, Any]) -> None:
    """Change the fields ``values`` gives (url, events, description, active), checked already."""
    columns = {
        "url": "url",
        "events": "events",
        "description": "description",
        "active": "is_active",
    }
    for name, value in values.items():
        setattr(hook, columns[name], ",".join(value) if name == "events" else value)
    hook.save()


def rotate_secret(hook: Webhook) -> str:
    """Replace the signing secret; deliveries from now on use the new one."""
    secret = new_secret()
    crypto.seal(hook, "secret", {"secret": secret})
    hook.save()
    return secret


def secret_of(hook: Webhook) -> str:
    data = crypto.unseal(hook, "secret") or {}
    return str(data.get("secret") or "")


def webhook_dict(hook: Webhook) -> dict[str, Any]:
    last = (
        WebhookDelivery.select()
        .where(WebhookDelivery.webhook == hook)
        .order_by(WebhookDelivery.id.desc())
        .first()
    )
    return {
        "id": hook.id,
        "url": hook.url,
        "events": hook.event_list(),
        "description": hook.description,
        "active": hook.is_active,
        "created_at": _iso(hook.created_at),
        "last_delivery": delivery_dict(last) if last else None,
    }


def delivery_dict(d: WebhookDelivery, with_body: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": d.id,
        "delivery": d.uid,
        "event_id": d.event_id,
        "event": d.event,
        "booking_uid": d.booking_uid,
        "status": d.status,
        "attempts": d.attempts,
        "response_status": d.response_status,
        "error": d.last_error,
        "duration_ms": d.duration_ms,
        "created_at": _iso(d.created_at),
        "last_attempt_at": _iso(d.last_attempt_at),
        "delivered_at": _iso(d.delivered_at),
        "replay_of": d.replay_of_id,
    }
    if with_body:
        out["payload"] = d.payload
        out["response_body"] = d.response_body
    return out


def _iso(value: datetime | None) -> str | None:
    aware = from_db(value)
    return aware.isoformat() if aware else None


# ---------------------------------------------------------------- signing


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Kairos-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, header: str, body: bytes, now: float, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: the header parses, is recent, and one ``v1`` matches."""
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts.get("t", [""])[0])
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, given) for given in parts.get("v1", []))


# ---------------------------------------------------------------- events


def event_id(booking: Booking, event: str) -> str:
    """The same booking event always has the same id (retries, replays, a second fan-out)."""
    return "evt_" + uuid.uuid5(_NAMESPACE, f"{booking.uid}:{event}:{booking.sequence}").hex


def _event_time(booking: Booking, event: str) -> datetime:
    stamp = booking.cancelled_at if event == "cancelled" else booking.created_at
    return from_db(stamp) or utcnow()


def payload(booking: Booking, event: str) -> dict[str, Any]:
    """The JSON body: the event and the booking as it is now (as the API shows it to hosts)."""
    from portal.booking.shape import booking_dict
    from portal.notify.ical import host_url

    host: User = booking.host
    data = booking_dict(booking)
    data["rescheduled_from"] = (
        Booking.select(Booking.uid).where(Booking.id == booking.rescheduled_from_id).scalar()
        if booking.rescheduled_from_id
        else None
    )
    data["cancelled_by"] = booking.cancelled_by
    data["cancel_reason"] = booking.cancel_reason
    data["host_url"] = host_url(booking)
    return {
        "id": event_id(booking, event),
        "type": f"booking.{event}",
        "created_at": _event_time(booking, event).isoformat(),
        "host": {"slug": host.slug, "name": host.display_name, "email": host.email},
        "data": {"booking": data},
    }


def fan_out(booking: Booking, event: str, now: datetime | None = None) -> int:
    """One delivery (and its outbox row) per active webhook subscribed to this event.

    Safe to run twice: a webhook gets each event id once (``dedup_key``).
    """
    name = f"booking.{event}"
    if name not in EVENTS:
        return 0
    hooks = [
        h
        for h in Webhook.select().where(
            Webhook.user == booking.host_id,
            Webhook.is_active == True,  # noqa: E712
        )
        if name in h.event_list()
    ]
    if not hooks:
        return 0
    body = json.dumps(payload(booking, event), separators=(",", ":"), ensure_ascii=False)
    eid = event_id(booking, event)
    created = 0
    stamp = to_db(now or utcnow())
    for hook in hooks:
        try:
            with db.atomic():
                delivery = WebhookDelivery.create(
                    webhook=hook,
                    uid="dlv_" + uuid.uuid4().hex,
                    event_id=eid,
                    event=name,
                    booking_uid=booking.uid,
                    payload=body,
                    dedup_key=f"{hook.id}:{eid}",
                    created_at=stamp,
                )
                Outbox.add("webhook_delivery", delivery_id=delivery.id)
        except IntegrityError:
            continue  # this event already went to this webhook
        created += 1
        prune(hook, now)
    return created


class NotReplayable(WebhookError):
    pass


def replay(original: WebhookDelivery, now: datetime | None = None) -> WebhookDelivery:
    """Send a finished delivery again: same body and event id, a new delivery id."""
    if original.status not in ("delivered", "failed"):
        raise NotReplayable("delivery", "this delivery is still being tried; wait for it to finish")
    with db.atomic():
        delivery = WebhookDelivery.create(
            webhook=original.webhook_id,
            uid="dlv_" + uuid.uuid4().hex,
            event_id=original.event_id,
            event=original.event,
            booking_uid=original.booking_uid,
            payload=original.payload,
            replay_of=original,
            created_at=to_db(now or utcnow()),
        )
        Outbox.add("webhook_delivery", delivery_id=delivery.id)
    return delivery


def prune(hook: Webhook, now: datetime | None = None) -> int:
    """Drop finished deliveries older than ``KEEP_LOG`` from the log."""
    cutoff = to_db((now or utcnow()) - KEEP_LOG)
    return (
        WebhookDelivery.delete()
        .where(
            WebhookDelivery.webhook == hook,
            WebhookDelivery.created_at < cutoff,
            WebhookDelivery.status.in_(("delivered", "failed")),
        )
        .execute()
    )


def recent_deliveries(hook: Webhook, limit: int = 50) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.select()
        .where(WebhookDelivery.webhook == hook)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(limit)
    )
