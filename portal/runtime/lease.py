"""Leases: a claim that stays valid only while its holder keeps renewing it.

A fixed timeout has to be longer than the slowest honest holder, so a holder
that was killed blocks everyone for that long (the outbox used to wait two
hours, the write-back lock ten minutes). A lease is short instead and renewed
from a background thread while the work runs: a long job keeps its claim, a
killed one loses it within one lease. The claims themselves live where the
work is recorded (outbox rows, e-mail claims: the database; per-booking
locks: Redis); this module only keeps them alive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import current_app

log = logging.getLogger(__name__)


def lease_seconds() -> int:
    """How long a claim outlives its holder's last renewal (``KAIROS_OUTBOX_LEASE_SECONDS``)."""
    return max(2, int(current_app.config.get("OUTBOX_LEASE_SECONDS", 60)))


@contextmanager
def renewing(renew: Callable[[], object], every: float, what: str = "lease") -> Iterator[None]:
    """Call ``renew()`` every ``every`` seconds from a daemon thread while the block runs.

    A renewal that fails (the database busy for a moment, Redis restarting) is
    logged and tried again at the next beat: one lease holds several beats.
    The thread dies with the process, which is the point: a killed holder
    stops renewing.
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                renew()
            except Exception:
                log.warning("renewing %s failed; trying again soon", what, exc_info=True)

    thread = threading.Thread(target=beat, name=f"renew {what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
