"""The app's one clock: what "now" is when booking rules are decided.

Views and jobs ask ``now()`` for the instant they pass to the booking service
and the engine (lead time, booking window, "already started", reminders due,
slots listed), instead of reading the wall clock themselves. It calls the
``CLOCK`` callable from the app's config when one is set — the test app installs
a clock that starts at the tests' "now" — and is the real UTC time otherwise,
and outside an app context.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, has_app_context


def now() -> datetime:
    """The current instant, timezone-aware UTC, on the app's clock."""
    clock = current_app.config.get("CLOCK") if has_app_context() else None
    return clock() if clock is not None else datetime.now(UTC)


def given_or_now(value: str | datetime | None, *, wall: bool = False) -> datetime:
    """A job's optional ``now``: an ISO string (through RQ), a datetime, or else the clock's.

    ``wall``: the real UTC time instead of the app's clock, for jobs whose stamps are
    compared with the wall clock (e-mails sent, links and deliveries that expire).
    """
    if isinstance(value, datetime):
        return value
    if value:
        return datetime.fromisoformat(value)
    return datetime.now(UTC) if wall else now()
