"""OAuth in the browser: connect a Google / Microsoft calendar, sign in with one.

Starting a flow changes nothing of the host's data (it records a
single-use flow row), so both a CSRF-checked POST (the buttons) and a plain
GET (a bookmarked link) start one. The rules — state, PKCE, the callback's
outcome (``portal.calendars.oauth_flows``), which host an account signs in and
how a grant becomes a connection (``portal.calendars.oauth_accounts``) — live
in the calendars package; these views only parse, call and redirect.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from portal.calendars import oauth_flows as flows
from portal.calendars.oauth_accounts import FlowError
from portal.models import Connection, User
from portal.org.settings import provider_allowed
from portal.web.auth import _sign_in, safe_next
from portal.web.render import render

bp = Blueprint("oauth", __name__)


def _enabled_or_404(provider: str) -> None:
    if not flows.is_enabled(provider):
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
        return [(p, flows.title(p)) for p in flows.enabled_providers()]

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
    url = flows.start(
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
    url = flows.start(provider, "login", next_path=safe_next(request.values.get("next")) or "")
    return redirect(url, 303)


def _landing_url(provider: str, landing: flows.Landing) -> str:
    """The address of the page a callback's landing names."""
    if landing.page == "offer":
        target = landing.next_path or url_for("settings.index")
        return url_for("oauth.offer", provider=provider, nonce=landing.nonce, next=target)
    if landing.next_path:
        return landing.next_path
    if landing.page == "connections":
        return _connections_page()
    return url_for("auth.login" if landing.page == "login" else "settings.index")


@bp.get("/oauth/<provider>/callback")
def callback(provider: str) -> Response:
    """Where the provider sends the browser back, with ``code`` and ``state`` (or ``error``)."""
    if provider not in flows.PROVIDERS:
        abort(404)
    signed_in = current_user._get_current_object() if current_user.is_authenticated else None
    landing = flows.complete(provider, request.args, signed_in, sign_in=_sign_in)
    if landing.message:
        flash(landing.message, landing.category)
    return redirect(_landing_url(provider, landing))


@bp.route("/oauth/<provider>/offer/<nonce>", methods=["GET", "POST"])
@login_required
def offer(provider: str, nonce: str) -> Response | str:
    """After "Sign in with …": use that account's calendar too? (one click, no second consent)."""
    flow = flows.pending_offer(current_user._get_current_object(), provider, nonce)
    target = safe_next(request.values.get("next")) or url_for("settings.index")
    if flow is None:
        if request.method == "POST":
            flash(
                _("That offer has expired; connect the calendar from the Calendars page."), "info"
            )
        return redirect(target)
    if request.method == "POST":
        if request.form.get("decision") == "connect":
            try:
                conn = flows.accept_offer(flow)
            except FlowError as exc:
                flash(str(exc), "error")
                return redirect(target)
            flash(
                _(
                    "Connected %(provider)s (%(account)s).",
                    provider=flows.title(provider),
                    account=conn.label,
                ),
                "success",
            )
            return redirect(_connections_page())
        flows.decline_offer(flow)
        return redirect(target)
    return render(
        "oauth/offer.html",
        provider=provider,
        provider_title=flows.title(provider),
        account=flow.label,
        nonce=nonce,
        next=target,
    )
