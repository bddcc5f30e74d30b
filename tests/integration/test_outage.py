"""The database goes away and comes back: 503 with ``Retry-After`` meanwhile, then at
once the normal answers, from the same running app (no restart).

PostgreSQL is taken away by a :class:`servers.TcpProxy` in front of the test server:
``down()`` refuses new connections and cuts the open ones, which is what a client of
a stopped server sees, without stopping the server other test runs share. SQLite is
"locked past its timeout" by a second connection holding the write lock while the
app's busy timeout is short.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from peewee import OperationalError

from portal import create_app
from portal.models import Booking, db
from tests.integration.test_public_pages import form_fields
from tests.support.api import BERLIN, at, bookable_monday
from tests.support.app import ENCRYPTION_KEY, TEST_DATABASE_URL, AuthActions, Hosts, make_app
from tests.support.servers import TcpProxy

RETRY_AFTER = "5"


def _site(app):
    """Alice (Berlin, default hours) with a 30-minute type and an API token."""
    hosts = Hosts(app)
    alice = hosts.create("alice", tz=BERLIN)
    hosts.meeting_type(alice, "intro", duration_minutes=30)
    return hosts.token(alice)


def _book_api(client, start: str, email: str = "carol@example.com"):
    body = {"start": start, "name": "Carol", "email": email, "timezone": BERLIN}
    return client.post("/api/v1/hosts/alice/intro/bookings", json=body)


def _count_bookings(app) -> int:
    with app.app_context(), db.connection_context():
        return Booking.select().count()


def assert_unavailable_page(resp) -> None:
    assert resp.status_code == 503, resp.status_code
    assert resp.headers["Retry-After"] == RETRY_AFTER
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.mimetype == "text/html"
    assert "Temporarily unavailable" in resp.text
    assert 'class="topbar"' in resp.text  # the site's own layout, not a bare error


def assert_unavailable_json(resp) -> None:
    assert resp.status_code == 503, resp.status_code
    assert resp.headers["Retry-After"] == RETRY_AFTER
    error = resp.json["error"]
    assert set(error) == {"code", "message"} and error["code"] == "unavailable"
    assert error["message"]


# --------------------------------------------------------------------------- PostgreSQL


def _hold_until_all_arrive(count: int):
    """A probe view that keeps its pooled connection until ``count`` requests hold one,
    so the pool ends up with that many open connections."""
    barrier = threading.Barrier(count, timeout=10)

    def hold():
        db.execute_sql("SELECT 1")
        barrier.wait()
        return "held"

    return hold


def _in_parallel(app, path: str, count: int) -> list[int]:
    statuses: list[int] = []

    def one():
        statuses.append(app.test_client().get(path).status_code)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    return statuses


@pytest.fixture
def pg(tmp_path, redis_url):
    """The app on the test PostgreSQL reached through a proxy the test can cut."""
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL not set: the PostgreSQL outage needs a PostgreSQL")
    parts = urlsplit(TEST_DATABASE_URL)
    proxy = TcpProxy(parts.port or 5432).up()
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    app = make_app(tmp_path, redis_url, parts._replace(netloc=netloc).geturl())
    app.add_url_rule("/_probe/hold", "probe_hold", _hold_until_all_arrive(4))

    def cut_mid_request():
        """The server vanishes between two queries of one request."""
        db.execute_sql("SELECT 1")
        proxy.down()
        proxy.up()
        db.execute_sql("SELECT 1")
        return "unreachable"

    app.add_url_rule("/_probe/cut", "probe_cut", cut_mid_request)
    yield app, proxy
    proxy.down()
    db.obj.close_all()


def test_postgresql_stopped_answers_503_then_recovers_without_restart(pg):
    app, proxy = pg
    token = _site(app)
    client = app.test_client()
    auth = AuthActions(client)
    assert auth.login().status_code == 302
    api = {"Authorization": f"Bearer {token}"}
    monday = bookable_monday()
    # Four pooled connections open, all of which the outage will kill.
    assert _in_parallel(app, "/_probe/hold", 4) == [200] * 4
    assert client.get("/alice").status_code == 200

    proxy.down()
    started = time.monotonic()
    assert_unavailable_page(client.get("/alice"))
    assert_unavailable_page(client.get("/alice/intro"))
    assert_unavailable_page(client.get("/settings/"))  # the sign-in lookup itself fails
    assert_unavailable_page(client.get("/login"))
    assert_unavailable_json(client.get("/api/v1/me", headers=api))
    assert_unavailable_json(_book_api(client, at(monday, "10:00")))
    health = client.get("/healthz")
    assert health.status_code == 503 and health.text == "database unavailable"
    assert health.headers["Retry-After"] == RETRY_AFTER
    assert time.monotonic() - started < 10  # refused at once, not a hang

    proxy.up()
    # The very next requests work: the dead pooled connections are dropped, not lent.
    assert _in_parallel(app, "/_probe/hold", 4) == [200] * 4
    assert client.get("/healthz").text == "ok"
    assert client.get("/alice").status_code == 200
    assert client.get("/settings/").status_code == 200  # still signed in
    assert client.get("/api/v1/me", headers=api).status_code == 200
    booked = _book_api(client, at(monday, "10:00"))
    assert booked.status_code == 201, booked.json
    assert _count_bookings(app) == 1  # the attempt during the outage left nothing behind


def test_connection_lost_mid_request_is_503_and_not_reused(pg):
    app, _proxy = pg
    _site(app)
    client = app.test_client()
    assert_unavailable_page(client.get("/_probe/cut"))
    # The broken connection went back to the pool as unusable, so these get fresh ones.
    for _ in range(3):
        assert client.get("/alice").status_code == 200
        assert client.get("/healthz").text == "ok"


def test_a_server_that_never_answers_is_503_after_the_connect_timeout(tmp_path, redis_url):
    """A host that accepts and then says nothing (a hung or half-gone server) must not
    hang requests: the connect timeout, here from the URL, turns it into a 503."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    port = silent.getsockname()[1]
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": f"postgresql://kairos@127.0.0.1:{port}/kairos?connect_timeout=1",
            "SECRET_KEY": "test-secret",
            "ENCRYPTION_KEYS": [ENCRYPTION_KEY],
            "REDIS_URL": redis_url,
            "RATELIMIT_ENABLED": False,
        }
    )
    try:
        started = time.monotonic()
        health = app.test_client().get("/healthz")
        assert health.status_code == 503 and health.text == "database unavailable"
        assert time.monotonic() - started < 5
        assert_unavailable_page(app.test_client().get("/alice"))
    finally:
        for sock in [*accepted, silent]:
            sock.close()


# --------------------------------------------------------------------------- SQLite


@pytest.fixture
def locked(app, tmp_path):
    """A short busy timeout for the app, and a second connection that can hold the lock."""
    with app.app_context():
        db.obj.close_all()  # pooled connections were opened with the long default
        db.obj.pragma("busy_timeout", 300, permanent=True)  # for every new connection
        db.close()
    holder = sqlite3.connect(tmp_path / "test.db", isolation_level=None, timeout=1)
    yield holder
    if holder.in_transaction:
        holder.rollback()
    holder.close()


def _form_start(day, hhmm: str) -> str:
    local = datetime.fromisoformat(at(day, hhmm))
    return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_sqlite_locked_past_its_timeout_answers_503_then_recovers(app, locked):
    _site(app)
    client = app.test_client()
    monday = bookable_monday()
    start = _form_start(monday, "11:00")
    page = client.get("/alice/intro", query_string={"start": start, "tz": BERLIN})
    assert page.status_code == 200
    fields = form_fields(page.text) | {"name": "Bob", "email": "bob@example.com", "notes": ""}

    locked.execute("BEGIN IMMEDIATE")  # another process writing, and not letting go
    started = time.monotonic()
    assert_unavailable_json(_book_api(client, at(monday, "10:00")))
    assert_unavailable_page(client.post("/alice/intro", data=fields))
    assert time.monotonic() - started < 10  # the busy timeout, not forever
    locked.execute("ROLLBACK")

    assert _book_api(client, at(monday, "10:00")).status_code == 201
    done = client.post("/alice/intro", data=fields)
    assert done.status_code == 303, done.text
    assert _count_bookings(app) == 2


def test_other_database_errors_stay_errors(app):
    """A mistake in SQL is a bug to see, not an outage to wait out."""

    def bad_sql():
        db.execute_sql("SELECT * FROM no_such_table")
        return "unreachable"

    app.add_url_rule("/_probe/bad-sql", "probe_bad_sql", bad_sql)
    with pytest.raises(OperationalError, match="no such table"):
        app.test_client().get("/_probe/bad-sql")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert app.test_client().get("/_probe/bad-sql").status_code == 500


def test_healthz_says_ok_while_the_database_answers(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.text == "ok"
