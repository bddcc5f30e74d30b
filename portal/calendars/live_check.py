"""The confirm-time re-check: busy time read from the providers now, or a trusted cache."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from portal import clock, crypto
from portal.booking.availability import Busy
from portal.calendars import own_events
from portal.calendars.busy_cache import calendar_ref
from portal.calendars.providers import CalendarProvider, CredentialsInvalid, ProviderError
from portal.calendars.refresh_queue import enqueue_refresh
from portal.calendars.sync import adapter, mark_needs_reconnect
from portal.models import Calendar, Connection, User, compiled_sql, from_db

log = logging.getLogger(__name__)


class LiveCheckFailed(Exception):
    """A conflict calendar could not be re-checked and its cache is too old to trust."""


@dataclass
class _Source:
    """One connection asked by the live check: its conflict calendars and its adapter."""

    conn: Connection
    calendars: list[Calendar]
    provider: CalendarProvider | None = None


def live_busy(
    user: User, start: datetime, end: datetime, timeout: float, now: datetime | None = None
) -> list[Busy]:
    """Busy time in ``[start, end)`` read from the providers now, for a confirmation.

    All connections are asked in parallel and the whole check takes at most
    about ``timeout`` seconds. A connection that fails or is too slow falls
    back to its cache if every one of its conflict calendars was synced within
    ``CACHE_TRUST_SECONDS``; otherwise :class:`LiveCheckFailed` is raised,
    because booking on stale data could double-book the host.
    """
    now = now or clock.now()
    trust = timedelta(seconds=int(current_app.config.get("CACHE_TRUST_SECONDS", 900)))
    sources = _sources(user)
    if not sources:
        return []

    def ask(source: _Source) -> dict[str, list | None]:
        assert source.provider is not None
        refs = [calendar_ref(c, user) for c in source.calendars]
        cursors = {c.external_id: cursor_covering(c, start, end) for c in source.calendars}
        return source.provider.recheck(refs, start, end, cursors)

    results: dict[int, dict[str, list | None]] = {}
    futures = {}
    try:
        for source in sources:
            if source.conn.status == "needs_reconnect":
                continue
            try:
                source.provider = adapter(source.conn, timeout=timeout)
            except crypto.SecretError:
                continue
            futures[_pool().submit(ask, source)] = source
        done, pending = wait_futures(futures, timeout=timeout + 0.5)
        for future in pending:
            future.cancel()  # not started yet: it never will; started: it ends on its timeout
        for future in done:
            source = futures[future]
            try:
                results[source.conn.id] = future.result()
            except CredentialsInvalid as exc:
                mark_needs_reconnect(source.conn, str(exc))
            except ProviderError as exc:
                log.info("live check of connection %s failed: %s", source.conn.id, exc)
            except Exception:  # an adapter bug must not turn a booking into a 500
                log.exception("live check of connection %s crashed", source.conn.id)
    finally:
        for source in sources:
            if source.provider is not None and source.conn.id in results:
                source.provider.close()

    out: list[Busy] = []
    for source in sources:
        names = {c.external_id: c.name for c in source.calendars}
        live = results.get(source.conn.id)
        if live is not None:
            changed = False
            for ext, spans in live.items():
                if spans is None:
                    continue  # unchanged since the last refresh: the cache is current
                changed = True
                spans = own_events.external_only(user, spans, start, end)
                out += [Busy(s.start, s.end, names.get(ext, "")) for s in spans]
            if changed:
                enqueue_refresh(source.conn.id)  # the cache catches up in the worker
            continue
        stale = [
            c
            for c in source.calendars
            if c.last_synced_at is None or now - from_db(c.last_synced_at) > trust  # type: ignore[operator]
        ]
        if stale:
            raise LiveCheckFailed(f"{source.conn.label}: calendar unreachable and cache too old")
        # cached_busy (in the booking check) already covers these calendars
    return out


def _sources(user: User) -> list[_Source]:
    """The host's connections with their conflict calendars (those with none are left out),
    in two statements compiled once, whatever the number of connections."""
    conn_sql = compiled_sql(
        "live-connections", lambda: Connection.select().where(Connection.user == 0)
    )
    cal_sql = compiled_sql(
        "live-calendars",
        lambda: (
            Calendar.select(Calendar)
            .join(Connection)
            .where(Connection.user == 0, Calendar.conflict == True)  # noqa: E712
        ),
    )
    calendars: dict[int, list[Calendar]] = {}
    for calendar in Calendar.raw(cal_sql, user.id, True):
        calendars.setdefault(calendar.connection_id, []).append(calendar)
    return [
        _Source(conn, calendars[conn.id])
        for conn in Connection.raw(conn_sql, user.id)
        if conn.id in calendars
    ]


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The process's threads for live checks, started once (starting one per booking showed
    in a booking's profile). Each call is bounded by its adapter's timeout, so a slow
    provider holds a thread only that long; 32 covers 8 connections × 4 request threads."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="live-busy")
        return _POOL


def cursor_covering(calendar: Calendar, start: datetime, end: datetime) -> Mapping[str, object]:
    """The calendar's stored provider cursor when its cached window covers ``[start, end)``.

    Only then does "unchanged since the cursor" mean "the cache answers for the slot";
    otherwise no cursor is given and the provider reads the window.
    """
    try:
        state = json.loads(calendar.sync_state or "{}")
        lo, hi = (datetime.fromisoformat(v) for v in state["window"])
        cursor = state.get("cursor") or {}
    except (KeyError, ValueError, TypeError):
        return {}
    if calendar.last_synced_at is None or not (lo <= start and end <= hi):
        return {}
    return dict(cursor) if isinstance(cursor, dict) else {}
