"""The OAuth browser flow: state and PKCE, the callback's outcome, the calendar offered.

The views (``portal/web/oauth.py``) parse and redirect; the rules of the
flow live here:

* **State.** A flow row (:class:`~portal.models.OAuthFlow`) is the server half
  of ``state``: the browser carries only a signed, 10-minute token naming a
  random nonce. The row is deleted on first use, must belong to the browser
  session that started it, and holds the PKCE verifier and the allow-listed
  page to land on — so a forged, replayed, stale or foreign ``state`` gets
  nowhere, and ``state`` cannot redirect anyone off-site.
* **Callback.** :func:`complete` checks ``state``, trades the code and then
  connects the calendar or signs the host in (``portal.calendars.oauth_accounts``),
  answering with a :class:`Landing`: the page to go to and what to say there.
* **Offer.** After "Sign in with …" the same grant is kept, sealed, for ten
  minutes while the host decides whether to use that account's calendar too.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from flask import current_app, session, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal import crypto
from portal.calendars.oauth_accounts import FlowError, connect_grant, connection_for, user_for
from portal.calendars.providers import ProviderError, provider_class, provider_config
from portal.calendars.providers.oauth_grant import (
    Account,
    authorization_url,
    exchange_code,
    new_code_verifier,
    oauth_app,
)
from portal.models import AppSetting, Connection, OAuthFlow, User, db, from_db, to_db, utcnow
from portal.org import settings as org_settings
from portal.runtime.appconfig import external_url

log = logging.getLogger(__name__)

PROVIDERS = ("google", "microsoft")
FLOW_TTL = timedelta(minutes=10)
SESSION_KEY = "oauth_binding"
STATE_SALT = "kairos.oauth.state"


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
    if purpose == "connect" and (user is None or not org_settings.provider_allowed(user, provider)):
        raise FlowError(org_settings.not_allowed_sentence(provider))
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


# ---------------------------------------------------------------- the callback


@dataclass(frozen=True)
class Landing:
    """Where the callback sends the browser, and the notice shown there.

    ``page`` is "login", "settings", "connections" or "offer" (with ``nonce``);
    ``next_path``, the allow-listed path the flow started with, goes first.
    """

    page: str
    message: str = ""
    category: str = "info"
    next_path: str = ""
    nonce: str = ""


def complete(
    provider: str,
    params: Mapping[str, str],
    signed_in: User | None,
    sign_in: Callable[[User], None],
) -> Landing:
    """The callback's work: check ``state``, trade the code, then connect or sign in.

    ``signed_in`` is the host of this browser session, if any. ``sign_in``
    renews the session for a host signing in; it runs before the calendar is
    offered, because an offer is bound to the session it is made in.
    """
    start_page = "settings" if signed_in is not None else "login"
    try:
        flow = take(provider, params.get("state", ""))
    except FlowError as exc:
        return Landing(start_page, str(exc), "error")
    home = "connections" if flow.purpose == "connect" else start_page
    error = params.get("error", "")
    if error:
        if error == "access_denied":
            return Landing(home, f"{title(provider)}: you cancelled the request.", "info")
        return Landing(home, f"{title(provider)}: the request was refused.", "error")
    if flow.purpose == "connect":
        if signed_in is None or signed_in.id != flow.user_id:
            message = "You were signed out meanwhile; sign in and connect again."
            return Landing("login", message, "error")
        return _connect(flow, params.get("code", ""), signed_in)
    return _sign_in(flow, params.get("code", ""), home, sign_in)


def _connect(flow: OAuthFlow, code: str, host: User) -> Landing:
    """A "Connect …" flow: the grant becomes (or renews) the host's connection."""
    name = title(flow.provider)
    try:
        token, account = finish(flow, code)
        conn = connect_grant(host, flow.provider, token, account, flow.connection_id)
    except FlowError as exc:  # includes: switched off by the admin meanwhile
        return Landing("connections", str(exc), "error")
    if conn.status == "needs_reconnect":
        message = f"{name} ({account.email}) refused access: {conn.last_error}"
        return Landing("connections", message, "error", next_path=flow.next_path)
    message = f"Connected {name} ({account.email}). Choose which calendars to use."
    return Landing("connections", message, "success", next_path=flow.next_path)


def _sign_in(flow: OAuthFlow, code: str, home: str, sign_in: Callable[[User], None]) -> Landing:
    """A "Sign in with …" flow: sign the host in, then renew or offer the account's calendar."""
    try:
        token, account = finish(flow, code)
    except FlowError as exc:
        return Landing(home, str(exc), "error")
    user = user_for(flow.provider, account)
    if user is None:
        message = (
            f"No Kairos account belongs to {account.email}. Sign in with your password, "
            "or ask your administrator for an invitation."
        )
        return Landing("login", message, "error")
    sign_in(user)
    landing = Landing("settings", next_path=flow.next_path)
    if not org_settings.provider_allowed(user, flow.provider):
        return landing  # signing in is fine; the organisation keeps this calendar out
    existing = connection_for(user, flow.provider, account.subject)
    if existing is not None:
        # Signing in renewed this account's grant: put its calendar back into service.
        connect_grant(user, flow.provider, token, account, existing.id)
        return landing
    return replace(landing, page="offer", nonce=offer(user, flow.provider, token, account))


# ---------------------------------------------------------------- the offer


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
