"""A local OAuth 2.0 authorization server, in a Google and a Microsoft flavour.

Mounted by the fake Google Calendar and fake Microsoft Graph servers (one
process each), or run alone: ``python -m tests.fakes.oauth_server --flavour
google --port 8123``. State lives in memory. What it does, as the real ones do:

* ``authorize`` checks the client, the redirect URI, PKCE (S256 only) and the
  scopes, then approves the current test user at once (or shows an Allow /
  Deny page when ``consent_page`` is switched on) and redirects back with
  ``code`` and ``state``.
* ``token`` exchanges a code (single use, 10 minutes, PKCE verified) and
  refreshes tokens. Google keeps the refresh token; Microsoft rotates it on
  every refresh and the old one stops working, so a client that forgets to
  store the new one fails on its next refresh.
* errors are worded as each provider words them (``invalid_grant`` with
  "Token has been expired or revoked." for Google, ``AADSTS…`` codes for
  Microsoft).

The ``/_admin/…`` endpoints (see :mod:`tests.fakes.common`) revoke grants,
expire access tokens, switch the signed-in test user and inject faults.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Flask, Response, jsonify, request

from tests.fakes.common import Faults, serve_cli

GOOGLE_SCOPE_PREFIX = "https://www.googleapis.com/auth/"
MS_PERSONAL_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


@dataclass
class TestUser:
    email: str
    name: str
    subject: str = field(default_factory=lambda: uuid.uuid4().hex)
    tenant: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Microsoft: the mailbox address (``mail``) may differ from the sign-in name (UPN).
    mail: str = ""
    email_verified: bool = True


@dataclass
class Grant:
    id: str
    email: str
    scopes: frozenset[str]
    offline: bool
    revoked: bool = False


@dataclass
class AccessToken:
    grant_id: str
    expires_at: float
    scopes: frozenset[str]


class OAuthState:
    """Clients, users, codes and tokens of one fake authorization server."""

    CODE_TTL = 600

    def __init__(self, flavour: str, client_id: str, client_secret: str) -> None:
        if flavour not in ("google", "microsoft"):
            raise ValueError(flavour)
        self.flavour = flavour
        self.client_id = client_id
        self.client_secret = client_secret
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.users: dict[str, TestUser] = {}
            self.current = self.add_user("test.user@example.com", "Test User").email
            self.codes: dict[str, dict[str, Any]] = {}
            self.grants: dict[str, Grant] = {}
            self.access: dict[str, AccessToken] = {}
            self.refresh: dict[str, str] = {}  # refresh token → grant id
            self.access_ttl = 3600
            self.consent_page = False
            self.deny = False
            self.stats: dict[str, int] = {"authorization_code": 0, "refresh_token": 0}

    def add_user(self, email: str, name: str = "", **extra: Any) -> TestUser:
        """Add a test user, or update one (keeping its subject unless a new one is given)."""
        with self.lock:
            user = self.users.get(email.lower())
            if user is None:
                user = TestUser(email=email.lower(), name=name or email.split("@")[0], **extra)
                self.users[user.email] = user
            else:
                user.name = name or user.name
                for key, value in extra.items():
                    setattr(user, key, value)
            return user

    # -- tokens ----------------------------------------------------------

    def issue(self, grant: Grant, with_refresh: bool) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        self.access[access] = AccessToken(grant.id, time.time() + self.access_ttl, grant.scopes)
        out: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_ttl - 1,
            "scope": " ".join(sorted(grant.scopes)),
        }
        if with_refresh and grant.offline:
            refresh = ("1//" if self.flavour == "google" else "M.R3_") + secrets.token_urlsafe(32)
            self.refresh[refresh] = grant.id
            out["refresh_token"] = refresh
        return out

    def check_access(self, header: str) -> tuple[TestUser, frozenset[str]] | None:
        """The user and scopes behind ``Authorization: Bearer …``, or None."""
        if not header.startswith("Bearer "):
            return None
        with self.lock:
            token = self.access.get(header[len("Bearer ") :].strip())
            if token is None or token.expires_at < time.time():
                return None
            grant = self.grants.get(token.grant_id)
            if grant is None or grant.revoked:
                return None
            return self.users[grant.email], token.scopes

    def revoke(self, email: str) -> int:
        with self.lock:
            hit = [g for g in self.grants.values() if g.email == email.lower()]
            for g in hit:
                g.revoked = True
            return len(hit)

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self.access.values():
                token.expires_at = 0

    def id_token(self, user: TestUser, nonce: str | None) -> str:
        """An OpenID Connect ID token (HS256 with the client secret, like a confidential client)."""
        now = int(time.time())
        if self.flavour == "google":
            claims = {
                "iss": "https://accounts.google.com",
                "sub": user.subject,
                "email": user.email,
                "email_verified": user.email_verified,
                "name": user.name,
            }
        else:
            claims = {
                "iss": f"https://login.microsoftonline.com/{user.tenant}/v2.0",
                "sub": user.subject,
                "oid": user.subject,
                "tid": user.tenant,
                "preferred_username": user.email,
                "email": user.mail or user.email,
                "name": user.name,
            }
        claims |= {"aud": self.client_id, "iat": now, "exp": now + 3600}
        if nonce:
            claims["nonce"] = nonce

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64(json.dumps(claims).encode())
        sig = hmac.new(self.client_secret.encode(), f"{head}.{body}".encode(), "sha256").digest()
        return f"{head}.{body}.{b64(sig)}"

    # -- provider wording -------------------------------------------------

    def error(self, error: str, status: int = 400, kind: str = "") -> Response:
        if self.flavour == "google":
            texts = {
                "revoked": "Token has been expired or revoked.",
                "bad_code": "Malformed auth code.",
                "pkce": "Missing code verifier.",
                "client": "The OAuth client was not found.",
                "redirect": "Bad Request",
            }
            return _json(
                {"error": error, "error_description": texts.get(kind, "Bad Request")}, status
            )
        codes = {
            "revoked": (
                50173,
                "AADSTS50173: The provided grant has expired due to it being revoked, a fresh "
                "auth token is needed. The user might have changed or reset their password.",
            ),
            "bad_token": (
                70000,
                "AADSTS70000: The provided value for the 'refresh_token' is not valid.",
            ),
            "bad_code": (
                70000,
                "AADSTS70000: The provided value for the 'code' parameter is not valid.",
            ),
            "pkce": (501481, "AADSTS501481: The Code_Verifier does not match the code_challenge."),
            "client": (7000215, "AADSTS7000215: Invalid client secret provided."),
            "redirect": (
                50011,
                "AADSTS50011: The redirect URI specified in the request does not match.",
            ),
        }
        code, text = codes.get(kind, (90014, "AADSTS90014: A required field is missing."))
        trace = str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return _json(
            {
                "error": error,
                "error_description": f"{text}\r\nTrace ID: {trace}\r\nTimestamp: {stamp}",
                "error_codes": [code],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": str(uuid.uuid4()),
                **({"suberror": "bad_token"} if kind in ("revoked", "bad_token") else {}),
            },
            status,
        )


def _json(data: Any, status: int = 200) -> Response:
    response = jsonify(data)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _client_ok(state: OAuthState) -> bool:
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        cid, secret = auth.username, auth.password
    else:
        cid, secret = request.form.get("client_id"), request.form.get("client_secret")
    return cid == state.client_id and secret == state.client_secret


REQUIRED_SCOPES = {
    "google": {
        GOOGLE_SCOPE_PREFIX + "calendar.calendarlist.readonly",
        GOOGLE_SCOPE_PREFIX + "calendar.events.freebusy",
    },
    "microsoft": {"Calendars.ReadWrite", "User.Read"},
}


def oauth_blueprint(state: OAuthState) -> Blueprint:
    """Authorization and token endpoints at the flavour's real paths."""
    bp = Blueprint(f"oauth_{state.flavour}", __name__)

    if state.flavour == "google":
        authorize_path, token_path = "/o/oauth2/v2/auth", "/token"
    else:
        authorize_path = "/<tenant>/oauth2/v2.0/authorize"
        token_path = "/<tenant>/oauth2/v2.0/token"

    @bp.route(authorize_path, methods=["GET", "POST"])
    def authorize(tenant: str = "") -> Any:
        args = request.values
        redirect_uri = args.get("redirect_uri", "")
        if args.get("client_id") != state.client_id:
            return Response("OAuth client not found (invalid_client)", 401)
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return Response("redirect_uri_mismatch", 400)
        if args.get("response_type") != "code":
            return Response("unsupported_response_type", 400)
        scopes = frozenset((args.get("scope") or "").split())
        missing = REQUIRED_SCOPES[state.flavour] - scopes
        problem = ""
        if missing:
            problem = "invalid_scope"
        elif args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            problem = "invalid_request"  # this fake insists on PKCE, as a public client must
        back: dict[str, str] = {"state": args.get("state", "")}
        if problem:
            back["error"] = problem
            return _redirect(redirect_uri, back)
        if state.consent_page and request.method == "GET":
            return _consent_page(state, args)
        if state.deny or request.form.get("decision") == "deny":
            back["error"] = "access_denied"
            return _redirect(redirect_uri, back)
        with state.lock:
            user = state.users[state.current]
            offline = (
                args.get("access_type") == "offline"
                if state.flavour == "google"
                else "offline_access" in scopes
            )
            code = secrets.token_urlsafe(24)
            state.codes[code] = {
                "email": user.email,
                "redirect_uri": redirect_uri,
                "challenge": args.get("code_challenge"),
                "scopes": scopes,
                "offline": offline,
                "nonce": args.get("nonce"),
                "expires": time.time() + state.CODE_TTL,
            }
        back["code"] = code
        if state.flavour == "google":
            back["scope"] = " ".join(sorted(scopes))
        else:
            back["session_state"] = str(uuid.uuid4())
        return _redirect(redirect_uri, back)

    @bp.route(token_path, methods=["POST"])
    def token(tenant: str = "") -> Any:
        if not _client_ok(state):
            return state.error("invalid_client", 401, "client")
        grant_type = request.form.get("grant_type")
        with state.lock:
            if grant_type == "authorization_code":
                state.stats["authorization_code"] += 1
                pending = state.codes.pop(request.form.get("code", ""), None)
                if pending is None or pending["expires"] < time.time():
                    return state.error("invalid_grant", 400, "bad_code")
                if pending["redirect_uri"] != request.form.get("redirect_uri"):
                    return state.error("invalid_grant", 400, "redirect")
                verifier = request.form.get("code_verifier", "")
                if not verifier or _s256(verifier) != pending["challenge"]:
                    return state.error("invalid_grant", 400, "pkce")
                grant = Grant(
                    id=uuid.uuid4().hex,
                    email=pending["email"],
                    scopes=frozenset(pending["scopes"]),
                    offline=pending["offline"],
                )
                state.grants[grant.id] = grant
                out = state.issue(grant, with_refresh=True)
                if "openid" in grant.scopes:
                    out["id_token"] = state.id_token(state.users[grant.email], pending["nonce"])
                return _json(out)
            if grant_type == "refresh_token":
                state.stats["refresh_token"] += 1
                refresh = request.form.get("refresh_token", "")
                grant_id = state.refresh.get(refresh)
                grant = state.grants.get(grant_id or "")
                if grant is None:
                    return state.error("invalid_grant", 400, "bad_token")
                if grant.revoked:
                    return state.error("invalid_grant", 400, "revoked")
                rotate = state.flavour == "microsoft"
                if rotate:
                    del state.refresh[refresh]  # the old one is spent
                out = state.issue(grant, with_refresh=rotate)
                return _json(out)
        return state.error("unsupported_grant_type", 400)

    @bp.route("/_admin/oauth/user", methods=["POST"])
    def admin_user() -> Any:
        data = request.get_json(force=True)
        extra = {k: data[k] for k in ("subject", "tenant", "mail", "email_verified") if k in data}
        user = state.add_user(data["email"], data.get("name", ""), **extra)
        if data.get("current", True):
            state.current = user.email
        return _json({"email": user.email, "subject": user.subject, "tenant": user.tenant})

    @bp.route("/_admin/oauth/revoke", methods=["POST"])
    def admin_revoke() -> Any:
        return _json({"revoked": state.revoke(request.get_json(force=True)["email"])})

    @bp.route("/_admin/oauth/expire", methods=["POST"])
    def admin_expire() -> Any:
        state.expire_access_tokens()
        return _json({"ok": True})

    @bp.route("/_admin/oauth/settings", methods=["POST"])
    def admin_settings() -> Any:
        data = request.get_json(force=True)
        with state.lock:
            for key in ("consent_page", "deny", "access_ttl"):
                if key in data:
                    setattr(state, key, data[key])
        return _json({"ok": True})

    @bp.route("/_admin/oauth/stats")
    def admin_stats() -> Any:
        with state.lock:
            return _json(
                {
                    **state.stats,
                    "grants": len(state.grants),
                    "live_refresh_tokens": len(state.refresh),
                }
            )

    return bp


def _redirect(uri: str, params: dict[str, str]) -> Response:
    joiner = "&" if "?" in uri else "?"
    return Response(status=302, headers={"Location": uri + joiner + urlencode(params)})


def _consent_page(state: OAuthState, args: Any) -> Response:
    """A one-button consent page, for browser tests that want to see the hop."""
    from html import escape

    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
        for k, v in args.items(multi=True)
    )
    who = escape(state.current)
    brand = "Google" if state.flavour == "google" else "Microsoft"
    body = (
        f"<!doctype html><title>Sign in – {brand} (test)</title>"
        f"<h1>{brand} test sign-in</h1><p>Signed in as <b>{who}</b>. "
        f"Kairos wants to see your free/busy times and add events to your calendars.</p>"
        f'<form method="post">{hidden}'
        '<button name="decision" value="allow">Allow</button> '
        '<button name="decision" value="deny">Deny</button></form>'
    )
    return Response(body, 200, {"Content-Type": "text/html; charset=utf-8"})


def create_app(flavour: str, client_id: str, client_secret: str) -> Flask:
    app = Flask(__name__)
    state = OAuthState(flavour, client_id, client_secret)
    faults = Faults(flavour)
    faults.install(app)
    app.register_blueprint(oauth_blueprint(state))
    app.config["FAKE_OAUTH"] = state
    return app


if __name__ == "__main__":
    serve_cli(lambda args: create_app(args.flavour, args.client_id, args.client_secret))
