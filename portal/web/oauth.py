"""OAuth in the browser: connect a Google / Microsoft calendar, sign in with one.

Starting a flow changes nothing of the host's data (it records a
single-use flow row), so both a CSRF-checked POST (the buttons) and a plain
GET (a bookmarked link) start one. The rules — state, PKCE, which host an
account signs in, how a grant becomes a connection — live in
``portal.calendars.oauth_accounts``; these views only parse, call and redirect.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from portal.calendars import oauth_accounts as accounts
from portal.models import Connection, User
from portal.org.settings import provider_allowed
from portal.web.auth import _sign_in, safe_next
from portal.web.render import render

bp = Blueprint("oauth", __name__)


def _enabled_or_404(provider: str) -> None:
    if not accounts.is_enabled(provider):
        abort(404)


def _settings_next(target: str | None) -> str:
    """The allow-list for where a connect flow lands: pages under /settings only."""
    path = safe_next(target)
    if path and (path == "/settings" or path.startswith("/settings/")):
        return path
    return ""


def _connections_page() -> str:
    if "connections.index" in current_app.view_functions:
        return url_for("connections.index")
    return url_for("settings.index")


@bp.app_context_processor
def _oauth_links():
    def oauth_providers() -> list[tuple[str, str]]:
        """``(name, title)`` of the OAuth providers this installation offers."""
        return [(p, accounts.title(p)) for p in accounts.enabled_providers()]

    def oauth_reconnect_url(conn: Connection) -> str:
        return url_for("oauth.connect", provider=conn.provider, connection=conn.id)

    return {"oauth_providers": oauth_providers, "oauth_reconnect_url": oauth_reconnect_url}


@bp.route("/settings/connections/<provider>/connect", methods=["GET", "POST"])
@login_required
def connect(provider: str) -> Response:
    """Send the host to the provider's consent page (``connection=<id>`` reconnects that one)."""
    _enabled_or_404(provider)
    if not provider_allowed(current_user, provider):  # the organisation's switches
        abort(404)
    conn = None
    if request.values.get("connection"):
        conn = Connection.get_or_none(
            Connection.id == request.values.get("connection", type=int) or 0,
            Connection.user == current_user.id,
            Connection.provider == provider,
        )
        if conn is None:
            abort(404)
    url = accounts.start(
        provider,
        "connect",
        user=current_user._get_current_object(),
        next_path=_settings_next(request.values.get("next")),
        connection=conn,
    )
    return redirect(url, 303)


@bp.route("/login/<provider>", methods=["GET", "POST"])
def login(provider: str) -> Response:
    """ "Sign in with Google / Microsoft": the same consent also offers the calendar."""
    _enabled_or_404(provider)
    if User.select().count() == 0:
        return redirect(url_for("auth.setup"))
    url = accounts.start(provider, "login", next_path=safe_next(request.values.get("next")) or "")
    return redirect(url, 303)


@bp.get("/oauth/<provider>/callback")
def callback(provider: str) -> Response:
    """Where the provider sends the browser back, with ``code`` and ``state`` (or ``error``)."""
    if provider not in accounts.PROVIDERS:
        abort(404)
    fallback = url_for("settings.index") if current_user.is_authenticated else url_for("auth.login")
    try:
        flow = accounts.take(provider, request.args.get("state", ""))
    except accounts.FlowError as exc:
        flash(str(exc), "error")
        return redirect(fallback)
    name = accounts.title(provider)
    if request.args.get("error"):
        cancelled = request.args.get("error") == "access_denied"
        flash(
            f"{name}: {'you cancelled the request' if cancelled else 'the request was refused'}.",
            "info" if cancelled else "error",
        )
        return redirect(_connections_page() if flow.purpose == "connect" else fallback)
    if flow.purpose == "connect" and (
        not current_user.is_authenticated or current_user.id != flow.user_id
    ):
        flash("You were signed out meanwhile; sign in and connect again.", "error")
        return redirect(url_for("auth.login"))
    try:
        token, account = accounts.finish(flow, request.args.get("code", ""))
    except accounts.FlowError as exc:
        flash(str(exc), "error")
        return redirect(_connections_page() if flow.purpose == "connect" else fallback)

    if flow.purpose == "connect":
        try:
            conn = accounts.connect_grant(
                current_user._get_current_object(), provider, token, account, flow.connection_id
            )
        except accounts.FlowError as exc:  # switched off by the admin meanwhile
            flash(str(exc), "error")
            return redirect(_connections_page())
        if conn.status == "needs_reconnect":
            flash(f"{name} ({account.email}) refused access: {conn.last_error}", "error")
        else:
            flash(f"Connected {name} ({account.email}). Choose which calendars to use.", "success")
        return redirect(flow.next_path or _connections_page())

    user = accounts.user_for(provider, account)
    if user is None:
        flash(
            f"No Kairos account belongs to {account.email}. Sign in with your password, "
            "or ask your administrator for an invitation.",
            "error",
        )
        return redirect(url_for("auth.login"))
    _sign_in(user)
    target = flow.next_path or url_for("settings.index")
    if not provider_allowed(user, provider):
        return redirect(target)  # signing in is fine; the organisation keeps this calendar out
    existing = accounts.connection_for(user, provider, account.subject)
    if existing is not None:
        # Signing in renewed this account's grant: put its calendar back into service.
        accounts.connect_grant(user, provider, token, account, existing.id)
        return redirect(target)
    nonce = accounts.offer(user, provider, token, account)
    return redirect(url_for("oauth.offer", provider=provider, nonce=nonce, next=target))


@bp.route("/oauth/<provider>/offer/<nonce>", methods=["GET", "POST"])
@login_required
def offer(provider: str, nonce: str) -> Response | str:
    """After "Sign in with …": use that account's calendar too? (one click, no second consent)."""
    flow = accounts.pending_offer(current_user._get_current_object(), provider, nonce)
    target = safe_next(request.values.get("next")) or url_for("settings.index")
    if flow is None:
        if request.method == "POST":
            flash("That offer has expired; connect the calendar from the Calendars page.", "info")
        return redirect(target)
    if request.method == "POST":
        if request.form.get("decision") == "connect":
            try:
                conn = accounts.accept_offer(flow)
            except accounts.FlowError as exc:
                flash(str(exc), "error")
                return redirect(target)
            flash(f"Connected {accounts.title(provider)} ({conn.label}).", "success")
            return redirect(_connections_page())
        accounts.decline_offer(flow)
        return redirect(target)
    return render(
        "oauth/offer.html",
        provider=provider,
        provider_title=accounts.title(provider),
        account=flow.label,
        nonce=nonce,
        next=target,
    )
