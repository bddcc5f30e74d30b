"""The RQ worker: runs jobs, RQ's scheduler, and a ticker for periodic work.

The ticker relays due outbox rows (work recorded while Redis was down, reminders
whose time has come, rows whose lease ran out) and runs the periodic tasks
registered in ``PERIODIC`` (e.g. free/busy refresh). Several workers may tick at
once: every periodic task is safe to run concurrently.

RQ's scheduler (it moves retries whose backoff is over back onto the queue)
runs here in a thread of the worker process, not in the process RQ would fork:
a forked scheduler survived a ``kill -9`` of its worker and went on holding the
queue's scheduler lock, so the restarted worker had none and retries due in
10 s waited 10 minutes. A thread dies with its process. At start, and while it
holds no lock, the thread takes over a lock whose holder has stopped
heartbeating (``STALE_SCHEDULER_AFTER``), so a retry is not kept waiting by a
dead worker's lock either.

The same thread keeps the worker registered: RQ's registry of workers lives in
Redis, and a Redis restarted without its data forgets every worker while they
go on working. Each worker heartbeats every ``KEEPALIVE_EVERY`` seconds and
registers itself again when it finds itself missing; ``live_worker_count``
counts the workers heard from recently, which the admin's job-health page shows.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker, Worker, worker_registration
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scripts import release_lock
from rq.serializers import JSONSerializer
from rq.utils import now, utcparse

from portal.runtime.outbox import relay
from portal.runtime.queue import get_queue, get_redis

log = logging.getLogger(__name__)

# (every N seconds, task); tasks run inside an app context.
PERIODIC: list[tuple[int, Callable[[], object]]] = [(5, relay)]

# A scheduler heartbeats every second; one silent this long is dead (killed with its worker).
STALE_SCHEDULER_AFTER = 15
KEEPALIVE_EVERY = 5
# A worker not heard from for this long is not counted (RQ keeps its record 8 minutes).
LIVE_WITHIN = timedelta(seconds=60)


def tick(app: Flask, last_run: dict[int, float], now: float) -> None:
    """Run every periodic task whose interval has elapsed."""
    with app.app_context():
        for index, (every, task) in enumerate(PERIODIC):
            if now - last_run.get(index, 0.0) >= every:
                last_run[index] = now
                try:
                    task()
                except Exception:
                    log.exception("periodic task %s failed", getattr(task, "__name__", task))


def _ticker(app: Flask, stop: threading.Event) -> None:
    last_run: dict[int, float] = {}
    while not stop.is_set():
        tick(app, last_run, time.monotonic())
        stop.wait(1.0)


def _scheduler_alive(connection: Redis, name: str) -> bool:
    """Whether the scheduler called ``name`` is still running.

    Silent for ``STALE_SCHEDULER_AFTER`` means dead. On this host a missing
    process says so sooner (a restarted worker takes over at once), but only
    after a few missed beats: a same-named host elsewhere would still be beating.
    """
    raw = connection.hgetall(SCHEDULER_KEY_TEMPLATE % name)
    info = {_text(k): _text(v) for k, v in (raw or {}).items()}
    if not info.get("last_heartbeat"):
        return False
    silent = (now() - utcparse(info["last_heartbeat"])).total_seconds()
    if silent >= STALE_SCHEDULER_AFTER:
        return False
    pid = int(info.get("pid") or 0)
    gone = info.get("hostname") == socket.gethostname() and pid and not _pid_exists(pid)
    return not (gone and silent >= 3)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Scheduler:
    """RQ's scheduler driven from a thread of the worker (see the module docstring)."""

    def __init__(self, queue: Queue, connection: Redis):
        self.rq = RQScheduler([queue], connection=connection, serializer=JSONSerializer)
        # Our own client (it may be the embedded server's): RQ would build a new one from
        # the connection's pool settings, meant for the process it forks.
        self.rq._connection = connection  # type: ignore[assignment]
        self.connection = connection

    def take_over_stale_locks(self) -> None:
        """Free a queue's scheduler lock whose holder no longer heartbeats."""
        for name in self.rq._queue_names:
            key = RQScheduler.get_locking_key(name)
            raw = self.connection.get(key)
            if raw is None:
                continue
            holder = _text(raw)
            if holder == self.rq.name or _scheduler_alive(self.connection, holder):
                continue
            # Deleted only if still held by that dead holder (atomic compare-and-delete).
            if release_lock(self.connection, key, holder):
                log.warning("scheduler lock of %s freed: holder %s is dead", name, holder)

    def step(self) -> None:
        """One beat: hold (or try to take) the lock, heartbeat, enqueue retries that are due."""
        if self.rq.acquired_locks != self.rq._queue_names:
            self.take_over_stale_locks()
            self.rq.acquire_locks()
        self.rq.heartbeat()
        if self.rq.acquired_locks:
            self.rq.enqueue_scheduled_jobs()

    def once(self) -> None:
        """What a burst worker does: enqueue what is due, then let go of the lock."""
        self.take_over_stale_locks()
        self.rq.acquire_locks()
        if not self.rq.acquired_locks:
            return
        try:
            self.rq.register_birth()
            self.rq.enqueue_scheduled_jobs()
        finally:
            self.rq.release_locks()
            self.rq.register_death()

    def stop(self) -> None:
        try:
            self.rq.release_locks()
            self.rq.register_death()
        except RedisError:
            log.warning("scheduler: could not release its lock (Redis down); it expires by itself")


class KairosWorker(SimpleWorker):
    """RQ's SimpleWorker that stays registered and stops its helper threads first."""

    helpers_stop: threading.Event | None = None
    helpers: list[threading.Thread] = []

    def keepalive(self) -> None:
        """Heartbeat, and register again if Redis forgot this worker (restarted empty)."""
        if self.birth_date is None:
            return  # not registered by RQ yet (work() does that first)
        with self.connection.pipeline() as pipe:
            pipe.sismember(self.redis_workers_keys, self.key)
            pipe.hexists(self.key, "birth")
            registered, born = pipe.execute()
        if registered and born:
            self.heartbeat()
            return
        log.warning("worker %s: missing from Redis (restarted?); registering again", self.name)
        self.last_heartbeat = now()
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, mapping={**self.serialize(), "state": str(self.get_state())})
            worker_registration.register(self, pipe)
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.execute()

    def teardown(self) -> None:
        # Stop the scheduler/keepalive thread before RQ records the death, or a last
        # keepalive could register the worker again after it.
        if self.helpers_stop is not None:
            self.helpers_stop.set()
            for thread in self.helpers:
                thread.join(timeout=10)
        super().teardown()


def _scheduler_loop(worker: KairosWorker, scheduler: Scheduler, stop: threading.Event) -> None:
    last_keepalive = 0.0
    try:
        scheduler.rq.register_birth()
    except RedisError:
        log.warning("scheduler: Redis unavailable at start; retrying", exc_info=True)
    while not stop.is_set():
        try:
            scheduler.step()
            if time.monotonic() - last_keepalive >= KEEPALIVE_EVERY:
                last_keepalive = time.monotonic()
                worker.keepalive()
        except RedisError:
            log.warning("scheduler: Redis unavailable; retrying", exc_info=True)
        except Exception:
            log.exception("scheduler step failed")
        stop.wait(scheduler.rq.interval)
    scheduler.stop()


def run_worker(app: Flask, burst: bool = False) -> None:
    """Work the Kairos queue until stopped (or until empty with ``burst``)."""
    import jobs  # noqa: F401  (registers outbox handlers)

    stop = threading.Event()
    with app.app_context():
        queue = get_queue()
        connection = get_redis()
        worker = KairosWorker([queue], connection=connection, serializer=JSONSerializer)
        scheduler = Scheduler(queue, connection)
        if burst:
            scheduler.once()
        else:
            worker.helpers_stop = stop
            worker.helpers = [
                threading.Thread(target=_ticker, args=(app, stop), name="ticker", daemon=True),
                threading.Thread(
                    target=_scheduler_loop,
                    args=(worker, scheduler, stop),
                    name="scheduler",
                    daemon=True,
                ),
            ]
            for thread in worker.helpers:
                thread.start()
        try:
            worker.work(burst=burst, logging_level="INFO")
        finally:
            stop.set()


def live_worker_count(queue: Queue) -> int:
    """Workers of ``queue`` heard from within ``LIVE_WITHIN`` (killed ones drop out in a minute)."""
    cutoff = now() - LIVE_WITHIN
    return sum(
        1
        for w in Worker.all(queue=queue)
        if w.last_heartbeat is not None and w.last_heartbeat >= cutoff
    )
