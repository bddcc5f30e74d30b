"""Job health for admins: queue counts, RQ's failed jobs (retry / discard), the outbox
backlog and calendar connections in trouble."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from peewee import fn

from portal.models import Connection, Outbox, User, to_db, utcnow

OUTBOX_BACKLOG = ("pending", "enqueued", "failed")


@dataclass(frozen=True)
class FailedJob:
    id: str
    func: str
    args: str
    error: str
    ended_at: datetime | None


@dataclass(frozen=True)
class QueueStats:
    name: str
    queued: int
    started: int
    scheduled: int
    deferred: int
    failed: int
    workers: int


def _queue():
    from portal.runtime.queue import get_queue

    return get_queue()


def queue_stats() -> QueueStats:
    """Counts of the Kairos queue and its registries; raises RedisError when Redis is down.

    Workers are those heard from lately (``portal.runtime.worker.live_worker_count``), not RQ's
    registry alone: that one forgets live workers when Redis restarts and remembers
    killed ones for minutes.
    """
    from portal.runtime.worker import live_worker_count

    queue = _queue()
    return QueueStats(
        name=queue.name,
        queued=queue.count,
        started=queue.started_job_registry.count,
        scheduled=queue.scheduled_job_registry.count,
        deferred=queue.deferred_job_registry.count,
        failed=queue.failed_job_registry.count,
        workers=live_worker_count(queue),
    )


def _summary(text: str, limit: int = 300) -> str:
    """The last line of a traceback (the exception itself), shortened."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    return last if len(last) <= limit else last[: limit - 1] + "…"


def failed_jobs(limit: int = 100) -> list[FailedJob]:
    """RQ's failed registry, newest first."""
    from rq.job import Job

    queue = _queue()
    ids = queue.failed_job_registry.get_job_ids(0, limit - 1, desc=True)
    out = []
    for job in Job.fetch_many(ids, connection=queue.connection, serializer=queue.serializer):
        if job is None:
            continue
        result = job.latest_result()
        error = _summary(result.exc_string or "") if result is not None else ""
        try:
            args = json.dumps(list(job.args or []))[:200]
        except (TypeError, ValueError):
            args = ""
        out.append(
            FailedJob(
                id=job.id,
                func=job.func_name or "",
                args=args,
                error=error,
                ended_at=job.ended_at,
            )
        )
    return out


def _outbox_id(job_id: str) -> int | None:
    prefix = "outbox-"
    if job_id.startswith(prefix) and job_id[len(prefix) :].isdigit():
        return int(job_id[len(prefix) :])
    return None


def retry_failed(job_id: str) -> bool:
    """Put a failed job back on its queue; its outbox row (if any) is "enqueued" again."""
    from rq.exceptions import InvalidJobOperation, NoSuchJobError

    queue = _queue()
    try:
        queue.failed_job_registry.requeue(job_id)
    except (InvalidJobOperation, NoSuchJobError):
        return False
    row_id = _outbox_id(job_id)
    if row_id is not None:
        Outbox.update(status="enqueued", enqueued_at=to_db(utcnow())).where(
            Outbox.id == row_id, Outbox.status != "done"
        ).execute()
    return True


def discard_failed(job_id: str) -> bool:
    """Forget a failed job; its outbox row stays "failed", the record that the work was dropped."""
    from rq.exceptions import NoSuchJobError

    queue = _queue()
    registry = queue.failed_job_registry
    if job_id not in registry:
        return False
    try:
        registry.remove(job_id, delete_job=True)
    except NoSuchJobError:
        registry.remove(job_id)
    return True


def outbox_backlog(limit: int = 50) -> tuple[dict[str, int], list[Outbox]]:
    """Counts of unfinished outbox rows by status, and the oldest of them (failed first)."""
    counts = {status: 0 for status in OUTBOX_BACKLOG}
    grouped = (
        Outbox.select(Outbox.status, fn.COUNT(Outbox.id))
        .where(Outbox.status.in_(OUTBOX_BACKLOG))
        .group_by(Outbox.status)
        .tuples()
    )
    for status, count in cast(Iterable[tuple[str, int]], grouped):
        counts[status] = count
    order = {"failed": 0, "enqueued": 1, "pending": 2}
    rows: list[Outbox] = list(
        Outbox.select()
        .where(Outbox.status.in_(OUTBOX_BACKLOG))
        .order_by(Outbox.created_at, Outbox.id)
        .limit(limit * 3)
    )
    rows.sort(key=lambda r: (order[r.status], r.created_at, r.id))
    return counts, rows[:limit]


def connections_health() -> list[Connection]:
    """Every connection with its member, trouble first."""
    rows = list(Connection.select(Connection, User).join(User).order_by(Connection.id))
    rank = {"needs_reconnect": 0, "error": 1, "syncing": 2, "ok": 3}
    rows.sort(key=lambda c: (rank.get(c.status, 4), c.id))
    return rows
