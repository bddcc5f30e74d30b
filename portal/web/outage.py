"""When the database cannot answer: 503 with ``Retry-After``, never a 500.

A stopped or unreachable PostgreSQL, a connection the server dropped, too many
clients, or a SQLite write lock held past the busy timeout all pass by
themselves. The visitor should wait and retry, and a monitor should read
"unavailable", not "bug" — so one handler maps them: the API's JSON error under
``/api/``, a page in the browser. Anything else (a syntax error, a missing
table) stays a 500, because retrying will not fix it.

Recovery needs no restart: peewee's pool pings a PostgreSQL connection
(``SELECT 1``) before lending it and drops one whose server went away, and on
check-in it closes a connection whose state is unknown; SQLite's pool drops a
connection it cannot query. The first request after the database is back gets
a working connection. ``tests/integration/test_outage.py`` holds the pool to it.
"""

from __future__ import annotations

import sqlite3

import psycopg2
from flask import Blueprint, Flask, current_app, jsonify, request
from flask_babel import gettext as _
from peewee import InterfaceError, OperationalError, PeeweeException
from playhouse.pool import MaxConnectionsExceeded

from portal import i18n
from portal.models import db

# How long a client is asked to wait: a restarting PostgreSQL or a held SQLite lock
# is usually gone within seconds, and a short hint keeps retries from bunching up later.
RETRY_AFTER_SECONDS = 5

# SQLite result codes (the low byte of the extended code) that describe a state of
# the database file, not a mistake in the SQL: busy/locked, unreadable, full.
_SQLITE_TRANSIENT = {
    5,  # SQLITE_BUSY: "database is locked" after the busy timeout
    6,  # SQLITE_LOCKED: a table lock held by another connection
    10,  # SQLITE_IOERR
    13,  # SQLITE_FULL
    14,  # SQLITE_CANTOPEN
    15,  # SQLITE_PROTOCOL: the WAL lock protocol gave up
}

bp = Blueprint("health", __name__)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means "the database cannot answer now" rather than a bug.

    peewee wraps the driver's exception and keeps it as ``exc.orig``; its own
    errors without one ("Connection already opened.") are programming mistakes.
    """
    if isinstance(exc, MaxConnectionsExceeded):  # every pooled connection busy for too long
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    orig = getattr(exc, "orig", None)
    while isinstance(orig, PeeweeException):  # a pooled connect wraps the error twice
        orig = getattr(orig, "orig", None)
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_TRANSIENT
    # psycopg2 files connection loss, refusals, shutdowns, "too many clients",
    # statement/lock timeouts and serialisation failures under these two.
    return isinstance(orig, psycopg2.OperationalError | psycopg2.InterfaceError)


def unavailable(exc: Exception):
    """The 503 answer, for the API and for browsers; other database errors re-raise."""
    if not is_unavailable(exc):
        raise exc
    current_app.logger.warning(
        "database unavailable (%s %s): %s", request.method, request.path, exc
    )
    # The visitor's language from the request alone: a host's own setting needs a query.
    i18n.use_locale(i18n.browser_locale() or i18n.DEFAULT)
    message = _("The service is temporarily unavailable. Please try again shortly.")
    if request.path.startswith("/api/"):
        response = jsonify({"error": {"code": "unavailable", "message": message}})
    else:
        # Rendered past the context processors: Flask-Login's loads current_user (a
        # query) for every render_template, and the page must not need the database.
        page = current_app.jinja_env.get_template("errors/unavailable.html")
        response = current_app.make_response(page.render(retry_after=RETRY_AFTER_SECONDS))
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"  # no proxy may keep serving the outage
    return response


@bp.get("/healthz")
def healthz():
    """``ok`` when the database answers a query, 503 otherwise: what load balancers ask."""
    try:
        db.execute_sql("SELECT 1")
    except (OperationalError, InterfaceError, MaxConnectionsExceeded) as exc:
        if not is_unavailable(exc):
            raise
        body = "database unavailable"
        return (
            body,
            503,
            {
                "Content-Type": "text/plain; charset=utf-8",
                "Retry-After": str(RETRY_AFTER_SECONDS),
                "Cache-Control": "no-store",
            },
        )
    return "ok", 200, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}


def init_app(app: Flask) -> None:
    for error in (OperationalError, InterfaceError, MaxConnectionsExceeded):
        app.register_error_handler(error, unavailable)
    app.register_blueprint(bp)
