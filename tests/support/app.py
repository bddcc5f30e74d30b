"""The test app and the small actors tests drive it with: hosts, and a signed-in browser.

``make_app`` builds Kairos on a fresh database (SQLite in ``tmp_path``, or the
PostgreSQL of ``TEST_DATABASE_URL``) with the tests' clock; the fixtures in
tests/conftest.py and the tests that need an app of their own use it.
"""

from __future__ import annotations

import os
import re

from cryptography.fernet import Fernet

from portal import create_app
from portal.database import truncate_all, upgrade
from portal.models import ApiToken, db
from portal.org.users import create_user
from tests.support.clock import NOW, Clock

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
ENCRYPTION_KEY = Fernet.generate_key().decode()
PASSWORD = "correct horse"  # every test host's
CSRF = re.compile(r'"X-CSRFToken": "([^"]+)"')


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def make_app(tmp_path, redis_url: str, database_url: str | None = None, **extra):
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'test.db'}",
        "SECRET_KEY": "test-secret",
        "ENCRYPTION_KEYS": [ENCRYPTION_KEY],
        "REDIS_URL": redis_url,
        "RATELIMIT_ENABLED": False,
        # Tests change data and look at once: no reuse of browsing answers.
        "PUBLIC_SLOTS_CACHE_SECONDS": 0,
        "ALLOW_PRIVATE_URLS": True,
        "SERVER_NAME": None,
        # The app's clock (portal/clock.py) starts at the tests' "now" and runs on.
        "CLOCK": Clock(NOW),
    }
    config.update(extra)
    app = create_app(config)
    with app.app_context():
        if database_url and not database_url.startswith("sqlite"):
            _fresh_postgres_schema_once()
            upgrade()
            truncate_all()
        else:
            upgrade()
    _flush(redis_url)
    return app


_pg_schema_reset = False


def _fresh_postgres_schema_once() -> None:
    """The PostgreSQL test database outlives runs: rebuild its schema once per session.

    Otherwise a schema left by an older checkout would make migrations look applied.
    """
    global _pg_schema_reset
    if _pg_schema_reset:
        return
    with db.obj.connection_context():
        db.obj.execute_sql("DROP SCHEMA public CASCADE")
        db.obj.execute_sql("CREATE SCHEMA public")
    _pg_schema_reset = True


class Hosts:
    """Tiny factory for hosts, meeting types and API tokens inside an app context."""

    def __init__(self, app):
        self.app = app

    def create(self, slug="alice", email=None, password=PASSWORD, tz="Europe/Berlin", **kw):
        with self.app.app_context(), db.connection_context():
            return create_user(email or f"{slug}@example.com", password, slug, timezone=tz, **kw)

    def meeting_type(self, user, slug="intro", **fields):
        from portal.models import MeetingType

        values = {"name": slug.title(), "duration_minutes": 30} | fields
        with self.app.app_context(), db.connection_context():
            return MeetingType.create(user=user, slug=slug, **values)

    def token(self, user) -> str:
        with self.app.app_context(), db.connection_context():
            return ApiToken.issue(user, "test")[1]


class AuthActions:
    """Sign in and post forms as a host through the real pages, CSRF token included.

    The token is read from the page (every page carries it on ``<body hx-headers>``),
    so tests exercise the same CSRF protection a browser meets.
    """

    TOKEN = CSRF

    def __init__(self, client):
        self.client = client

    def token(self, path: str = "/login") -> str:
        return csrf_token(self.client, path)

    def login(self, email="alice@example.com", password=PASSWORD, next=None):
        data = {"email": email, "password": password, "csrf_token": self.token("/login")}
        query = {"next": next} if next is not None else None
        return self.client.post("/login", data=data, query_string=query)

    def post(self, path: str, data=None, **kwargs):
        """POST a form with a valid CSRF token for the current session."""
        data = dict(data or {})
        data.setdefault("csrf_token", self.token("/settings/"))
        return self.client.post(path, data=data, **kwargs)

    def logout(self):
        return self.post("/logout")


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the page at ``path`` (every page carries it on ``<body hx-headers>``)."""
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    match = CSRF.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, email: str = "alice@example.com", password: str = PASSWORD) -> None:
    """Sign in through the real form; fails the test unless the form lets the host in."""
    answer = AuthActions(client).login(email, password)
    assert answer.status_code == 302, answer.get_data(as_text=True)
