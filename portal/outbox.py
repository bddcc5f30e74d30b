"""The relay from the outbox table to RQ.

A state change and the work it causes are committed together (``Outbox.add``
inside the caller's transaction). ``relay`` later claims due rows and hands
them to RQ; when Redis is down the rows simply stay pending and the next relay
catches up. The job (``jobs.outbox.run``) marks its row done, so a row that
reaches RQ twice still does its work once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq import Retry

from .models import Outbox, db, to_db, utcnow
from .queue import get_queue

log = logging.getLogger(__name__)

# Backoff for failed outbox jobs: 10 s, 1 min, 5 min, 15 min, 1 h.
RETRY = Retry(max=5, interval=[10, 60, 300, 900, 3600])
# An "enqueued" row not done after this long is assumed lost with Redis and sent again.
STALE_AFTER = timedelta(hours=2)  # longer than the longest RQ backoff


def relay(limit: int = 200, now: datetime | None = None) -> int:
    """Move due outbox rows to RQ; returns how many were enqueued (``now``: tests)."""
    now = now or utcnow()
    due = (Outbox.run_at.is_null()) | (Outbox.run_at <= to_db(now))
    pending = Outbox.status == "pending"
    stale = (Outbox.status == "enqueued") & (Outbox.enqueued_at < to_db(now - STALE_AFTER))
    with db.connection_context():
        ids = [
            r.id
            for r in Outbox.select(Outbox.id)
            .where(due & (pending | stale))
            .order_by(Outbox.id)
            .limit(limit)
        ]
    if not ids:
        return 0
    try:
        queue = get_queue()
    except RedisError as exc:
        log.warning("outbox relay: redis unavailable (%s); %d rows wait", exc, len(ids))
        return 0
    sent = 0
    for row_id in ids:
        with db.connection_context():
            claimed = (
                Outbox.update(status="enqueued", enqueued_at=to_db(now))
                .where(Outbox.id == row_id, pending | stale)
                .execute()
            )
        if not claimed:
            continue  # another relay took it
        try:
            queue.enqueue(
                "jobs.outbox.run",
                row_id,
                job_id=f"outbox-{row_id}",
                retry=RETRY,
                failure_ttl=30 * 24 * 3600,
            )
            sent += 1
        except RedisError as exc:
            log.warning("outbox relay: enqueue failed (%s); row %s waits", exc, row_id)
            with db.connection_context():
                Outbox.update(status="pending", enqueued_at=None).where(
                    Outbox.id == row_id
                ).execute()
            break
    return sent


def relay_quietly() -> None:
    """Best-effort relay right after a commit, so work starts without waiting for the ticker."""
    if current_app.config.get("OUTBOX_RELAY_ON_COMMIT", True):
        try:
            relay()
        except Exception:  # the request already succeeded; the worker's ticker retries
            log.exception("outbox relay after commit failed")
