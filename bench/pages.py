"""Benchmark of the public booking page and its slots fragment against a trivial page.

Run: ``.venv/bin/python bench/pages.py``. Starts gunicorn (2 workers) on a temporary
SQLite instance holding one host, one meeting type and 5,000 busy intervals in the
free/busy cache, then drives each URL with 16 concurrent client threads for 10 s:

  (a) the booking page for a whole month (``/alice/intro?month=…&tz=…``),
  (b) the slots fragment htmx asks for (same URL with ``date=``, ``HX-Request``),
  (c) ``/healthz``, a trivial page of the same app (one ``SELECT 1``), as the baseline.

Absolute numbers depend on the machine (and the client shares its CPUs), so the pages
are judged against the trivial page in the same run; the three take turns in five
rounds of 2 s, so load from anything else on the machine falls on all of them alike.
Targets: each page reaches at least 40% of the trivial page's throughput, with p95
latency under 100 ms.
Options: ``--seconds N`` (default 10), ``--clients N`` (default 16).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUSY_INTERVALS = 5000
BUSY_DAYS = 90
TARGET_RATIO = 0.40
ROUNDS = 5
TARGET_P95_MS = 100.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(env: dict[str, str]) -> None:
    """One host (Berlin, Mon–Fri 09–17), one type, 5,000 cached busy intervals."""
    os.environ.update(env)
    from portal import create_app
    from portal.database import upgrade
    from portal.models import BusyBlock, Calendar, Connection, MeetingType, db, to_db
    from portal.org.users import create_user

    app = create_app({"RATELIMIT_ENABLED": False})
    rng = random.Random(5000)
    with app.app_context(), db.connection_context():
        upgrade()
        host = create_user("alice@example.com", "bench-password", "alice", timezone="Europe/Berlin")
        MeetingType.create(
            user=host,
            slug="intro",
            name="Intro call",
            duration_minutes=30,
            buffer_before_minutes=10,
            buffer_after_minutes=10,
            window_days=60,
        )
        conn = Connection.create(user=host, provider="ics", label="bench feed")
        cal = Calendar.create(connection=conn, external_id="bench", name="Work", conflict=True)
        origin = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        rows = []
        for i in range(BUSY_INTERVALS):
            start = origin + timedelta(minutes=5 * rng.randrange(BUSY_DAYS * 24 * 12))
            length = timedelta(minutes=rng.choice([15, 30, 45, 60, 90]))
            rows.append(
                {
                    "calendar": cal.id,
                    "start": to_db(start),
                    "end": to_db(start + length),
                    "external_id": f"bench-{i}",
                }
            )
        with db.atomic():
            for i in range(0, len(rows), 500):
                BusyBlock.insert_many(rows[i : i + 500]).execute()


def start_gunicorn(env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            status, _ = request(port, "/healthz", {})
            if status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise SystemExit("gunicorn did not start")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def request(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def hammer(port: int, path: str, headers: dict[str, str], seconds: float, clients: int):
    """`clients` threads requesting `path` back to back for `seconds`.

    Returns (latencies in seconds, errors, elapsed seconds).
    """
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        mine: list[float] = []
        bad = 0
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            try:
                status, _ = request(port, path, headers)
                if status != 200:
                    bad += 1
            except OSError:
                bad += 1
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], time.perf_counter() - began


def p95_ms(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000 if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="kairos-bench-"))
    env = {
        "KAIROS_INSTANCE_PATH": str(tmp / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", ""),
        "SECRET_KEY": "bench-secret",
    }
    seed(env)
    port = free_port()
    proc = start_gunicorn(env, port)
    try:
        tz = "Europe/Berlin"
        today = datetime.now(UTC).date()
        month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
        day = month + timedelta(days=(7 - month.weekday()) % 7 + 1)  # a Tuesday
        cases = [
            ("trivial page  /healthz", "/healthz", {}),
            (
                "booking page  (month)",
                f"/alice/intro?month={month:%Y-%m}&tz={tz}",
                {},
            ),
            (
                "slots fragment (htmx)",
                f"/alice/intro?date={day.isoformat()}&tz={tz}",
                {"HX-Request": "true", "HX-Target": "slots"},
            ),
        ]
        for _, path, headers in cases:  # warm both workers, and check each answers 200
            for _ in range(4):
                status, body = request(port, path, headers)
                if status != 200:
                    raise SystemExit(f"{path} answered {status}")
        print(
            f"gunicorn 2 workers, {args.clients} clients x {args.seconds:g} s each, "
            f"{BUSY_INTERVALS} busy intervals over {BUSY_DAYS} days"
        )
        # The cases take turns in short rounds, so a burst of load from anything else on
        # the machine falls on all of them alike instead of on whichever ran then.
        totals = {name: ([], 0, 0.0) for name, _, _ in cases}
        for _ in range(ROUNDS):
            for name, path, headers in cases:
                lat, errors, elapsed = hammer(
                    port, path, headers, args.seconds / ROUNDS, args.clients
                )
                seen, bad, spent = totals[name]
                totals[name] = (seen + lat, bad + errors, spent + elapsed)
        results = {
            name: (len(lat) / spent, p95_ms(lat), bad) for name, (lat, bad, spent) in totals.items()
        }
        base = results[cases[0][0]][0]
        ok = True
        for name, (rps, p95, errors) in results.items():
            ratio = rps / base
            line = f"{name:24} {rps:8.1f} req/s  p95 {p95:6.1f} ms  {ratio:6.0%} of trivial"
            if errors:
                line += f"  ({errors} errors)"
                ok = False
            if name != cases[0][0]:
                good = ratio >= TARGET_RATIO and p95 < TARGET_P95_MS
                ok = ok and good
                line += "  ok" if good else "  MISSED"
            print(line)
        print(
            f"targets: >= {TARGET_RATIO:.0%} of the trivial page's throughput, "
            f"p95 < {TARGET_P95_MS:.0f} ms: {'met' if ok else 'MISSED'}"
        )
        # Latency, unlike the ratios, depends on what else the machine is doing.
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"load average {load} on {os.cpu_count()} CPUs")
        return 0 if ok else 1
    finally:
        stop(proc)
        from portal.runtime.queue import shutdown_embedded

        shutdown_embedded()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
