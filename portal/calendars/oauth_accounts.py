"""OAuth accounts: browser flows, signing hosts in, and turning grants into connections.

The views (``portal/web/oauth.py``) parse and redirect; everything with a
rule in it lives here:

* **Flows.** A flow row (:class:`~portal.models.OAuthFlow`) is the server half
  of ``state``: the browser carries only a signed, 10-minute token naming a
  random nonce. The row is deleted on first use, must belong to the browser
  session that started it, and holds the PKCE verifier and the allow-listed
  page to land on — so a forged, replayed, stale or foreign ``state`` gets
  nowhere, and ``state`` cannot redirect anyone off-site.
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

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import timedelta
from typing import Any

from flask import current_app, has_app_context, session, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from peewee import IntegrityError
from redis.exceptions import RedisError

from portal import crypto
from portal.booking.service import external_url
from portal.calendars import sync
from portal.calendars.providers import ProviderError, Transient, provider_class, provider_config
from portal.calendars.providers.oauth_grant import (
    Account,
    authorization_url,
    exchange_code,
    new_code_verifier,
    oauth_app,
)
from portal.models import (
    AppSetting,
    Connection,
    OAuthFlow,
    OAuthIdentity,
    User,
    db,
    from_db,
    to_db,
    utcnow,
)
from portal.org import admin

log = logging.getLogger(__name__)

PROVIDERS = ("google", "microsoft")
FLOW_TTL = timedelta(minutes=10)
SESSION_KEY = "oauth_binding"
STATE_SALT = "kairos.oauth.state"
REFRESH_LOCK_SECONDS = 60


class FlowError(Exception):
    """The flow cannot go on; ``str(exc)`` is a message for the host."""


# ---------------------------------------------------------------- which providers


def is_enabled(provider: str) -> bool:
    """Offered at all: client id and secret configured, and the admin has not switched it off."""
    if provider not in PROVIDERS:
        return False
    if oauth_app(provider, provider_config(current_app.config)) is None:
        return False
    return bool(AppSetting.read(f"provider_enabled:{provider}", True))


def enabled_providers() -> list[str]:
    return [p for p in PROVIDERS if is_enabled(p)]


def title(provider: str) -> str:
    return provider_class(provider).title


def self_signup_allowed(email: str = "") -> bool:
    """The admin's self-signup switch, limited to the allowed e-mail domains."""
    return admin.signup_allowed(email)


# ---------------------------------------------------------------- flows


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt=STATE_SALT)


def _session_hash(create: bool = True) -> str:
    """Hash of a random value kept in this browser's session (created on first use)."""
    value = session.get(SESSION_KEY)
    if not value and create:
        value = session[SESSION_KEY] = secrets.token_urlsafe(24)
    return hashlib.sha256(str(value or "").encode()).hexdigest()


def redirect_uri(provider: str) -> str:
    """Our callback, absolute; ``BASE_URL`` when configured so a forged Host header is moot."""
    return external_url(url_for("oauth.callback", provider=provider))


def purge_expired() -> None:
    OAuthFlow.delete().where(OAuthFlow.expires_at < to_db(utcnow())).execute()


def start(
    provider: str,
    purpose: str,
    user: User | None = None,
    next_path: str = "",
    connection: Connection | None = None,
) -> str:
    """Record a new flow and return the provider URL to send the browser to."""
    app = oauth_app(provider, provider_config(current_app.config))
    if app is None or not is_enabled(provider):
        raise FlowError(f"{provider} sign-in is not available")
    if purpose == "connect" and (user is None or not admin.provider_allowed(user, provider)):
        raise FlowError(admin.not_allowed_sentence(provider))
    purge_expired()
    nonce = secrets.token_urlsafe(32)
    verifier = new_code_verifier()
    callback = redirect_uri(provider)
    OAuthFlow.create(
        nonce=nonce,
        provider=provider,
        purpose=purpose,
        user=user,
        session_hash=_session_hash(),
        code_verifier=verifier,
        redirect_uri=callback,
        next_path=next_path,
        connection_id=connection.id if connection is not None else None,
        expires_at=to_db(utcnow() + FLOW_TTL),
    )
    hint = connection.label if connection is not None and "@" in connection.label else ""
    return authorization_url(app, callback, _serializer().dumps(nonce), verifier, hint)


def take(provider: str, state: str) -> OAuthFlow:
    """The flow ``state`` names, removed so it cannot be used again; FlowError otherwise."""
    stale = FlowError("This sign-in has expired or was already used. Please start again.")
    try:
        nonce = _serializer().loads(state, max_age=int(FLOW_TTL.total_seconds()))
    except BadSignature:  # includes SignatureExpired
        raise stale from None
    flow = OAuthFlow.get_or_none(OAuthFlow.nonce == str(nonce))
    if flow is None:
        raise stale
    # Single use even under a race: only the request that deletes the row goes on.
    if not OAuthFlow.delete().where(OAuthFlow.id == flow.id).execute():
        raise stale
    if flow.provider != provider or flow.purpose not in ("connect", "login"):
        raise stale
    if not secrets.compare_digest(flow.session_hash, _session_hash(create=False)):
        # Started in another browser (or a planted link): never bind someone else's grant.
        raise FlowError("This sign-in was started in another browser. Please start again.")
    if from_db(flow.expires_at) < utcnow():  # type: ignore[operator]
        raise stale
    return flow


def finish(flow: OAuthFlow, code: str) -> tuple[dict[str, Any], Account]:
    """Exchange the code (with the flow's PKCE verifier) and learn whose account it is."""
    config = provider_config(current_app.config)
    app = oauth_app(flow.provider, config)
    if app is None:
        raise FlowError(f"{title(flow.provider)} is not configured any more")
    try:
        token = exchange_code(app, flow.redirect_uri, code, flow.code_verifier)
        account = provider_class(flow.provider).account(token, config)  # type: ignore[attr-defined]
    except ProviderError as exc:
        log.info("%s code exchange failed: %s", flow.provider, exc)
        raise FlowError(f"{title(flow.provider)} did not complete the sign-in: {exc}") from exc
    if not token.get("refresh_token"):
        log.info("%s granted no refresh token for %s", flow.provider, account.email)
    return token, account


# ---------------------------------------------------------------- sign-in


def _slug_for(email: str) -> str:
    from portal.models import validate_slug

    base = re.sub(r"[^a-z0-9-]+", "-", email.split("@")[0].lower()).strip("-")[:30] or "host"
    for n in range(100):
        slug = base if n == 0 else f"{base}-{n + 1}"
        if validate_slug(slug) is None and User.get_or_none(User.slug == slug) is None:
            return slug
    return f"host-{secrets.token_hex(4)}"


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
        if not self_signup_allowed(account.verified_email):
            return None
        from portal.cli import create_user

        try:
            # No usable password: the host signs in with the provider (or resets one).
            user = create_user(
                account.verified_email,
                secrets.token_urlsafe(32),
                _slug_for(account.verified_email),
                name=account.name,
                defaults=admin.member_defaults(),
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


def offer(user: User, provider: str, token: Mapping[str, Any], account: Account) -> str:
    """Keep a sign-in's grant (sealed, 10 minutes) while the host decides; returns its nonce."""
    nonce = secrets.token_urlsafe(32)
    with db.atomic():
        flow = OAuthFlow.create(
            nonce=nonce,
            provider=provider,
            purpose="offer",
            user=user,
            session_hash=_session_hash(),
            label=account.email[:255],
            expires_at=to_db(utcnow() + FLOW_TTL),
        )
        crypto.seal(flow, "secret", {"token": dict(token), "account": account.__dict__})
        flow.save()
    return nonce


def pending_offer(user: User, provider: str, nonce: str) -> OAuthFlow | None:
    """The unexpired offer ``nonce`` of this host, in this browser."""
    flow = OAuthFlow.get_or_none(
        OAuthFlow.nonce == nonce,
        OAuthFlow.purpose == "offer",
        OAuthFlow.provider == provider,
        OAuthFlow.user == user,
    )
    if flow is None or from_db(flow.expires_at) < utcnow():  # type: ignore[operator]
        return None
    if not secrets.compare_digest(flow.session_hash, _session_hash(create=False)):
        return None
    return flow


def accept_offer(flow: OAuthFlow) -> Connection:
    data = crypto.unseal(flow, "secret") or {}
    OAuthFlow.delete().where(OAuthFlow.id == flow.id).execute()
    user = User.get_by_id(flow.user_id)
    return connect_grant(user, flow.provider, data["token"], Account(**data["account"]))


def decline_offer(flow: OAuthFlow) -> None:
    OAuthFlow.delete().where(OAuthFlow.id == flow.id).execute()


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
    if not admin.provider_allowed(user, provider):  # the organisation's switches
        raise FlowError(admin.not_allowed_sentence(provider))
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
        sync._record_failure(conn, exc)
        return conn
    sync.request_refresh(conn)
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
