"""Refresh jobs: one RQ job id per connection, on demand and on the worker's ticker."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Flask
from redis.exceptions import RedisError

from portal import clock
from portal.models import Connection, db, to_db

log = logging.getLogger(__name__)


def refresh_job_id(connection_id: int) -> str:
    return f"refresh-connection-{connection_id}"


def request_refresh(conn: Connection) -> bool:
    """Refresh soon: mark the row due and "syncing" and enqueue one job for it.

    A job already waiting for this connection is not duplicated. Without
    Redis the row stays due and the worker's ticker enqueues it later.
    """
    Connection.update(status="syncing", next_sync_at=None).where(
        Connection.id == conn.id, Connection.status != "needs_reconnect"
    ).execute()
    return enqueue_refresh(conn.id)


def enqueue_refresh(connection_id: int) -> bool:
    from rq.job import Job, JobStatus

    from portal.runtime.queue import get_queue

    try:
        queue = get_queue()
        job_id = refresh_job_id(connection_id)
        existing = Job.fetch(job_id, connection=queue.connection, serializer=queue.serializer)
    except RedisError as exc:
        log.warning("refresh of connection %s not enqueued: %s", connection_id, exc)
        return False
    except Exception:  # rq.exceptions.NoSuchJobError: nothing waiting
        existing = None
    try:
        if existing is not None and existing.get_status(refresh=True) in (
            JobStatus.QUEUED,
            JobStatus.STARTED,
            JobStatus.SCHEDULED,
            JobStatus.DEFERRED,
        ):
            return False
        queue.enqueue(
            "jobs.calendar.refresh",
            connection_id,
            job_id=job_id,
            result_ttl=60,
            failure_ttl=7 * 24 * 3600,
        )
    except RedisError as exc:
        log.warning("refresh of connection %s not enqueued: %s", connection_id, exc)
        return False
    return True


def enqueue_due_refreshes(now: datetime | None = None) -> int:
    """Periodic (worker ticker): enqueue every connection whose refresh is due."""
    now = now or clock.now()
    with db.connection_context():
        due = [
            c.id
            for c in Connection.select(Connection.id).where(
                Connection.status != "needs_reconnect",
                Connection.next_sync_at.is_null() | (Connection.next_sync_at <= to_db(now)),
            )
        ]
    return sum(1 for cid in due if enqueue_refresh(cid))


def init_app(app: Flask) -> None:
    """Put the due-refresh scan on the worker's ticker (called by ``create_app``).

    Write-back's subscription to booking events is declared in
    ``portal.booking.service.BOOKING_EVENT_HANDLERS`` itself.
    """
    from portal.runtime import worker

    if not any(task is enqueue_due_refreshes for _, task in worker.PERIODIC):
        worker.PERIODIC.append((60, enqueue_due_refreshes))
