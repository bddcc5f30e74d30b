"""The relay from the outbox table to RQ, and the lease that brings back lost work.

A state change and the work it causes are committed together (``Outbox.add``
inside the caller's transaction). ``relay`` later claims due rows and hands
them to RQ; when Redis is down the rows simply stay pending and the next relay
catches up. The job (``jobs.outbox.run``) marks its row done, so a row that
reaches RQ twice still does its work once.

Lost work: a lease on the row
-----------------------------
A row handed to RQ can be lost: the worker running it is killed (``kill -9``,
OOM, a host that goes away), or Redis restarts without its data. RQ's own
abandoned-job handling is not enough for either: it looks for dead workers'
jobs only during a worker's maintenance pass (every 10 minutes), only finds
jobs Redis still holds, and judges a job abandoned by a heartbeat that
``SimpleWorker`` does not send while the job runs. The database is where the
work is recorded, so that is where its liveness is kept too:

* the relay that enqueues a row gives it a lease of ``OUTBOX_LEASE_SECONDS``
  (``lease_until``, no ``lease_owner``);
* the job running it takes the lease (``lease_owner``, atomically, so two
  deliveries of one row never run at once) and renews it from a background
  thread (``portal.runtime.lease``): a long job keeps it, a killed one loses it within
  a lease;
* a failure that RQ will retry hands the lease back extended past the retry's
  backoff, so a row waiting in RQ's backoff is not sent early;
* when a lease runs out, the relay asks RQ about the job: still queued,
  scheduled (backoff) or deferred, it is only waiting and the lease is
  extended; gone (Redis lost it), or started or failed with nobody renewing
  the lease, its RQ remains are deleted — so RQ's abandoned-job cleanup does
  not run it a second time — and it is enqueued afresh.

A killed job is thus redone about one lease later (plus a relay tick).
Exactly once: a rerun re-reads the row (done → skipped), and the handlers
dedupe what a killed run had already done (write-back finds its event by the
booking's iCalendar UID, e-mail skips messages whose ``SentEmail`` says sent).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.job import JobStatus

from portal.database import write_transaction
from portal.models import Outbox, db, insert_rows, to_db, utcnow
from portal.runtime.lease import lease_seconds
from portal.runtime.queue import get_queue

log = logging.getLogger(__name__)

# Backoff for failed outbox jobs: 10 s, 1 min, 5 min, 15 min, 1 h.
RETRY = Retry(max=5, interval=[10, 60, 300, 900, 3600])
# RQ states in which a job is only waiting: its row is not lost.
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def job_id(row_id: int) -> str:
    return f"outbox-{row_id}"


def retry_delay(attempt: int) -> int:
    """Seconds RQ waits before retrying after failed attempt number ``attempt`` (1-based)."""
    intervals = RETRY.intervals
    return intervals[min(max(attempt, 1), len(intervals)) - 1]


def _in_rq(queue: Queue, row_id: int) -> bool:
    """True while RQ still holds the row's job in a state that will run it."""
    job = queue.fetch_job(job_id(row_id))
    return job is not None and job.get_status(refresh=False) in WAITING


def _forget_job(queue: Queue, row_id: int) -> None:
    """Delete what RQ still has of a lost job (a dead worker's "started" entry, a failure)."""
    job = queue.fetch_job(job_id(row_id))
    if job is not None:
        job.delete()


def relay(limit: int = 200, now: datetime | None = None, ids: list[int] | None = None) -> int:
    """Move due outbox rows to RQ; returns how many were enqueued (``now``: tests).

    ``ids``: only these rows (what one request just recorded), so concurrent
    requests do not all compete for each other's rows; the ticker relays the rest.
    """
    now = now or utcnow()
    lease = timedelta(seconds=lease_seconds())
    due = (Outbox.run_at.is_null()) | (Outbox.run_at <= to_db(now))
    pending = Outbox.status == "pending"
    lapsed = (Outbox.status == "enqueued") & (
        Outbox.lease_until.is_null() | (Outbox.lease_until < to_db(now))
    )
    wanted = due & (pending | lapsed)
    if ids is not None:
        if not ids:
            return 0
        wanted &= Outbox.id.in_(ids)
    with db.connection_context():
        rows = list(
            Outbox.select(Outbox.id, Outbox.status).where(wanted).order_by(Outbox.id).limit(limit)
        )
    if not rows:
        return 0
    try:
        queue = get_queue()
        waiting = {r.id for r in rows if r.status == "enqueued" and _in_rq(queue, r.id)}
    except RedisError as exc:
        log.warning("outbox relay: redis unavailable (%s); %d rows wait", exc, len(rows))
        return 0
    claimed = _claim(rows, waiting, now, now + lease, pending | lapsed, lapsed)
    if not claimed:
        return 0
    sent = 0
    try:
        for row in claimed:
            if row.status == "enqueued":
                log.warning("outbox relay: row %s lost (lease ran out); sending it again", row.id)
                _forget_job(queue, row.id)
        # One round trip for all of them (a booking records four).
        queue.enqueue_many([_prepared(row.id) for row in claimed])
        sent = len(claimed)
    except RedisError as exc:
        log.warning("outbox relay: enqueue failed (%s); %d rows wait", exc, len(claimed))
        with db.connection_context():
            Outbox.update(status="pending", enqueued_at=None, lease_until=None).where(
                Outbox.id.in_([r.id for r in claimed])
            ).execute()
    return sent


def _claim(rows: list, waiting: set[int], now: datetime, until: datetime, claimable, lapsed):
    """Claim the rows for this relay in one write transaction; the ones it got, in order.

    A row still waiting in RQ only has its lease extended. A row another relay
    (or its job) took meanwhile is not claimed.
    """
    claimed = []
    with db.connection_context(), write_transaction():
        for row in rows:
            if row.id in waiting:  # queued behind others, or in RQ's backoff: not lost
                Outbox.update(lease_until=to_db(until)).where(Outbox.id == row.id, lapsed).execute()
                continue
            got = (
                Outbox.update(
                    status="enqueued",
                    enqueued_at=to_db(now),
                    lease_until=to_db(until),
                    lease_owner=None,
                )
                .where(Outbox.id == row.id, claimable)
                .execute()
            )
            if got:  # else another relay took it, or its job just took the lease
                claimed.append(row)
    return claimed


def record(
    items: Sequence[tuple[str, datetime | None, dict[str, object]]], now: datetime
) -> list[int]:
    """Insert ``(kind, run_at, payload)`` rows in the caller's transaction, a statement for
    the rows due now and one for later ones; the ids of those due now, for :func:`send`.

    With the relay on commit (the default) the rows due now are born claimed by this
    request (``enqueued``, with a lease and no owner, as :func:`relay` leaves them), so
    the request needs no second write transaction to claim them and the ticker leaves
    them alone. Should the request die before :func:`send`, the lease runs out and the
    ticker sends them, as it does any lost row.
    """
    claim = bool(current_app.config.get("OUTBOX_RELAY_ON_COMMIT", True))
    stamp = to_db(now)
    due: list[dict[str, object]] = []
    later: list[dict[str, object]] = []
    for kind, run_at, payload in items:
        row: dict[str, object] = {
            "kind": kind,
            "payload": json.dumps(payload),
            "run_at": to_db(run_at),
            "created_at": stamp,
        }
        (due if run_at is None or run_at <= now else later).append(row)
    if later:
        insert_rows(Outbox, later)
    if not due:
        return []
    if claim:
        until = to_db(now + timedelta(seconds=lease_seconds()))
        for row in due:
            row.update(status="enqueued", enqueued_at=stamp, lease_until=until)
    return sorted(insert_rows(Outbox, due))


def send(ids: list[int]) -> None:
    """Hand rows that :func:`record` claimed to RQ, after the caller's commit; never raises.

    Redis down: the rows go back to pending, for the ticker's next relay. Without
    the relay on commit they were never claimed, and the ticker sends them.
    """
    if not ids or not current_app.config.get("OUTBOX_RELAY_ON_COMMIT", True):
        return
    try:
        get_queue().enqueue_many([_prepared(row_id) for row_id in ids])
    except RedisError as exc:
        log.warning("outbox send: enqueue failed (%s); %d rows wait", exc, len(ids))
        try:
            with db.connection_context():
                Outbox.update(status="pending", enqueued_at=None, lease_until=None).where(
                    Outbox.id.in_(ids), Outbox.status == "enqueued", Outbox.lease_owner.is_null()
                ).execute()
        except Exception:  # the lease still brings them back
            log.exception("outbox send: could not hand the rows back")
    except Exception:  # the request already succeeded; the lease brings the rows back
        log.exception("outbox send after commit failed")


def _prepared(row_id: int):
    return Queue.prepare_data(
        "jobs.outbox.run",
        (row_id,),
        job_id=job_id(row_id),
        retry=RETRY,
        failure_ttl=30 * 24 * 3600,
    )


def relay_quietly(ids: list[int] | None = None) -> None:
    """Best-effort relay right after a commit, so work starts without waiting for the ticker.

    ``ids``: the rows the caller just recorded (all due rows when not given).
    """
    if current_app.config.get("OUTBOX_RELAY_ON_COMMIT", True):
        try:
            relay(ids=ids)
        except Exception:  # the request already succeeded; the worker's ticker retries
            log.exception("outbox relay after commit failed")
