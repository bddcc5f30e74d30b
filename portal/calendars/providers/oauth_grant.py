"""The OAuth 2.0 grant for Google and Microsoft: authorization-code flow with PKCE, refresh.

:class:`OAuthApp` describes one configured client (URLs from configuration
so tests point at local servers, client id/secret, minimal scopes);
:func:`authorization_url` and :func:`exchange_code` run the
authorization-code flow with PKCE (S256) through authlib's
``OAuth2Session``; :func:`refresh` renews a token. Token-endpoint failures
become contract errors: ``invalid_grant`` (revoked, expired, password
changed) is final → :class:`CredentialsInvalid`; 429 → :class:`RateLimited`;
5xx, timeouts → :class:`Transient`. Free of models and of the request.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from portal.calendars.providers.base import (
    CredentialsInvalid,
    ProviderError,
    RateLimited,
    Transient,
)

DEFAULT_TIMEOUT = 10.0

GOOGLE_SCOPE = "https://www.googleapis.com/auth/"
#: the calendar list, free/busy of every calendar the host can see, and events on
#: calendars the host owns — nothing broader; ``openid email`` name the account.
GOOGLE_SCOPES = (
    "openid",
    "email",
    GOOGLE_SCOPE + "calendar.calendarlist.readonly",
    GOOGLE_SCOPE + "calendar.events.freebusy",
    GOOGLE_SCOPE + "calendar.events.owned",
)
MICROSOFT_SCOPES = ("Calendars.ReadWrite", "offline_access", "User.Read")


@dataclass(frozen=True)
class OAuthApp:
    """One configured OAuth client of a provider."""

    provider: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    #: extra authorize parameters: Google needs ``access_type=offline`` for a refresh token
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


@dataclass(frozen=True)
class Account:
    """Who granted a token, as the provider names them.

    ``verified_email`` is set only when the provider vouches for the address
    (Google's ``email_verified``, Microsoft's sign-in name): only that one
    may sign a host in to an existing Kairos account.
    """

    subject: str  # stable id at the provider (OpenID ``sub`` / Graph user id)
    email: str  # mailbox address, shown as the connection's label
    name: str = ""
    verified_email: str = ""


def oauth_app(provider: str, config: Mapping[str, Any]) -> OAuthApp | None:
    """The client for ``provider`` ("google" or "microsoft"); None when not configured."""
    timeout = float(config.get("HTTP_TIMEOUT") or DEFAULT_TIMEOUT)
    if provider == "google":
        client_id, secret = config.get("GOOGLE_CLIENT_ID"), config.get("GOOGLE_CLIENT_SECRET")
        if not (client_id and secret):
            return None
        return OAuthApp(
            "google",
            str(client_id),
            str(secret),
            str(config.get("GOOGLE_AUTHORIZE_URL")),
            str(config.get("GOOGLE_TOKEN_URL")),
            GOOGLE_SCOPES,
            # offline: issue a refresh token; consent: issue it again on a reconnect
            {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "false"},
            timeout,
        )
    if provider == "microsoft":
        client_id, secret = config.get("MS_CLIENT_ID"), config.get("MS_CLIENT_SECRET")
        if not (client_id and secret):
            return None
        base = str(config.get("MS_LOGIN_BASE") or "").rstrip("/")
        tenant = str(config.get("MS_TENANT") or "common")
        return OAuthApp(
            "microsoft",
            str(client_id),
            str(secret),
            f"{base}/{tenant}/oauth2/v2.0/authorize",
            f"{base}/{tenant}/oauth2/v2.0/token",
            MICROSOFT_SCOPES,
            {"response_mode": "query", "prompt": "select_account"},
            timeout,
        )
    return None


def new_code_verifier() -> str:
    """A PKCE code verifier: 86 URL-safe characters (RFC 7636 allows 43–128)."""
    return secrets.token_urlsafe(64)


def _session(app: OAuthApp, redirect_uri: str | None = None) -> OAuth2Session:
    session = OAuth2Session(
        app.client_id,
        app.client_secret,
        scope=app.scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
    )
    for hook in ("access_token_response", "refresh_token_response"):
        session.register_compliance_hook(hook, _check_token_response)
    return session


def _check_token_response(response: requests.Response) -> requests.Response:
    """Throttling and server failures at the token endpoint are not a verdict on the grant."""
    if response.status_code == 429:
        raise RateLimited("the sign-in service asks us to slow down", retry_after(response))
    if response.status_code >= 500:
        raise Transient(f"the sign-in service failed (HTTP {response.status_code})")
    return response


def authorization_url(
    app: OAuthApp, redirect_uri: str, state: str, code_verifier: str, login_hint: str = ""
) -> str:
    """Where to send the browser: the provider's consent page, PKCE challenge included."""
    extra = dict(app.authorize_params)
    if login_hint:
        extra["login_hint"] = login_hint
    with _session(app, redirect_uri) as session:
        url, _ = session.create_authorization_url(
            app.authorize_url, state=state, code_verifier=code_verifier, **extra
        )
    return str(url)


def _token_call(app: OAuthApp, call: Callable[[OAuth2Session], Any]) -> dict[str, Any]:
    try:
        with _session(app) as session:
            token = call(session)
    except OAuthError as exc:
        description = exc.description or exc.error or "refused"
        if exc.error == "invalid_grant":
            raise CredentialsInvalid(f"the grant is no longer valid: {description}") from exc
        if exc.error in ("invalid_client", "unauthorized_client"):
            # Our client id/secret is wrong: an administrator must fix the configuration;
            # reconnecting the account would not help, so this is not CredentialsInvalid.
            raise ProviderError(f"the OAuth client was refused: {description}") from exc
        raise ProviderError(f"the token request was refused: {description}") from exc
    except requests.Timeout as exc:
        raise Transient(f"the sign-in service did not answer in {app.timeout:g} s") from exc
    except (requests.RequestException, ValueError) as exc:
        raise Transient(f"the sign-in service could not be reached: {exc}") from exc
    return normalize_token(dict(token))


def exchange_code(
    app: OAuthApp, redirect_uri: str, code: str, code_verifier: str
) -> dict[str, Any]:
    """Trade the authorization code for tokens (the verifier proves we started the flow)."""
    return _token_call(
        app,
        lambda s: s.fetch_token(
            app.token_url,
            grant_type="authorization_code",
            code=code,
            code_verifier=code_verifier,
            redirect_uri=redirect_uri,
            timeout=app.timeout,
        ),
    )


def refresh(app: OAuthApp, refresh_token: str) -> dict[str, Any]:
    """A new access token (and, for Microsoft, a new refresh token that replaces the old)."""
    if not refresh_token:
        raise CredentialsInvalid("no refresh token is stored; reconnect the account")
    return _token_call(
        app,
        lambda s: s.refresh_token(app.token_url, refresh_token=refresh_token, timeout=app.timeout),
    )


def normalize_token(token: Mapping[str, Any]) -> dict[str, Any]:
    """The credential fields we keep; ``expires_at`` as epoch seconds.

    An ID token is passed through for :func:`id_token_claims` at connect
    time; the caller drops it before storing — it is no use for calling APIs.
    """
    out: dict[str, Any] = {
        "access_token": token.get("access_token", ""),
        "token_type": token.get("token_type", "Bearer"),
    }
    if token.get("refresh_token"):
        out["refresh_token"] = token["refresh_token"]
    if token.get("scope"):
        scope = token["scope"]
        out["scope"] = " ".join(scope) if isinstance(scope, list | tuple) else str(scope)
    if token.get("id_token"):
        out["id_token"] = token["id_token"]
    if token.get("expires_at"):
        out["expires_at"] = int(token["expires_at"])
    elif token.get("expires_in"):
        out["expires_at"] = int(time.time()) + int(token["expires_in"])
    return out


def id_token_claims(token: Mapping[str, Any], app: OAuthApp) -> dict[str, Any]:
    """The claims of the ID token received *directly from the token endpoint*.

    OpenID Connect Core §3.1.3.7 lets a client that got the ID token straight
    from the token endpoint over TLS rely on that channel instead of checking
    the signature; we still check audience and expiry. Returns {} when the
    response carried no usable ID token.
    """
    raw = str(token.get("id_token") or "")
    parts = raw.split(".")
    if len(parts) != 3:
        return {}
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(claims, dict):
        return {}
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if app.client_id not in audiences:
        return {}
    if int(claims.get("exp") or 0) < time.time() - 300:
        return {}
    return claims


def retry_after(response: requests.Response) -> float | None:
    """``Retry-After`` as seconds (it may be a number or an HTTP date)."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
