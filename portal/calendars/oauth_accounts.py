"""OAuth accounts: which host a grant signs in, and how a grant becomes a connection.

The browser flow that obtains the grant lives in ``portal.calendars.oauth_flows``;
everything that decides what the grant *means* lives here:

* **Sign-in.** An identity already linked to a host signs that host in; else
  an address the provider *verified* matches an existing host (and is linked
  for next time); else, when the admin allows self-signup, a host is created.
* **Connections.** A grant becomes a :class:`~portal.models.Connection` (or
  renews the one for the same account, which clears "needs reconnect"), its
  calendar list is read at once so the host can pick calendars, and a
  refresh is queued.
* **Refresh guard.** :func:`refresh_guard` is what ``portal.calendars.sync`` hands to
  OAuth adapters: a Redis lock per connection, yielding the credentials as
  stored now, so only one process at a time spends a (rotating) refresh token.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

from flask import current_app, has_app_context
from peewee import IntegrityError
from redis.exceptions import RedisError

from portal import crypto
from portal.calendars import refresh_queue, sync
from portal.calendars.providers import ProviderError, Transient
from portal.calendars.providers.oauth_grant import Account
from portal.models import Connection, OAuthIdentity, User, db, to_db, utcnow
from portal.org import settings as org_settings
from portal.org.member_defaults import member_defaults
from portal.org.users import create_user, suggest_slug

log = logging.getLogger(__name__)

REFRESH_LOCK_SECONDS = 60


class FlowError(Exception):
    """The flow cannot go on; ``str(exc)`` is a message for the host."""


# ---------------------------------------------------------------- sign-in


def user_for(provider: str, account: Account) -> User | None:
    """The host this account signs in, linking or creating one where the rules allow."""
    now = to_db(utcnow())
    identity = OAuthIdentity.get_or_none(
        OAuthIdentity.provider == provider, OAuthIdentity.subject == account.subject
    )
    if identity is not None:
        user = User.get_or_none(User.id == identity.user_id)
        if user is None or not user.is_active:
            return None
        OAuthIdentity.update(last_login_at=now, email=account.email).where(
            OAuthIdentity.id == identity.id
        ).execute()
        return user
    if not account.verified_email:
        return None  # an address the provider does not vouch for never opens an account
    user = User.by_email(account.verified_email)
    if user is None:
        if not org_settings.signup_allowed(account.verified_email):  # self-signup, allowed domains
            return None
        try:
            # No usable password: the host signs in with the provider (or resets one).
            user = create_user(
                account.verified_email,
                secrets.token_urlsafe(32),
                suggest_slug(account.verified_email),
                name=account.name,
                defaults=member_defaults(),
            )
        except (IntegrityError, ValueError):
            return None
    if not user.is_active:
        return None
    try:
        with db.atomic():
            OAuthIdentity.create(
                user=user,
                provider=provider,
                subject=account.subject,
                email=account.email,
                last_login_at=now,
            )
    except IntegrityError:
        pass  # linked by a concurrent sign-in
    return user


def connection_for(user: User, provider: str, subject: str) -> Connection | None:
    """The host's existing connection to this very account, if any."""
    for conn in Connection.select().where(Connection.user == user, Connection.provider == provider):
        if conn.settings_dict().get("subject") == subject:
            return conn
    return None


# ---------------------------------------------------------------- connections


def connect_grant(
    user: User,
    provider: str,
    token: Mapping[str, Any],
    account: Account,
    connection_id: int | None = None,
) -> Connection:
    """Store the grant as the host's connection to this account, then read its calendars.

    A reconnect (``connection_id``) or a second grant for the same account
    renews the existing row — calendars, choices and cached busy time stay —
    and puts it back into service. A provider that sends no new refresh
    token (Google on a repeated consent may not) keeps the stored one.
    """
    if not org_settings.provider_allowed(user, provider):  # the organisation's switches
        raise FlowError(org_settings.not_allowed_sentence(provider))
    conn = None
    if connection_id is not None:
        conn = Connection.get_or_none(
            Connection.id == connection_id,
            Connection.user == user,
            Connection.provider == provider,
        )
    if conn is None:
        conn = connection_for(user, provider, account.subject)
    credentials = {k: v for k, v in token.items() if k != "id_token"}
    settings = {"email": account.email, "subject": account.subject, "name": account.name}
    with db.atomic():
        if conn is None:
            conn = Connection.create(
                user=user,
                provider=provider,
                label=account.email[:255],
                settings=json.dumps(settings),
                status="syncing",
            )
        else:
            try:
                previous = sync.credentials(conn)
            except crypto.SecretError:
                previous = {}
            if not credentials.get("refresh_token") and previous.get("refresh_token"):
                credentials["refresh_token"] = previous["refresh_token"]
            conn.label = account.email[:255]
            conn.settings = json.dumps({**conn.settings_dict(), **settings})
            conn.status = "syncing"
            conn.last_error = ""
            conn.failures = 0
            conn.next_sync_at = None
        crypto.seal(conn, "secret", credentials)
        conn.save()
    try:
        sync.with_adapter(conn, lambda p: sync.save_calendars(conn, p.list_calendars()))
    except ProviderError as exc:
        log.info("listing calendars of new connection %s failed: %s", conn.id, exc)
        sync.record_failure(conn, exc)
        return conn
    refresh_queue.request_refresh(conn)
    return conn


# ---------------------------------------------------------------- refresh guard


def refresh_guard(connection_id: int) -> Callable[[], AbstractContextManager[dict | None]]:
    """The guard ``portal.calendars.sync.adapter`` gives an OAuth adapter for one connection.

    Entering takes a Redis lock for the connection (waiting at most a little
    longer than one token request may take) and yields the credentials stored
    at that moment. Without Redis the refresh goes ahead unlocked — the web
    process's live check must still work — which only matters if a worker
    refreshes the same account in that same second.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    wait = float(app.config.get("HTTP_TIMEOUT") or 10) + 5

    def stored_credentials() -> dict[str, Any] | None:
        conn = Connection.get_or_none(Connection.id == connection_id)
        return sync.credentials(conn) if conn is not None else None

    @contextmanager
    def guard() -> Iterator[dict[str, Any] | None]:
        from portal.runtime.queue import get_redis

        # Called from the caller's thread (a job, a request) or a live-check thread:
        # borrow what is open there, open (and close) only what is missing.
        with ExitStack() as stack:
            if not has_app_context():
                stack.enter_context(app.app_context())
            lock = None
            try:
                lock = get_redis().lock(
                    f"kairos:lock:oauth-refresh:{connection_id}", timeout=REFRESH_LOCK_SECONDS
                )
                if not lock.acquire(blocking=True, blocking_timeout=wait):
                    raise Transient("another token refresh for this account is still running")
            except RedisError as exc:
                log.warning("token refresh of connection %s without lock: %s", connection_id, exc)
                lock = None
            try:
                if db.is_closed():
                    with db.connection_context():
                        stored = stored_credentials()
                else:
                    stored = stored_credentials()
                yield stored
            finally:
                if lock is not None:
                    try:
                        lock.release()
                    except RedisError as exc:  # expired meanwhile: nothing left to release
                        log.warning("releasing the token lock failed: %s", exc)

    return guard
