"""Writers under contention: parallel requests while a worker writes, over real HTTP.

SQLite lets one connection write at a time. A transaction that read before
its first write used to get "database is locked" at once (the busy timeout
cannot help a lock upgrade), which reached users as a 500 and left a
connection without its calendars. Every transaction now takes the write lock
at BEGIN (``portal.database.write_transaction``), so writers queue instead.
"""

from __future__ import annotations

import threading
import time

import requests

from portal.calendars import sync
from portal.models import Calendar, Connection, db
from tests.support.app import AuthActions, Hosts

CONNECTS = 32


def feed(n: int, events: int = 40) -> str:
    """A feed with a few dozen events, so each refresh writes a batch of busy blocks."""
    body = "".join(
        f"BEGIN:VEVENT\r\nUID:{n}-{i}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:2026{12 - i % 2:02d}{1 + i % 28:02d}T{8 + i % 9:02d}0000Z\r\n"
        f"DTEND:2026{12 - i % 2:02d}{1 + i % 28:02d}T{9 + i % 9:02d}0000Z\r\nEND:VEVENT\r\n"
        for i in range(events)
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-CALNAME:Feed {n}\r\n{body}END:VCALENDAR\r\n"


class Refresher(threading.Thread):
    """What the worker does meanwhile: refresh every connection, over and over."""

    def __init__(self, app):
        super().__init__(daemon=True)
        self.app = app
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.rounds = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with self.app.app_context(), db.connection_context():
                    for cid in [c.id for c in Connection.select(Connection.id)]:
                        sync.refresh_connection(cid)
                self.rounds += 1
            except BaseException as exc:  # noqa: BLE001 (reported by the test)
                self.errors.append(exc)
                return


def test_parallel_ics_connects_while_the_worker_refreshes(backend_app, live, feed_server):
    h = Hosts(backend_app)
    host = h.create("alice")
    token = h.token(host)
    with backend_app.app_context(), db.connection_context():
        for n in range(4):  # the worker has work before the first connect arrives
            sync.connect(host, "ics", {"url": feed_server.publish(f"/old{n}.ics", feed(n))})
    urls = [feed_server.publish(f"/new{n}.ics", feed(100 + n)) for n in range(CONNECTS)]

    refresher = Refresher(backend_app)
    refresher.start()
    while refresher.rounds < 1 and not refresher.errors:
        time.sleep(0.01)
    barrier = threading.Barrier(CONNECTS)
    answers: list[tuple[int, str]] = [(0, "")] * CONNECTS

    def go(i: int) -> None:
        barrier.wait()
        r = requests.post(
            f"{live}/api/v1/connections",
            json={"provider": "ics", "url": urls[i]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
        answers[i] = (r.status_code, r.text[:300])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(CONNECTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refresher.stop.set()
    refresher.join(timeout=120)

    assert refresher.errors == []
    assert [a for a in answers if a[0] != 201] == []
    with backend_app.app_context(), db.connection_context():
        conns = list(Connection.select())
        assert len(conns) == 4 + CONNECTS
        # No half-made connection: each has its calendar, written with it.
        assert {c.id: Calendar.select().where(Calendar.connection == c).count() for c in conns} == {
            c.id: 1 for c in conns
        }
        for c in conns:
            assert sync.refresh_connection(c.id) == "ok"


def test_parallel_failed_logins_never_fail_with_a_server_error(backend_app, live):
    """Failed sign-ins are counted (throttling); counting under contention must not 500."""
    Hosts(backend_app).create("alice")
    racers = 24
    sessions = []
    for _ in range(racers):
        s = requests.Session()
        page = s.get(f"{live}/login", timeout=30).text
        match = AuthActions.TOKEN.search(page)
        assert match
        sessions.append((s, match.group(1)))
    barrier = threading.Barrier(racers)
    codes = [0] * racers

    def go(i: int) -> None:
        s, csrf = sessions[i]
        barrier.wait()
        r = s.post(
            f"{live}/login",
            data={"email": "alice@example.com", "password": f"wrong {i}", "csrf_token": csrf},
            timeout=120,
        )
        codes[i] = r.status_code

    threads = [threading.Thread(target=go, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes and all(c in (200, 401, 422, 429) for c in codes), codes
