"""Calendar connections: the one place that joins connection rows with provider adapters.

Adapters (``portal.calendars.providers``) know nothing of the database; views know
nothing of adapters. Everything in between lives here:

* :func:`connect` / :func:`disconnect` / :func:`set_calendar_flags` — the
  account life cycle, with the credentials sealed to their row
  (``portal.crypto``);
* :func:`refresh_connection` — the free/busy cache, incremental where the
  adapter allows, and the status machine ``ok | syncing | needs_reconnect |
  error`` (an authentication failure stops retrying and records a
  ``host_action_required`` outbox row so the host is e-mailed once);
* :func:`live_busy` — the confirm-time re-check, with a short timeout and
  the "trust a fresh-enough cache" fallback;
* :func:`request_refresh` / :func:`enqueue_due_refreshes` — deduplicated
  refresh jobs (one RQ job id per connection), on demand and periodic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from redis.exceptions import RedisError

from portal import clock, crypto
from portal.booking.availability import Busy
from portal.calendars.providers import (
    BusyChanges,
    CalendarProvider,
    CalendarRef,
    CredentialsInvalid,
    InvalidSetup,
    ProviderError,
    RateLimited,
    RemoteCalendar,
    SyncTokenExpired,
    get_provider,
    provider_class,
    provider_config,
)
from portal.database import host_lock, write_transaction
from portal.models import (
    BusyBlock,
    Calendar,
    CalendarEvent,
    Connection,
    MeetingType,
    Outbox,
    User,
    db,
    from_db,
    to_db,
)
from portal.org.settings import not_allowed_message, provider_allowed

log = logging.getLogger(__name__)

STATUSES = ("ok", "syncing", "needs_reconnect", "error")
PAST_DAYS = 1  # the cache keeps a day of the past (events running now)
SLACK_DAYS = 7  # the cached window reaches this far beyond what bookings need
MAX_BACKOFF = timedelta(hours=1)
ACTION_REQUIRED = "host_action_required"  # outbox kind; its handler e-mails the host


class LiveCheckFailed(Exception):
    """A conflict calendar could not be re-checked and its cache is too old to trust."""


# ---------------------------------------------------------------- adapters for rows


def credentials(conn: Connection) -> dict[str, Any]:
    return crypto.unseal(conn, "secret") or {}


def store_credentials(conn: Connection, creds: dict[str, Any]) -> None:
    crypto.seal(conn, "secret", creds)
    Connection.update(secret=conn.secret).where(Connection.id == conn.id).execute()


def adapter(conn: Connection, timeout: float | None = None) -> CalendarProvider:
    """The adapter of one connection; refreshed OAuth tokens are re-sealed to the row."""
    config = provider_config(current_app.config)
    if timeout is not None:
        config["HTTP_TIMEOUT"] = timeout
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    owner = threading.get_ident()

    def on_credentials_updated(new: dict[str, Any]) -> None:
        if threading.get_ident() == owner:
            store_credentials(conn, dict(new))
            return
        # A live-check thread: its own app context and connection (peewee's are per thread).
        with app.app_context(), db.connection_context():
            store_credentials(conn, dict(new))

    guard = None
    if provider_class(conn.provider).oauth:
        # One token refresh per account at a time, across processes (rotating refresh tokens).
        from portal.calendars.oauth_accounts import refresh_guard

        guard = refresh_guard(conn.id)
    return get_provider(
        conn.provider,
        conn.settings_dict(),
        credentials(conn),
        config,
        on_credentials_updated,
        refresh_guard=guard,
    )


def zone_for(calendar: Calendar, user: User) -> str:
    """All-day events and floating times: the calendar's zone, else the host's."""
    return calendar.timezone or user.timezone or "UTC"


def calendar_ref(calendar: Calendar, user: User) -> CalendarRef:
    return CalendarRef(calendar.external_id, zone_for(calendar, user), calendar.all_busy)


# ---------------------------------------------------------------- life cycle


def connect(user: User, provider: str, fields: dict[str, Any]) -> Connection:
    """Check the account with the provider, store it (secret sealed) and list its calendars.

    The provider is asked first, outside any transaction; then the row and
    its calendars are written in one transaction, so a connection exists
    with its calendars or not at all (never a row stuck at "syncing"). An
    account the host has already connected is refused. Raises
    :class:`InvalidSetup` naming the field at fault.
    """
    try:
        cls = provider_class(provider)
    except KeyError:
        raise InvalidSetup("provider", "unknown calendar provider") from None
    if not provider_allowed(user, provider):  # the organisation's switches
        raise InvalidSetup("provider", not_allowed_message(provider))
    if cls.oauth:
        raise InvalidSetup("provider", f"{cls.title} is connected in the browser")
    # Refused before the server is asked when the form already names the account.
    refuse_duplicate(user, provider, fields, fields)
    config = provider_config(current_app.config)
    setup = cls.prepare(fields, config)
    remote: list[RemoteCalendar] = []
    failure: ProviderError | None = None
    probe = get_provider(provider, setup.settings, setup.credentials, config)
    try:
        remote = probe.list_calendars()
    except ProviderError as exc:
        failure = exc  # kept as the connection's error, as a failed refresh would be
    finally:
        probe.close()
    # The host's lock: two identical connects racing cannot both pass the duplicate check.
    with host_lock(user.id):
        refuse_duplicate(user, provider, setup.settings, setup.credentials)
        conn = Connection.create(
            user=user,
            provider=provider,
            label=setup.label[:255],
            settings=json.dumps(dict(setup.settings)),
            status="syncing",
        )
        crypto.seal(conn, "secret", dict(setup.credentials))
        conn.save()
        if failure is None:
            save_calendars(conn, remote)
        else:
            _record_failure(conn, failure)
    return Connection.get_by_id(conn.id)


def refuse_duplicate(
    user: User,
    provider: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, Any],
    exclude: int = 0,
) -> None:
    """Raise :class:`InvalidSetup` when the host has connected this account already.

    The provider says what identifies an account (a feed's normalised URL, a
    CalDAV server and user, an Exchange mailbox); the same calendars twice
    would only be read twice.
    """
    cls = provider_class(provider)
    try:
        key = cls.account_key(settings, secrets)
    except InvalidSetup:
        return  # not an address yet: prepare() says what is wrong with it
    if not key:
        return
    others = Connection.select().where(
        Connection.user == user, Connection.provider == provider, Connection.id != exclude
    )
    for other in others:
        try:
            secret = credentials(other)
        except crypto.SecretError:
            continue  # unreadable: it cannot be compared, and needs a reconnect anyway
        if cls.account_key(other.settings_dict(), secret) == key:
            raise InvalidSetup(
                cls.account_field,
                f"this {cls.account_noun} is already connected (as “{other.label}”)",
            )


def with_adapter(conn: Connection, fn: Callable[[CalendarProvider], Any]) -> Any:
    provider = adapter(conn)
    try:
        return fn(provider)
    finally:
        provider.close()


def save_calendars(conn: Connection, remote: Iterable[RemoteCalendar]) -> None:
    """Mirror the provider's calendar list, keeping the host's choices for known ones.

    New calendars are checked for conflicts; the account's primary writable
    calendar becomes the write calendar when the host has none yet. Calendars
    gone from the account are dropped (their cached busy time with them).
    """
    user = User.get_by_id(conn.user_id)
    # The host's lock: the write-calendar election below is one per host.
    with host_lock(user.id):
        known = {c.external_id: c for c in Calendar.select().where(Calendar.connection == conn)}
        seen = set()
        for rc in remote:
            seen.add(rc.external_id)
            row = known.get(rc.external_id)
            if row is None:
                row = Calendar.create(
                    connection=conn,
                    external_id=rc.external_id,
                    name=rc.name[:255],
                    writable=rc.writable,
                    timezone=rc.timezone,
                    conflict=True,
                    write=False,
                )
                if rc.primary and rc.writable and write_calendar(user) is None:
                    Calendar.update(write=True).where(Calendar.id == row.id).execute()
            else:
                Calendar.update(
                    name=rc.name[:255],
                    writable=rc.writable,
                    timezone=rc.timezone,
                    write=row.write and rc.writable,
                ).where(Calendar.id == row.id).execute()
        gone = [c.id for ext, c in known.items() if ext not in seen]
        if gone:
            Calendar.delete().where(Calendar.id.in_(gone)).execute()


def disconnect(conn: Connection) -> None:
    """Forget the account: the row, its sealed secret, calendars and cached busy time.

    Links from bookings to events already written stay (their calendar is set
    to NULL), so the booking page still says where an event went.
    """
    with write_transaction():
        Connection.update(secret="").where(Connection.id == conn.id).execute()
        conn.delete_instance(recursive=False)


def write_calendar(user: User) -> Calendar | None:
    """The host's one calendar that receives new bookings."""
    return (
        Calendar.select()
        .join(Connection)
        .where(Connection.user == user, Calendar.write == True)  # noqa: E712
        .first()
    )


def set_calendar_flags(
    calendar: Calendar, conflict: bool | None = None, write: bool | None = None
) -> Calendar:
    """Change a calendar's conflict / write flags; one write calendar per host.

    Raises :class:`InvalidSetup` when asked to write into a read-only calendar.
    """
    conn = Connection.get_by_id(calendar.connection_id)
    with host_lock(conn.user_id):
        if write:
            if not calendar.writable:
                raise InvalidSetup("write", "this calendar is read-only")
            others = (
                Calendar.select(Calendar.id)
                .join(Connection)
                .where(Connection.user == conn.user_id, Calendar.id != calendar.id)
            )
            Calendar.update(write=False).where(Calendar.id.in_(others)).execute()
            calendar.write = True
        elif write is False:
            calendar.write = False
        if conflict is not None:
            calendar.conflict = conflict
            if not conflict:
                BusyBlock.delete().where(BusyBlock.calendar == calendar).execute()
                calendar.sync_state = "{}"
                calendar.last_synced_at = None
        calendar.save()
    return calendar


# ---------------------------------------------------------------- refresh


def horizon_days(user: User) -> int:
    """How far ahead bookings can reach: the longest booking window of the host's types."""
    longest = (
        MeetingType.select(MeetingType.window_days)
        .where(MeetingType.user == user, MeetingType.is_active == True)  # noqa: E712
        .order_by(MeetingType.window_days.desc())
        .scalar()
    )
    return int(longest or 60) + 1


def _source_key(source: str) -> str:
    """BusyBlock.external_id is a 255-character column; long hrefs are hashed."""
    if len(source) <= 200:
        return source
    return "sha256:" + hashlib.sha256(source.encode()).hexdigest()


def apply_changes(
    calendar: Calendar, changes: BusyChanges, window: tuple[datetime, datetime], now: datetime
) -> None:
    """Write one calendar's :class:`BusyChanges` into the cache, in one transaction."""
    state = {
        "window": [window[0].isoformat(), window[1].isoformat()],
        "cursor": dict(changes.state),
    }
    with write_transaction():
        if changes.full:
            BusyBlock.delete().where(BusyBlock.calendar == calendar).execute()
        elif not changes.unchanged:
            touched = [_source_key(s) for s in set(changes.busy) | set(changes.removed)]
            for i in range(0, len(touched), 500):
                BusyBlock.delete().where(
                    BusyBlock.calendar == calendar, BusyBlock.external_id.in_(touched[i : i + 500])
                ).execute()
        if not changes.unchanged:
            rows = [
                {
                    "calendar": calendar.id,
                    "start": to_db(span.start),
                    "end": to_db(span.end),
                    "external_id": _source_key(source),
                }
                for source, spans in changes.busy.items()
                for span in spans
            ]
            for i in range(0, len(rows), 500):
                BusyBlock.insert_many(rows[i : i + 500]).execute()
        # Blocks that ended before the window are no use to anyone.
        BusyBlock.delete().where(
            BusyBlock.calendar == calendar, BusyBlock.end < to_db(window[0])
        ).execute()
        Calendar.update(sync_state=json.dumps(state), last_synced_at=to_db(now)).where(
            Calendar.id == calendar.id
        ).execute()


def full_window(user: User, now: datetime) -> tuple[datetime, datetime]:
    """What a full read caches: a day back, and a week beyond the longest booking window."""
    return (
        now - timedelta(days=PAST_DAYS),
        now + timedelta(days=horizon_days(user) + SLACK_DAYS),
    )


def _window_and_cursor(
    calendar: Calendar, user: User, now: datetime
) -> tuple[tuple[datetime, datetime], dict]:
    """Reuse the cached window and cursor while it still covers what bookings need.

    Recurring events were expanded inside the cached window, so once bookings
    can reach past its end a full read (with a new window) is due.
    """
    needed_end = now + timedelta(days=horizon_days(user))
    try:
        state = json.loads(calendar.sync_state or "{}")
        start, end = (datetime.fromisoformat(v) for v in state["window"])
        if end >= needed_end and state.get("cursor"):
            return (start, end), dict(state["cursor"])
    except (KeyError, ValueError, TypeError):
        pass
    return full_window(user, now), {}


def sync_calendar(provider: CalendarProvider, calendar: Calendar, user: User, now: datetime) -> str:
    """Refresh one calendar's cache; returns "full", "incremental" or "unchanged"."""
    window, cursor = _window_and_cursor(calendar, user, now)
    ref = calendar_ref(calendar, user)
    try:
        changes = provider.sync_busy(ref, window[0], window[1], cursor)
    except SyncTokenExpired:
        window = full_window(user, now)
        changes = provider.sync_busy(ref, window[0], window[1], {})
    apply_changes(calendar, changes, window, now)
    return "unchanged" if changes.unchanged else "full" if changes.full else "incremental"


def backoff(failures: int, retry_after: float | None = None) -> timedelta:
    """1, 2, 4 … minutes up to an hour, or what the provider asked for."""
    delay = timedelta(minutes=2 ** max(0, failures - 1))
    if retry_after:
        delay = max(delay, timedelta(seconds=retry_after))
    return min(delay, MAX_BACKOFF)


def mark_needs_reconnect(conn: Connection, message: str) -> None:
    """Stop using the account until the host reconnects it; e-mail them once."""
    with write_transaction():
        changed = (
            Connection.update(status="needs_reconnect", last_error=message[:2000])
            .where(Connection.id == conn.id, Connection.status != "needs_reconnect")
            .execute()
        )
        if changed:
            Outbox.add(ACTION_REQUIRED, connection_id=conn.id)
    conn.status = "needs_reconnect"


def _record_failure(conn: Connection, exc: BaseException, now: datetime | None = None) -> str:
    now = now or clock.now()
    if isinstance(exc, CredentialsInvalid | crypto.SecretError):
        mark_needs_reconnect(conn, str(exc) or "the account refused our credentials")
        return "needs_reconnect"
    failures = conn.failures + 1
    retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
    Connection.update(
        status="error",
        last_error=(str(exc) or type(exc).__name__)[:2000],
        failures=failures,
        next_sync_at=to_db(now + backoff(failures, retry_after)),
    ).where(Connection.id == conn.id).execute()
    return "error"


def refresh_connection(connection_id: int, now: datetime | None = None) -> str:
    """Refresh the calendar list and the busy cache of one connection.

    Returns the new status. Never raises for provider trouble: the status,
    ``last_error`` and ``next_sync_at`` (backoff) record it, and the booking
    page keeps serving the cache meanwhile.
    """
    now = now or clock.now()
    conn = Connection.get_or_none(Connection.id == connection_id)
    if conn is None:
        return "gone"
    if conn.status == "needs_reconnect":
        return "needs_reconnect"  # stop retrying until the host reconnects
    user = User.get_by_id(conn.user_id)
    Connection.update(status="syncing").where(Connection.id == conn.id).execute()
    try:
        provider = adapter(conn)
    except crypto.SecretError as exc:
        return _record_failure(conn, exc, now)
    try:
        save_calendars(conn, provider.list_calendars())
        # Read to the end before writing: a SQLite statement still being stepped
        # holds a read snapshot, and a write begun under it fails "database is locked".
        calendars = list(
            Calendar.select().where(
                Calendar.connection == conn,
                Calendar.conflict == True,  # noqa: E712
            )
        )
        for calendar in calendars:
            sync_calendar(provider, calendar, user, now)
    except ProviderError as exc:
        log.info("refresh of connection %s failed: %s", conn.id, exc)
        return _record_failure(conn, exc, now)
    finally:
        provider.close()
    interval = int(current_app.config.get("REFRESH_INTERVAL_SECONDS", 300))
    Connection.update(
        status="ok",
        last_error="",
        failures=0,
        last_synced_at=to_db(now),
        next_sync_at=to_db(now + timedelta(seconds=interval)),
    ).where(Connection.id == conn.id).execute()
    return "ok"


def reconnect(conn: Connection, fields: dict[str, Any]) -> Connection:
    """New credentials for an existing account (same provider); calendars and choices stay."""
    cls = provider_class(conn.provider)
    if not provider_allowed(User.get_by_id(conn.user_id), conn.provider):
        raise InvalidSetup("provider", not_allowed_message(conn.provider))
    setup = cls.prepare(fields, provider_config(current_app.config))
    with host_lock(conn.user_id):
        owner = User.get_by_id(conn.user_id)
        refuse_duplicate(owner, conn.provider, setup.settings, setup.credentials, conn.id)
        conn.settings = json.dumps(dict(setup.settings))
        conn.label = setup.label[:255]
        crypto.seal(conn, "secret", dict(setup.credentials))
        conn.status = "syncing"
        conn.last_error = ""
        conn.failures = 0
        conn.next_sync_at = None
        conn.save()
    return conn


# ---------------------------------------------------------------- jobs


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


# ---------------------------------------------------------------- live check


@dataclass
class _Source:
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
    sources: list[_Source] = []
    for conn in Connection.select().where(Connection.user == user):
        calendars = list(
            Calendar.select().where(
                Calendar.connection == conn,
                Calendar.conflict == True,  # noqa: E712
            )
        )
        if calendars:
            sources.append(_Source(conn, calendars))
    if not sources:
        return []

    def ask(source: _Source) -> dict[str, list]:
        assert source.provider is not None
        refs = [calendar_ref(c, user) for c in source.calendars]
        return source.provider.busy(refs, start, end)

    results: dict[int, dict[str, list]] = {}
    pool = ThreadPoolExecutor(max_workers=min(8, len(sources)), thread_name_prefix="live-busy")
    futures = {}
    try:
        for source in sources:
            if source.conn.status == "needs_reconnect":
                continue
            try:
                source.provider = adapter(source.conn, timeout=timeout)
            except crypto.SecretError:
                continue
            futures[pool.submit(ask, source)] = source
        done, _ = wait_futures(futures, timeout=timeout + 0.5)
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
        pool.shutdown(wait=False, cancel_futures=True)
        for source in sources:
            if source.provider is not None and source.conn.id in results:
                source.provider.close()

    out: list[Busy] = []
    for source in sources:
        names = {c.external_id: c.name for c in source.calendars}
        live = results.get(source.conn.id)
        if live is not None:
            for ext, spans in live.items():
                out += [Busy(s.start, s.end, names.get(ext, "")) for s in spans]
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


# ---------------------------------------------------------------- write-back rows


def attach_calendar_event(booking: Any) -> CalendarEvent | None:
    """Record, with the booking, that its event is owed to the host's write calendar."""
    calendar = write_calendar(booking.host)
    if calendar is None:
        return None
    return CalendarEvent.create(booking=booking, calendar=calendar, status="pending")


def retry_write_back(booking: Any) -> bool:
    """The host's "retry" on a failed calendar event: reset it and record a new write-back."""
    from portal.runtime.outbox import relay_quietly

    with write_transaction():
        changed = (
            CalendarEvent.update(status="pending", attempts=0, last_error="")
            .where(CalendarEvent.booking == booking, CalendarEvent.status == "failed")
            .execute()
        )
        if changed:
            Outbox.add("write_back", booking_id=booking.id, event="retry")
    if changed:
        relay_quietly()
    return bool(changed)


def init_app(app: Flask) -> None:
    """Put the due-refresh scan on the worker's ticker (called by ``create_app``).

    Write-back's subscription to booking events is declared in
    ``portal.booking.service.BOOKING_EVENT_HANDLERS`` itself.
    """
    from portal.runtime import worker

    if not any(task is enqueue_due_refreshes for _, task in worker.PERIODIC):
        worker.PERIODIC.append((60, enqueue_due_refreshes))
