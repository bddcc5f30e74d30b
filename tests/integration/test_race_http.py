"""Racing invitees over real HTTP: 32 threads, one slot, exactly one 201."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import requests

from portal.models import Booking, db
from tests.support.app import Hosts
from tests.support.clock import NOW

RACERS = 32


def _next_weekday_at(hour: int, tz: str) -> datetime:
    """A start well inside the default hours, a week or more after the test clock's "now"."""
    day = NOW.date() + timedelta(days=8)
    while day.weekday() != 2:  # a Wednesday
        day += timedelta(days=1)
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(tz))


def _race(requests_to_send: list[tuple[str, dict]]) -> list[int]:
    """POST every (url, body) at the same instant from its own thread."""
    barrier = threading.Barrier(len(requests_to_send))
    codes: list[int] = [0] * len(requests_to_send)

    def go(i: int) -> None:
        url, body = requests_to_send[i]
        barrier.wait()
        codes[i] = requests.post(url, json=body, timeout=60).status_code

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(requests_to_send))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def test_thirty_two_invitees_one_slot(backend_app, live):
    h = Hosts(backend_app)
    host = h.create("alice", tz="Europe/Berlin")
    h.meeting_type(host, "intro", duration_minutes=30)
    start = _next_weekday_at(10, "Europe/Berlin").isoformat()
    bodies = [
        {"start": start, "name": f"R{i}", "email": f"r{i}@example.com", "timezone": "UTC"}
        for i in range(RACERS)
    ]
    codes = _race([(f"{live}/api/v1/hosts/alice/intro/bookings", b) for b in bodies])
    assert sorted(codes) == [201] + [409] * (RACERS - 1)
    with backend_app.app_context(), db.connection_context():
        assert Booking.select().count() == 1


def test_overlapping_types_of_different_lengths_race(backend_app, live):
    h = Hosts(backend_app)
    host = h.create("alice", tz="Europe/Berlin")
    h.meeting_type(host, "short", duration_minutes=30)
    h.meeting_type(host, "long", duration_minutes=120, slot_interval_minutes=30)
    base = _next_weekday_at(10, "Europe/Berlin")
    sends = []
    for i in range(RACERS):
        kind = "long" if i % 2 else "short"
        start = base + timedelta(minutes=30 * (i % 4)) if kind == "short" else base
        body = {"start": start.isoformat(), "name": "R", "email": f"r{i}@example.com"}
        sends.append((f"{live}/api/v1/hosts/alice/{kind}/bookings", body))
    # Every request overlaps 10:00–12:00 local; several short ones may coexist.
    codes = _race(sends)
    assert all(c in (201, 409) for c in codes)
    with backend_app.app_context(), db.connection_context():
        rows = list(Booking.select().order_by(Booking.start))
    for a, b in zip(rows, rows[1:], strict=False):
        assert a.end <= b.start  # no two confirmed bookings overlap
    assert codes.count(201) == len(rows) >= 1
