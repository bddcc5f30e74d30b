"""Running outbox rows: the one RQ entry point for work recorded in the outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from portal.models import Outbox, db, to_db, utcnow
from portal.outbox import RETRY
from portal.providers import RateLimited

log = logging.getLogger(__name__)

Handler = Callable[..., Any]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the handler of outbox rows of ``kind``."""

    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def run(outbox_id: int) -> str:
    """Do the work of one outbox row once; a second run of a done row does nothing."""
    with db.connection_context():
        row = Outbox.get_or_none(Outbox.id == outbox_id)
        if row is None or row.status == "done":
            return "skipped"
        fn = HANDLERS.get(row.kind)
        if fn is None:
            raise LookupError(f"no outbox handler for {row.kind!r}")
        Outbox.update(attempts=Outbox.attempts + 1).where(Outbox.id == outbox_id).execute()
        try:
            fn(**row.data())
        except Exception as exc:
            if isinstance(exc, RateLimited) and exc.retry_after and row.attempts + 1 <= RETRY.max:
                # The provider said when to come back (Retry-After, Exchange's
                # BackOffMilliseconds): the row waits that long and the relay enqueues it
                # again, rather than RQ retrying on its own schedule, too early or too late.
                Outbox.update(
                    status="pending",
                    run_at=to_db(utcnow() + timedelta(seconds=exc.retry_after)),
                    enqueued_at=None,
                    last_error=f"{type(exc).__name__}: {exc}"[:2000],
                ).where(Outbox.id == outbox_id).execute()
                return "deferred"
            # After RQ's last retry the row is failed for good (visible to the admin);
            # before that it stays "enqueued" while RQ backs off.
            final = row.attempts + 1 > RETRY.max
            Outbox.update(
                last_error=f"{type(exc).__name__}: {exc}"[:2000],
                status="failed" if final else "enqueued",
            ).where(Outbox.id == outbox_id).execute()
            raise
        Outbox.update(status="done", done_at=to_db(utcnow()), last_error="").where(
            Outbox.id == outbox_id
        ).execute()
        return "done"
