"""Running outbox rows: the one RQ entry point for work recorded in the outbox."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from portal.calendars.providers import RateLimited
from portal.models import Outbox, db, to_db, utcnow
from portal.runtime.lease import lease_seconds, renewing
from portal.runtime.outbox import RETRY, retry_delay

log = logging.getLogger(__name__)

Handler = Callable[..., Any]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the handler of outbox rows of ``kind``."""

    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def _take_lease(outbox_id: int, owner: str, lease: timedelta) -> bool:
    """Claim the row for this run unless a live run holds it (see ``portal.runtime.outbox``)."""
    now = to_db(utcnow())
    free = Outbox.lease_owner.is_null() | Outbox.lease_until.is_null() | (Outbox.lease_until < now)
    return bool(
        Outbox.update(
            lease_owner=owner,
            lease_until=to_db(utcnow() + lease),
            attempts=Outbox.attempts + 1,
        )
        .where(Outbox.id == outbox_id, Outbox.status != "done", free)
        .execute()
    )


def _renew_lease(outbox_id: int, owner: str, lease: timedelta) -> None:
    with db.connection_context():
        kept = (
            Outbox.update(lease_until=to_db(utcnow() + lease))
            .where(Outbox.id == outbox_id, Outbox.lease_owner == owner)
            .execute()
        )
    if not kept:
        log.warning("outbox row %s: lease lost (this run was presumed dead)", outbox_id)


def run(outbox_id: int) -> str:
    """Do the work of one outbox row once; a second run of a done row does nothing."""
    lease = timedelta(seconds=lease_seconds())
    owner = uuid.uuid4().hex
    with db.connection_context():
        row = Outbox.get_or_none(Outbox.id == outbox_id)
        if row is None or row.status == "done":
            return "skipped"
        fn = HANDLERS.get(row.kind)
        if fn is None:
            raise LookupError(f"no outbox handler for {row.kind!r}")
        if not _take_lease(outbox_id, owner, lease):
            fresh = Outbox.get_by_id(outbox_id)
            if fresh.status == "done":
                return "skipped"
            # A second delivery while the first still runs (and renews its lease): that
            # run finishes the row; should it die, the relay sends the row again.
            log.info("outbox row %s is being run elsewhere; skipping", outbox_id)
            return "running elsewhere"
        attempt = row.attempts + 1
        try:
            with renewing(
                lambda: _renew_lease(outbox_id, owner, lease),
                every=lease.total_seconds() / 4,
                what=f"outbox row {outbox_id}",
            ):
                fn(**row.data())
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            if isinstance(exc, RateLimited) and exc.retry_after and attempt <= RETRY.max:
                # The provider said when to come back (Retry-After, Exchange's
                # BackOffMilliseconds): the row waits that long and the relay enqueues it
                # again, rather than RQ retrying on its own schedule, too early or too late.
                Outbox.update(
                    status="pending",
                    run_at=to_db(utcnow() + timedelta(seconds=exc.retry_after)),
                    enqueued_at=None,
                    lease_until=None,
                    lease_owner=None,
                    last_error=error,
                ).where(Outbox.id == outbox_id).execute()
                return "deferred"
            # After RQ's last retry the row is failed for good (visible to the admin);
            # before that it stays "enqueued" while RQ backs off, its lease reaching past
            # the backoff so that the relay does not send it early.
            final = attempt > RETRY.max
            backoff = timedelta(seconds=0 if final else retry_delay(attempt))
            Outbox.update(
                last_error=error,
                status="failed" if final else "enqueued",
                lease_until=to_db(utcnow() + backoff + lease),
                lease_owner=None,
            ).where(Outbox.id == outbox_id).execute()
            raise
        Outbox.update(
            status="done", done_at=to_db(utcnow()), last_error="", lease_owner=None
        ).where(Outbox.id == outbox_id).execute()
        return "done"
