"""Extensions bound to the app: database per request, sign-in, CSRF, security headers."""

from __future__ import annotations

from flask import Flask, g, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, logout_user, user_logged_in
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx

from portal.database import init_db
from portal.models import User, UserSession, db
from portal.runtime.filemodes import private_dir, private_sqlite

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"
csrf = CSRFProtect()
htmx = Htmx()
# Rate limits live in the app's Redis so every web process counts together; when Redis
# is down each process falls back to counting in memory instead of failing the request.
limiter = Limiter(
    get_remote_address,
    key_prefix="kairos",
    in_memory_fallback_enabled=True,
    swallow_errors=True,
    headers_enabled=True,
)


def limiter_storage_uri(app: Flask) -> str:
    """The limits-library URI of the app's Redis (starting the embedded one if needed)."""
    url = app.config["REDIS_URL"]
    if not url:
        from portal.runtime.embedded_redis import attach

        url = "unix://" + attach(app.config["REDIS_EMBEDDED_PATH"])
    if url.startswith("unix://"):
        return "redis+unix://" + url[len("unix://") :]
    return url


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, marked ``Secure`` whenever the site runs on HTTPS.

    ``KAIROS_SECURE_COOKIES`` forces it; otherwise an HTTPS request, or an ``https://``
    ``KAIROS_BASE_URL`` (TLS ended at a proxy), is enough — so nobody has to remember it.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        return served_over_https(app)


def served_over_https(app: Flask) -> bool:
    """This request came over HTTPS, or the site's public address is ``https://``."""
    if str(app.config.get("BASE_URL") or "").startswith("https://"):
        return True
    return has_request_context() and request.is_secure


def content_security_policy(frame_ancestors: str) -> str:
    """Scripts, styles and everything else from this site only; framing as the page allows.

    The templates carry no inline script, style attribute or event handler (their code is
    in static/), so nothing injected into a page could run even if it got past escaping.
    """
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            f"frame-ancestors {frame_ancestors}",
        ]
    )


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The signed-in host, unless deactivated, signed out, or their password changed since."""
    if not user_id.isdigit():
        return None
    user = User.get_or_none(User.id == int(user_id), User.is_active == True)  # noqa: E712
    if user is None or session.get("pwv") != user.session_version():
        return None
    if not UserSession.is_live(user.id, session.get("sid")):
        return None
    return user


@user_logged_in.connect
def _start_session(app: Flask, user: User, **_kw) -> None:
    session["pwv"] = user.session_version()
    session["sid"] = UserSession.start(user, app.permanent_session_lifetime)


def end_session() -> None:
    """Sign out: the server forgets this session, so a copy of its cookie is worthless too."""
    UserSession.end(session.get("sid"))
    logout_user()
    session.clear()


def init_app(app: Flask) -> None:
    private_dir(app.instance_path)
    private_sqlite(app.config["DATABASE_URL"])
    init_db(app.config["DATABASE_URL"], app.config["DB_POOL_SIZE"])
    app.session_interface = SessionInterface()
    htmx.init_app(app)  # request.htmx: HX-Request, HX-Boosted, HX-Target …
    login_manager.init_app(app)
    csrf.init_app(app)
    if app.config.get("RATELIMIT_ENABLED", True):
        if not app.config.get("RATELIMIT_STORAGE_URI"):
            app.config["RATELIMIT_STORAGE_URI"] = limiter_storage_uri(app)
        app.config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 1, "socket_timeout": 1}
        )
    limiter.init_app(app)

    # No connect in before_request: peewee connects on the first query, so static
    # files never open the database; teardown closes what was opened.
    @app.teardown_request
    def _close_db(_exc: BaseException | None) -> None:
        if not db.is_closed():
            db.close()

    @app.after_request
    def _security_headers(response):
        """Pages refuse to be framed unless a view chose its own frame-ancestors."""
        ancestors = g.get("frame_ancestors")
        response.headers["Content-Security-Policy"] = content_security_policy(ancestors or "'none'")
        if not ancestors:
            response.headers["X-Frame-Options"] = "DENY"
        hsts = int(app.config.get("HSTS_SECONDS") or 0)
        if hsts > 0 and served_over_https(app):
            response.headers["Strict-Transport-Security"] = f"max-age={hsts}"
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.headers.get("HX-Request"):
            response.vary.add("HX-Request")
        return response
