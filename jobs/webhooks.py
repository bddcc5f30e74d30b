"""Outbox handlers of webhooks: fan a booking event out, and POST one delivery.

Both take ids, re-read the database and are safe to run twice: a webhook
gets each event once (``portal.notify.webhooks.fan_out``), and a delivered delivery
is never sent again. A failed POST raises, so RQ tries again with the
outbox's backoff; the last attempt marks the delivery ``failed`` instead.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import niquests

from jobs.outbox import handler
from portal import clock
from portal.booking import locations
from portal.calendars.providers import net
from portal.models import Booking, Webhook, WebhookDelivery, to_db, utcnow
from portal.notify import webhooks
from portal.runtime.outbox import RETRY, relay_quietly

log = logging.getLogger(__name__)

USER_AGENT = "Kairos-Webhooks/1 (+https://github.com/kairos)"
#: read at most this much of a receiver's answer (the log keeps RESPONSE_KEEP characters)
READ_LIMIT = 8 * 1024


class DeliveryFailed(Exception):
    """The receiver did not take the delivery; RQ tries again later."""


@handler("webhooks")
def fan_out(booking_id: int, event: str, now: str | datetime | None = None) -> int:
    """Prepare this booking event's deliveries; waits briefly for a Meet/Teams link first."""
    when = clock.given_or_now(now, wall=True)
    booking = Booking.get_or_none(Booking.id == booking_id)
    if booking is None:
        return 0
    if locations.wait_for_link(booking, "webhooks", event, now=when):
        return 0
    created = webhooks.fan_out(booking, event, when)
    if created:
        relay_quietly()
    return created


@handler("webhook_delivery")
def deliver(delivery_id: int) -> str:
    """POST one delivery, signed; record the answer; raise to retry, or give up after the last."""
    from flask import current_app

    delivery = WebhookDelivery.get_or_none(WebhookDelivery.id == delivery_id)
    if delivery is None or delivery.status in ("delivered", "failed"):
        return "skipped"
    hook = Webhook.get_or_none(Webhook.id == delivery.webhook_id)
    if hook is None or not hook.is_active:
        _record(delivery, status="failed", last_error="the webhook was turned off")
        return "failed"
    attempts = delivery.attempts + 1
    config = current_app.config
    stamp = int(time.time())
    body = delivery.payload.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Kairos-Event": delivery.event,
        "X-Kairos-Delivery": delivery.uid,
        webhooks.SIGNATURE_HEADER: webhooks.signature(webhooks.secret_of(hook), stamp, body),
    }
    status: int | None = None
    answer, error = "", ""
    started = time.monotonic()
    http = net.session(config)
    try:
        # The URL is checked again: configuration may have changed since it was saved.
        url = webhooks.check_target(hook.url, config)
        response = http.post(
            url,
            data=body,
            headers=headers,
            timeout=net.timeout(config),
            allow_redirects=False,
            stream=True,
        )
        try:
            status = int(response.status_code or 0)
            answer = _read_some(response)
        finally:
            response.close()
        if not 200 <= status < 300:
            error = f"the receiver answered HTTP {status}"
    except webhooks.WebhookError as exc:
        error = exc.message
    except net.AddressNotAllowed as exc:
        error = str(exc)
    except niquests.exceptions.RequestException as exc:  # timeouts too
        error = str(net.unreachable(hook.url, exc))
    finally:
        http.close()
    elapsed = int((time.monotonic() - started) * 1000)
    when = utcnow()
    fields = {
        "attempts": attempts,
        "response_status": status,
        "response_body": answer[: webhooks.RESPONSE_KEEP],
        "last_error": error[:2000],
        "duration_ms": elapsed,
        "last_attempt_at": to_db(when),
    }
    if not error:
        _record(delivery, status="delivered", delivered_at=to_db(when), **fields)
        return "delivered"
    if attempts <= RETRY.max:
        _record(delivery, status="retrying", **fields)
        log.info("webhook delivery %s failed (%s); retrying", delivery.uid, error)
        raise DeliveryFailed(error)
    _record(delivery, status="failed", **fields)
    return "failed"


def _record(delivery: WebhookDelivery, **fields: object) -> None:
    WebhookDelivery.update(**fields).where(WebhookDelivery.id == delivery.id).execute()


def _read_some(response: niquests.Response) -> str:
    """The start of the answer, for the log; a receiver cannot make us read megabytes."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= READ_LIMIT:
            break
    return b"".join(chunks).decode("utf-8", "replace")
