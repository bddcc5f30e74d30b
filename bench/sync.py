"""Benchmark of the CalDAV free/busy refresh: a full read against an incremental one.

Run: ``.venv/bin/python bench/sync.py``. Starts a real Radicale on 127.0.0.1 (tests/support/servers.py)
with one calendar of ``--events`` events (one PUT of the whole collection) spread over the
next 60 days, and a temporary Kairos (bench/harness.py: gunicorn, the worker, SQLite). Then,
the way a host and the worker do it:

  (1) the first refresh: the calendar is connected through ``POST /api/v1/connections``;
      its refresh job discovers the calendar, searches every event, expands them locally
      and writes them to the busy cache;
  (2) a second refresh after one event was moved on the server (``POST
      /api/v1/connections/<id>/refresh``): the sync token names that one resource, one
      calendar-multiget fetches it, its rows are replaced.

Each is timed from the request until the connection reads ``ok`` again (polled every 20 ms).
Absolute times depend on the machine (Radicale shares its CPUs), so the figure is the
ratio. Target: the second refresh is at least 10× cheaper.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import ROOT, Host, Instance, Targets, log

sys.path.insert(0, str(ROOT))

from tests.support.servers import RadicaleServer  # noqa: E402

TARGET = 10.0
DAYS = 60


def vevent(uid: str, start: datetime, minutes: int = 30) -> str:
    end = start + timedelta(minutes=minutes)
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDTEND:{end:%Y%m%dT%H%M%SZ}\r\n"
        "SUMMARY:Busy\r\nEND:VEVENT\r\n"
    )


def calendar_body(events: int, first: datetime) -> str:
    """``events`` half-hour events over ``DAYS`` days from ``first``, 08:00–18:00 UTC."""
    parts = ["BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kairos bench//EN\r\n"]
    per_day = -(-events // DAYS)
    for i in range(events):
        day, slot = divmod(i, per_day)
        start = first.replace(hour=8) + timedelta(days=day, minutes=(slot * 600) // per_day)
        parts.append(vevent(f"bench-{i}", start))
    parts.append("END:VCALENDAR\r\n")
    return "".join(parts)


def refreshed(instance: Instance, host: Host, connection: int, started: float) -> float:
    """Seconds from ``started`` until the worker has refreshed the connection."""
    instance.wait_synced(host, connection, poll=0.02)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()

    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    with (
        tempfile.TemporaryDirectory() as tmp,
        Instance(
            # Radicale answers a time-range search over every event slowly on a busy machine:
            # the app's default 10 s would turn the first refresh into an error.
            "sync",
            {"KAIROS_HTTP_TIMEOUT": "120"},
        ) as instance,
    ):
        server = RadicaleServer(Path(tmp)).start()
        try:
            user, password = server.add_user("bench", "bench-secret")
            url = server.make_calendar(user, "Busy")
            with server.http(user) as http:
                answer = http.put(
                    url,
                    data=calendar_body(args.events, first).encode(),
                    headers={"Content-Type": "text/calendar"},
                    timeout=600,
                )
                assert answer.status_code in (201, 204), answer.text
            names = server.hrefs(url, user=user)
            assert len(names) == args.events, len(names)
            log(f"Radicale holds {args.events} events")

            (host,) = instance.create_hosts(["bench"])
            instance.start()
            instance.add_meeting_type(host, slug="intro", duration_minutes=30, window_days=DAYS)
            started = time.perf_counter()
            connection = instance.api(
                "POST",
                "/connections",
                host,
                {"provider": "caldav", "url": server.url, "username": user, "password": password},
            )["id"]
            full = refreshed(instance, host, connection, started)
            blocks = instance.cached_intervals()

            # Move one event on the server, as a calendar client would.
            moved = first.replace(hour=6) + timedelta(days=3)
            target = next(n for n in names if n.endswith(".ics"))
            body = server.get(url + target, user=user)
            uid = next(line[4:] for line in body.splitlines() if line.startswith("UID:"))
            server.put(
                url,
                target,
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kairos bench//EN\r\n"
                + vevent(uid, moved)
                + "END:VCALENDAR\r\n",
                user=user,
            )
            started = time.perf_counter()
            instance.api("POST", f"/connections/{connection}/refresh", host)
            incremental = refreshed(instance, host, connection, started)
            after = instance.cached_intervals()
        finally:
            server.stop()

    ratio = full / incremental
    print(
        f"sync: CalDAV (Radicale) calendar of {args.events} events, refreshed by the worker "
        f"(busy intervals cached: {blocks}, after the change: {after})"
    )
    print(f"  first refresh (full):          {full * 1000:8.0f} ms")
    print(f"  second refresh (1 changed):    {incremental * 1000:8.0f} ms")
    targets = Targets()
    targets.check(
        "refresh after one change", f"{ratio:.1f}× cheaper than the first", "≥ 10×", ratio >= 10
    )
    targets.summary()


if __name__ == "__main__":
    main()
