"""Calendar connections: the one place that joins connection rows with provider adapters.

Adapters (``portal.calendars.providers``) know nothing of the database; views know
nothing of adapters. This module holds an account's life cycle and its refresh:

* :func:`connect` / :func:`reconnect` / :func:`disconnect` /
  :func:`set_calendar_flags` — with the credentials sealed to their row
  (``portal.crypto``);
* :func:`refresh_connection` — the calendar list and the free/busy cache, and
  the status machine ``ok | syncing | needs_reconnect | error`` (an
  authentication failure stops retrying and records a ``host_action_required``
  outbox row so the host is e-mailed once).

Beside it: ``busy_cache`` (one calendar's cached window, cursor and blocks),
``live_check`` (the confirm-time re-check), ``refresh_queue`` (deduplicated
refresh jobs) and ``write_back`` (which calendar owes a booking's event).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from portal import clock, crypto
from portal.calendars.busy_cache import stored_cursor, sync_calendar
from portal.calendars.providers import (
    CalendarProvider,
    CredentialsInvalid,
    InvalidSetup,
    ProviderError,
    RateLimited,
    RemoteCalendar,
    get_provider,
    provider_class,
    provider_config,
)
from portal.calendars.write_back import write_calendar
from portal.database import host_lock, write_transaction
from portal.models import BusyBlock, Calendar, Connection, Outbox, User, db, to_db
from portal.org import settings as org_settings

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)
ACTION_REQUIRED = "host_action_required"  # outbox kind; its handler e-mails the host


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


# ---------------------------------------------------------------- life cycle


def connect(user: User, provider: str, fields: dict[str, Any]) -> Connection:
    """Check the account with the provider, store it (secret sealed) and list its calendars.

    The provider is asked first, outside any transaction; then the row and
    its calendars are written in one transaction, so a connection exists
    with its calendars or not at all (never a row stuck at "syncing"). A feed
    is only glanced at (its start) and lists its one calendar at once; its
    download and parse are the first refresh job's (the caller enqueues it). An
    account the host has already connected is refused. Raises
    :class:`InvalidSetup` naming the field at fault.
    """
    try:
        cls = provider_class(provider)
    except KeyError:
        raise InvalidSetup("provider", "unknown calendar provider") from None
    if not org_settings.provider_allowed(user, provider):  # the organisation's switches
        raise InvalidSetup("provider", org_settings.not_allowed_message(provider))
    if cls.oauth:
        raise InvalidSetup("provider", f"{cls.title} is connected in the browser")
    # Refused before the server is asked when the form already names the account.
    refuse_duplicate(user, provider, fields, fields)
    config = provider_config(current_app.config)
    setup = cls.prepare(fields, config)
    remote: list[RemoteCalendar] = list(setup.calendars or ())
    failure: ProviderError | None = None
    if setup.calendars is None:  # else known already: the refresh job reads the rest
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
            record_failure(conn, failure)
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


def reconnect(conn: Connection, fields: dict[str, Any]) -> Connection:
    """New credentials for an existing account (same provider); calendars and choices stay."""
    cls = provider_class(conn.provider)
    if not org_settings.provider_allowed(User.get_by_id(conn.user_id), conn.provider):
        raise InvalidSetup("provider", org_settings.not_allowed_message(conn.provider))
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


# ---------------------------------------------------------------- refresh


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


def record_failure(conn: Connection, exc: BaseException, now: datetime | None = None) -> str:
    """Record a failed read: reconnect for refused credentials, else an error with backoff."""
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
        return record_failure(conn, exc, now)
    try:
        known = Calendar.select().where(Calendar.connection == conn)
        provider.use_cursors({c.external_id: stored_cursor(c) for c in known})
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
        return record_failure(conn, exc, now)
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
