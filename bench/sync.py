"""Benchmark of the CalDAV free/busy refresh: a full read against an incremental one.

Run: ``.venv/bin/python bench/sync.py``. Starts a real Radicale on 127.0.0.1 with a
temporary store, uploads one calendar of 5,000 events (one PUT of the whole collection),
connects it to a host on a temporary SQLite instance, then in the same run times

  (1) the first refresh (``portal.calendars.sync.refresh_connection``): discovery, a time-range
      search over every event, local expansion, 5,000 rows written to the busy cache;
  (2) a second refresh after one event was moved on the server: the sync token names
      that one resource, one calendar-multiget fetches it, its rows are replaced.

Both runs go through the same code path the worker uses. Absolute times depend on the
machine (Radicale shares its CPUs), so the figure is the ratio. Target: the second
refresh is at least 10x cheaper. Options: ``--events N`` (default 5000).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portal import create_app  # noqa: E402
from portal.calendars import sync  # noqa: E402
from portal.database import upgrade  # noqa: E402
from portal.models import BusyBlock, Calendar, MeetingType, db  # noqa: E402
from portal.org.users import create_user  # noqa: E402
from tests.support.servers import RadicaleServer  # noqa: E402

NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
TARGET = 10.0


def vevent(uid: str, start: datetime, minutes: int = 30) -> str:
    end = start + timedelta(minutes=minutes)
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDTEND:{end:%Y%m%dT%H%M%SZ}\r\n"
        "SUMMARY:Busy\r\nEND:VEVENT\r\n"
    )


def calendar_body(events: int) -> str:
    """``events`` half-hour events spread over the next 60 days, 08:00–18:00 UTC."""
    parts = ["BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kairos bench//EN\r\n"]
    per_day = -(-events // 60)
    for i in range(events):
        day, slot = divmod(i, per_day)
        start = NOW.replace(hour=8) + timedelta(days=day, minutes=(slot * 600) // per_day)
        parts.append(vevent(f"bench-{i}", start))
    parts.append("END:VCALENDAR\r\n")
    return "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "radicale").mkdir()
        server = RadicaleServer(root / "radicale").start()
        try:
            user, password = server.add_user("bench", "bench-secret")
            url = server.make_calendar(user, "Busy")
            with server.http(user) as http:
                answer = http.put(
                    url,
                    data=calendar_body(args.events).encode(),
                    headers={"Content-Type": "text/calendar"},
                    timeout=600,
                )
                assert answer.status_code in (201, 204), answer.text
            names = server.hrefs(url, user=user)
            assert len(names) == args.events, len(names)

            app = create_app(
                {
                    "INSTANCE_PATH": str(root / "instance"),
                    "DATABASE_URL": f"sqlite:///{root / 'bench.db'}",
                    "SECRET_KEY": "bench",
                    "ALLOW_PRIVATE_URLS": True,
                    "RATELIMIT_ENABLED": False,
                    "OUTBOX_RELAY_ON_COMMIT": False,
                    "HTTP_TIMEOUT": 120,
                }
            )
            with app.app_context(), db.connection_context():
                upgrade()
                host = create_user("bench@example.com", "pw", "bench", timezone="Europe/Berlin")
                MeetingType.create(user=host, slug="intro", name="Intro", window_days=60)
                conn = sync.connect(
                    host, "caldav", {"url": server.url, "username": user, "password": password}
                )
                cal = Calendar.get(Calendar.connection == conn)

                started = time.perf_counter()
                assert sync.refresh_connection(conn.id, now=NOW) == "ok"
                first = time.perf_counter() - started
                blocks = BusyBlock.select().where(BusyBlock.calendar == cal).count()

                # Move one event on the server, as a calendar client would.
                moved = NOW.replace(hour=6) + timedelta(days=3)
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
                assert sync.refresh_connection(conn.id, now=NOW) == "ok"
                second = time.perf_counter() - started
                after = BusyBlock.select().where(BusyBlock.calendar == cal)
                assert after.count() == blocks
                assert after.where(BusyBlock.start == moved.replace(tzinfo=None)).count() == 1
        finally:
            server.stop()

    ratio = first / second
    print(f"events in the calendar:        {args.events}")
    print(f"busy blocks cached:            {blocks}")
    print(f"first refresh (full):          {first * 1000:8.1f} ms")
    print(f"second refresh (1 changed):    {second * 1000:8.1f} ms")
    print(f"ratio first / second:          {ratio:8.1f}x  (target >= {TARGET:g}x)")
    print("PASS" if ratio >= TARGET else "FAIL")
    sys.exit(0 if ratio >= TARGET else 1)


if __name__ == "__main__":
    main()
