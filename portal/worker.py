"""The RQ worker: runs jobs, RQ's scheduler, and a ticker for periodic work.

The ticker relays due outbox rows (work recorded while Redis was down, and
reminders whose time has come) and runs the periodic tasks registered in
``PERIODIC`` (e.g. free/busy refresh). Several workers may tick at once: every
periodic task is safe to run concurrently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from .outbox import relay
from .queue import get_queue, get_redis

log = logging.getLogger(__name__)

# (every N seconds, task); tasks run inside an app context.
PERIODIC: list[tuple[int, Callable[[], object]]] = [(5, relay)]


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


def run_worker(app: Flask, burst: bool = False) -> None:
    """Work the Kairos queue until stopped (or until empty with ``burst``)."""
    import jobs  # noqa: F401  (registers outbox handlers)

    stop = threading.Event()
    ticker = threading.Thread(target=_ticker, args=(app, stop), daemon=True)
    with app.app_context():
        if not burst:
            ticker.start()
        queue = get_queue()
        worker = SimpleWorker([queue], connection=get_redis(), serializer=JSONSerializer)
        try:
            worker.work(with_scheduler=True, burst=burst, logging_level="INFO")
        finally:
            stop.set()
