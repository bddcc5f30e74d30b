"""What the HTTP benchmarks share: a temporary Kairos, busy time fed the real way, wrk load.

An :class:`Instance` runs the app as the README's "Scaling out" does — ``gunicorn wsgi:app
--workers 2 --threads 4`` and ``flask --app wsgi worker`` — on SQLite in a temporary folder,
with the embedded Redis (or ``BENCH_REDIS_URL``). Hosts are made with the app's own CLI
(``users create``, ``tokens create``); their busy time arrives as it does in production: an
ICS feed served by a separate local process (``FeedServer`` of tests/support/servers.py),
connected through ``POST /api/v1/connections`` and read by the worker.

Load comes from wrk, a separate C process, driven by a Lua script that rotates through many
requests (hosts × windows × time zones), so the app's short slot caches miss unless a case
means to hit them. Cases take turns in rounds (:func:`interleave`), so background load on the
machine falls on all of them alike; each figure is compared with ``/healthz`` measured in the
same round, and the median over the rounds is reported. Only the standard library, psutil
and the app's CLI and HTTP API are used, so the benchmarks do not depend on ``portal``'s
module layout.

Run as a script it is one of the two helper processes: ``harness.py feeds SPEC`` serves
generated ICS feeds, ``harness.py cli COMMANDS`` runs the app's CLI commands in one process.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
PASSWORD = "bench-password-not-secret"
HEALTHZ = "/healthz"
# One zone per UTC offset (37): a month in each is a different range of instants, so
# the app's per-range memos, not only its per-URL cache, see a new question.
ZONES = (
    "Pacific/Pago_Pago",
    "Pacific/Honolulu",
    "Pacific/Marquesas",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Halifax",
    "America/St_Johns",
    "America/Sao_Paulo",
    "America/Noronha",
    "Atlantic/Azores",
    "UTC",
    "Europe/Berlin",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Tehran",
    "Asia/Dubai",
    "Asia/Kabul",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Dhaka",
    "Asia/Yangon",
    "Asia/Bangkok",
    "Asia/Shanghai",
    "Australia/Eucla",
    "Asia/Tokyo",
    "Australia/Darwin",
    "Australia/Brisbane",
    "Australia/Adelaide",
    "Pacific/Noumea",
    "Pacific/Fiji",
    "Pacific/Tongatapu",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr (stdout carries the figures), stamped with the seconds so far."""
    sys.stdout.flush()
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- verdicts


@dataclass
class Targets:
    """Prints ``name: figure (target …) PASS/FAIL`` lines and ``targets met: X of Y``."""

    met: int = 0
    total: int = 0

    def check(self, name: str, figure: str, target: str, ok: bool) -> None:
        self.total += 1
        self.met += ok
        print(f"{name}: {figure} (target {target}) {'PASS' if ok else 'FAIL'}", flush=True)

    def missing(self, name: str, reason: str, target: str) -> None:
        """A target that could not be measured counts as not met."""
        self.check(name, f"not measured ({reason})", target, False)

    def context(self, name: str, figure: str) -> None:
        print(f"{name}: {figure} (context, no target)", flush=True)

    def summary(self) -> None:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"load average {load} on {os.cpu_count()} CPUs")
        print(f"targets met: {self.met} of {self.total}", flush=True)


# ---------------------------------------------------------------- ICS feeds


def ics_feed(events: int, seed: int, days: int) -> bytes:
    """``events`` single events at random in the next ``days`` days, 06:00–18:00 UTC.

    Each event is one busy interval (no recurrence), so the count cached is the count
    served; lengths of 15 to 90 minutes, starts on a 5-minute grid.
    """
    rng = random.Random(seed)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    parts = [
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kairos bench//EN\r\n"
        f"X-WR-CALNAME:Bench {seed}\r\n"
    ]
    for i in range(events):
        start = today + timedelta(days=rng.randrange(days), minutes=rng.randrange(360, 1080, 5))
        end = start + timedelta(minutes=rng.choice((15, 30, 45, 60, 90)))
        parts.append(
            f"BEGIN:VEVENT\r\nUID:bench-{seed}-{i}\r\nDTSTAMP:20260101T000000Z\r\n"
            f"DTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDTEND:{end:%Y%m%dT%H%M%SZ}\r\n"
            "SUMMARY:Busy\r\nEND:VEVENT\r\n"
        )
    parts.append("END:VCALENDAR\r\n")
    return "".join(parts).encode()


def serve_feeds(spec: str) -> None:
    """The feed process: ``{"/path.ics": [events, seed, days], …}`` until stdin closes."""
    sys.path.insert(0, str(ROOT))
    from tests.support.servers import FeedServer

    server = FeedServer().start()
    for path, (events, seed, days) in json.loads(spec).items():
        server.publish(path, ics_feed(events, seed, days))
    print(server.url, flush=True)
    sys.stdin.read()  # the bench closes our stdin (or dies): time to go
    server.stop()


# ---------------------------------------------------------------- the app's CLI


def run_cli(commands: str) -> None:
    """The CLI process: each command of the JSON list through the app's own CLI."""
    sys.path.insert(0, str(ROOT))
    from wsgi import app

    runner = app.test_cli_runner()
    outputs = []
    for args in json.loads(commands):
        result = runner.invoke(args=args)
        if result.exit_code != 0:
            sys.exit(f"flask {' '.join(args)} failed:\n{result.output}{result.exception or ''}")
        outputs.append(result.output)
    print(json.dumps(outputs))


# ---------------------------------------------------------------- processes


def stop_group(proc: subprocess.Popen[Any] | None, grace: float = 10.0) -> None:
    """SIGTERM to the process group we started, SIGKILL after ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class NotSynced(SystemExit):
    """The worker did not bring a connection to "ok" (uncaught, it ends the bench)."""


@dataclass(frozen=True)
class Host:
    slug: str
    email: str
    token: str


@dataclass
class Instance:
    """A temporary Kairos: folder, gunicorn, worker and feed process; all gone on exit.

    ``settings``: environment variables of the app's own (``KAIROS_…``) for this bench.
    """

    name: str
    settings: dict[str, str] = field(default_factory=dict)
    root: Path = field(init=False)
    port: int = field(init=False)
    url: str = field(init=False)
    env: dict[str, str] = field(init=False)
    feed_url: str = ""
    _procs: dict[str, subprocess.Popen[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"kairos-bench-{self.name}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Nothing of a developer's own configuration leaks in.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("KAIROS_")
            and k not in {"DATABASE_URL", "REDIS_URL", "SMTP_URL", "SECRET_KEY"}
        }
        env.update(
            KAIROS_INSTANCE_PATH=str(self.root / "instance"),
            DATABASE_URL=f"sqlite:///{self.root / 'instance' / 'kairos.db'}",
            REDIS_URL=os.environ.get("BENCH_REDIS_URL", ""),  # empty: the app embeds one
            KAIROS_QUEUE=f"bench-{uuid.uuid4().hex[:8]}",  # a shared Redis stays apart
            SECRET_KEY="bench-secret",
            KAIROS_BASE_URL=self.url,
            KAIROS_ALLOW_PRIVATE_URLS="1",  # the feeds live on 127.0.0.1
            # The limiter stays in the path of every POST, with a budget load cannot exhaust.
            KAIROS_BOOKING_RATE_LIMIT="1000000/minute",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.settings)
        self.env = env

    def __enter__(self) -> Instance:
        # SIGTERM (``timeout``, a CI runner) unwinds like Ctrl-C, so close() still runs.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- processes --------------------------------------------------------

    def _spawn(self, name: str, args: list[str], **kw: Any) -> subprocess.Popen[Any]:
        logfile = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 (the child keeps it)
        try:
            proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env=self.env,
                stdout=kw.pop("stdout", logfile),
                stderr=logfile,
                start_new_session=True,  # its own group: stopped with everything it forks
                **kw,
            )
        finally:
            logfile.close()
        self._procs[name] = proc
        return proc

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def serve_feeds(self, feeds: dict[str, tuple[int, int, int]]) -> str:
        """Start the feed process with ``{path: (events, seed, days)}``; its base URL."""
        proc = self._spawn(
            "feeds",
            [sys.executable, str(HERE), "feeds", json.dumps(feeds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        self.feed_url = proc.stdout.readline().strip()
        if not self.feed_url:
            raise SystemExit("the feed server did not start:\n" + self.log_tail("feeds"))
        return self.feed_url

    def cli(self, commands: list[list[str]]) -> list[str]:
        """Run ``flask --app wsgi <command>`` for each command, in one process; their outputs."""
        done = subprocess.run(
            [sys.executable, str(HERE), "cli", json.dumps(commands)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise SystemExit(f"CLI failed:\n{done.stdout}{done.stderr[-3000:]}")
        return list(json.loads(done.stdout.strip().splitlines()[-1]))

    def create_hosts(self, slugs: Sequence[str], timezone: str = "Europe/Berlin") -> list[Host]:
        """Migrate, then one host and one API token per slug (Mon–Fri 09–17 by default)."""
        commands = [["db", "upgrade"]]
        for slug in slugs:
            email = f"{slug}@bench.example"
            commands.append(
                ["users", "create", "--email", email, "--password", PASSWORD, "--slug", slug]
                + ["--timezone", timezone]
            )
            commands.append(["tokens", "create", "--email", email])
        outputs = self.cli(commands)
        log(f"{len(slugs)} hosts created with the CLI")
        tokens = [out.strip().splitlines()[-1] for out in outputs[2::2]]
        return [Host(s, f"{s}@bench.example", t) for s, t in zip(slugs, tokens, strict=True)]

    def start(self) -> None:
        """gunicorn (2 workers × 4 threads, as the README scales out) and the worker.

        gunicorn reads the repository's gunicorn.conf.py as a deployment does: one listening
        socket per worker (SO_REUSEPORT), so wrk's connections are spread over both workers
        rather than all accepted by whichever woke first (one core for a whole case).
        """
        self._spawn(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--workers", "2", "--threads", "4"]
            + ["--bind", f"127.0.0.1:{self.port}", "--log-level", "warning"],
        )
        self._spawn("worker", [sys.executable, "-m", "flask", "--app", "wsgi", "worker"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if self.request("GET", HEALTHZ, timeout=2)[0] == 200:
                    break
            if self._procs["gunicorn"].poll() is not None:
                break
            time.sleep(0.2)
        else:
            raise SystemExit("gunicorn did not answer /healthz:\n" + self.log_tail("gunicorn"))
        if self._procs["gunicorn"].poll() is not None:
            raise SystemExit("gunicorn exited:\n" + self.log_tail("gunicorn"))
        while len(self.web_workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        log(f"gunicorn and the worker started on {self.url}")

    def web_workers(self) -> list[psutil.Process]:
        """gunicorn's worker processes (the master only supervises them)."""
        try:
            return psutil.Process(self._procs["gunicorn"].pid).children()
        except (KeyError, psutil.NoSuchProcess):
            return []

    def web_cpu(self) -> float:
        """CPU seconds (user + system) the web workers have used so far."""
        total = 0.0
        for worker in self.web_workers():
            try:
                times = worker.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def quiet(self, limit: float = 30.0) -> None:
        """Wait (at most ``limit`` s) until the web workers are idle: a slow case's requests
        still running after wrk stopped must not be charged to the next case."""
        deadline = time.monotonic() + limit
        workers = self.web_workers()
        while time.monotonic() < deadline:
            try:
                for w in workers:
                    w.cpu_percent(None)
                time.sleep(0.25)
                busy = sum(w.cpu_percent(None) for w in workers)
            except psutil.NoSuchProcess:
                return
            if busy < 10:
                return
        log(f"  the web workers were still busy after {limit:g} s; going on")

    def close(self) -> None:
        redis = self._embedded_redis()
        for name in ("gunicorn", "worker"):
            stop_group(self._procs.get(name))
        feeds = self._procs.get("feeds")
        if feeds is not None and feeds.stdin is not None:
            with contextlib.suppress(OSError):
                feeds.stdin.close()
        stop_group(feeds, grace=5)
        if redis is not None:
            # It stops itself once its last user is gone; should it linger, we end it.
            try:
                redis.wait(10)
            except psutil.TimeoutExpired:
                redis.terminate()
            except psutil.NoSuchProcess:
                pass
        if os.environ.get("BENCH_KEEP"):
            log(f"kept {self.root} (BENCH_KEEP): the logs and the database")
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def _embedded_redis(self) -> psutil.Process | None:
        """The supervisor of the embedded Redis our processes started, if one runs."""
        settings = self.root / "instance" / "redis.db.settings"
        try:
            process = psutil.Process(int(json.loads(settings.read_text())["supervisor"]))
            return process if "embedded_redis" in " ".join(process.cmdline()) else None
        except (OSError, ValueError, KeyError, psutil.Error):
            return None

    # -- HTTP -------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        token: str = "",
        timeout: float = 120,
    ) -> tuple[int, Any]:
        """One request; returns (status, JSON body or text). HTTP errors are answers too."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def api(self, method: str, path: str, host: Host, body: object = None) -> Any:
        status, answer = self.request(method, "/api/v1" + path, body, host.token)
        if status >= 300:
            raise SystemExit(f"{method} {path} for {host.slug}: {status} {answer}")
        return answer

    def add_meeting_type(self, host: Host, **fields: Any) -> None:
        self.api("POST", "/meeting-types", host, {"name": "Bench call", **fields})

    def connect_feeds(self, feeds: Sequence[tuple[Host, str]]) -> list[tuple[int, float]]:
        """Connect several hosts' feeds at once (the web has threads to spare)."""
        with ThreadPoolExecutor(max_workers=len(feeds) or 1) as pool:
            connected = list(pool.map(lambda pair: self.connect_feed(*pair), feeds))
        log(f"{len(feeds)} feeds connected through the API")
        return connected

    def connect_feed(self, host: Host, path: str) -> tuple[int, float]:
        """Connect ``feed_url + path`` as the host would; (connection id, seconds it took)."""
        started = time.perf_counter()
        answer = self.api(
            "POST", "/connections", host, {"provider": "ics", "url": self.feed_url + path}
        )
        return int(answer["id"]), time.perf_counter() - started

    def wait_synced(
        self, host: Host, connection: int, limit: float = 900, poll: float = 0.1
    ) -> float:
        """Poll until the worker has read the account (status ``ok``); seconds waited.

        Raises :class:`NotSynced` when the refresh failed, its job hit RQ's time limit
        (the status then stays "syncing"), or ``limit`` passed.
        """
        started = time.monotonic()
        what = f"{host.slug}'s connection {connection}"
        worker_log = self.root / "worker.log"
        seen = worker_log.stat().st_size if worker_log.exists() else 0
        while time.monotonic() - started < limit:
            answer = self.api("GET", f"/connections/{connection}", host)
            if answer["status"] == "ok":
                log(f"{what} synced by the worker")
                return time.monotonic() - started
            if answer["status"] in ("error", "needs_reconnect"):
                raise NotSynced(f"{what}: {answer['status']}, {answer['last_error']}")
            if self._procs["worker"].poll() is not None:
                raise SystemExit("the worker exited:\n" + self.log_tail("worker"))
            with open(worker_log, "rb") as fh:
                fh.seek(seen)
                if b"JobTimeoutException" in fh.read():
                    waited = time.monotonic() - started
                    raise NotSynced(
                        f"{what}: its refresh job hit RQ's time limit after {waited:.0f} s"
                    )
            time.sleep(poll)
        raise NotSynced(f"{what}: not synced in {limit:.0f} s")

    def cached_intervals(self) -> int | None:
        """Busy intervals in the free/busy cache (read-only SQL; None if the schema moved)."""
        path = self.root / "instance" / "kairos.db"
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                return int(db.execute("SELECT COUNT(*) FROM busy_block").fetchone()[0])
        except sqlite3.Error:
            return None

    def slots(self, host: Host, type_slug: str, first: str, last: str, tz: str) -> list[str]:
        status, answer = self.request(
            "GET", f"/api/v1/hosts/{host.slug}/{type_slug}/slots?start={first}&end={last}&tz={tz}"
        )
        if status != 200:
            raise SystemExit(f"slots of {host.slug}: {status} {answer}")
        return list(answer["slots"])


# ---------------------------------------------------------------- wrk


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: str = ""  # JSON, sent as application/json when present


@dataclass(frozen=True)
class Load:
    """One wrk run: throughput, latency percentiles (ms) and what went wrong."""

    requests: int
    seconds: float
    p50: float
    p90: float
    p95: float
    p99: float
    errors: int  # connect, read, write errors and timeouts
    status_errors: int  # answers >= 400
    web_cpu: float = 0.0  # CPU seconds the web workers spent meanwhile (user + system)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """The web workers' CPU per answered request, in ms: what a request costs the
        server, which other programs on the machine move far less than throughput."""
        return 1000 * self.web_cpu / self.requests if self.requests else 0.0


LUA = r"""
local specs = {
%(specs)s
}
local n = #specs
local reqs = {}
local index = 0
local step = 1
local threads = 0

function setup(thread)
  thread:set("index", threads)
  threads = threads + 1
end

function init(args)
  step = tonumber(args[1])
  index = index + tonumber(args[2])
  local json = {["Content-Type"] = "application/json"}
  for k, s in ipairs(specs) do
    if s[3] == "" then
      reqs[k] = wrk.format(s[1], s[2])
    else
      reqs[k] = wrk.format(s[1], s[2], json, s[3])
    end
  end
  start()
end

function request()
  local r = reqs[index %% n + 1]
  index = index + step
  return r
end

function start()
end
%(drain)s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk-result %%d %%d %%d %%d %%d %%d %%d %%f %%f %%f %%f\n",
    summary.duration, summary.requests, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99)))
end
"""
# Send for %(window)d s (or until each request was sent once), then send nothing more
# (a delay of an hour) and say when the last answer is in; the bench then stops wrk with
# SIGINT, which ends the run there with its true duration. So every request sent is
# answered and timed, however slow, and none is left running in the app to weigh on the
# next case.
DRAIN = r"""
local deadline = 0
local sent = 0
local seen = 0
local stopped = false

function start()
  deadline = os.time() + %(window)d
end

local function check()
  if stopped and seen == sent then
    io.write("wrk-drained\n")
    io.flush()
  end
end

-- Called once before each request (wrk's own check of the script calls request() once
-- more, unsent, so requests are counted here).
function delay()
  if sent >= n or os.time() >= deadline then
    if not stopped then
      io.write(string.format("wrk-sent %%d\n", sent))
      io.flush()
    end
    stopped = true
    check()
    return 3600000
  end
  sent = sent + 1
  return 0
end

function response(status, headers, body)
  seen = seen + 1
  check()
end
"""


def _lua_string(text: str) -> str:
    assert "]==]" not in text
    return f"[==[{text}]==]"


def _apt_get(*args: str) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = subprocess.DEVNULL
    return subprocess.run(["apt-get", *args], env=env, stdout=quiet, stderr=quiet).returncode == 0


def require_wrk() -> str:
    """wrk's path; installed from Debian when missing and we may, else a clear exit."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing: apt-get install -y wrk")
        if not _apt_get("install", "-y", "wrk"):
            _apt_get("update")
            _apt_get("install", "-y", "wrk")
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "wrk is not installed and could not be installed here; the HTTP benchmarks need it "
        "as their load generator. Install it (Debian/Ubuntu: `sudo apt-get install wrk`) "
        "and run again."
    )


WRK_THREADS = 1  # one C thread drives 16 connections easily and leaves the cores to the app
DRAIN_SECONDS = 120  # the longest a draining case waits for its last answers


def wrk(
    base_url: str,
    requests: Sequence[Request],
    seconds: float,
    connections: int = 16,
    offset: int = 0,
    drain: bool = False,
    scratch: Path | None = None,
) -> Load:
    """Run wrk for ``seconds``, cycling through ``requests`` from ``offset``.

    ``drain``: stop sending after ``seconds`` (or once every request went out once) and
    wait for every answer (at most :data:`DRAIN_SECONDS` more), for cases slower than a
    round. wrk's error counts mean nothing then (the idle connections time out, and the
    server closes them), so the errors are the requests sent but never answered.
    """
    binary = require_wrk()
    specs = ",\n".join(
        f"{{{_lua_string(r.method)}, {_lua_string(r.path)}, {_lua_string(r.body)}}}"
        for r in requests
    )
    window = max(1, round(seconds))
    lua = LUA % {"specs": specs, "drain": DRAIN % {"window": window} if drain else ""}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", dir=scratch, delete=False) as fh:
        fh.write(lua)
        script = fh.name
    limit = window + DRAIN_SECONDS if drain else seconds
    # --timeout also bounds the latencies wrk can record: a slower answer is only counted.
    args = [binary, "-t", str(WRK_THREADS), "-c", str(connections), "-d", f"{limit:g}s"]
    args += ["--timeout", f"{DRAIN_SECONDS if drain else 60}s", "--latency", "-s", script]
    args += [base_url, "--", str(WRK_THREADS), str(offset)]
    output: list[str] = []
    drained = sent = 0
    try:
        with subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                output.append(line)
                if line.startswith("wrk-sent "):
                    sent += int(line.split()[1])
                if line.startswith("wrk-drained"):
                    drained += 1
                    if drained == WRK_THREADS:
                        proc.send_signal(signal.SIGINT)
    finally:
        os.unlink(script)
    result = next((x for x in output if x.startswith("wrk-result ")), None)
    if result is None:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{''.join(output)}")
    f = result.split()[1:]
    duration, count, connect, read, write, timeouts, status = (int(x) for x in f[:7])
    p50, p90, p95, p99 = (float(x) / 1000 for x in f[7:])
    errors = connect + read + write + timeouts
    if drain:
        errors = max(0, sent - count) if sent else 0
        if drained < WRK_THREADS:
            log(f"  answers still missing after {limit} s: the slowest are not counted")
    return Load(count, duration / 1e6, p50, p90, p95, p99, errors, status)


@dataclass(frozen=True)
class Case:
    """A named list of requests. ``once``: each may be sent once only (bookings), so every
    round gets its own disjoint share, and the round waits for all its answers (see
    :func:`wrk`'s ``drain``); otherwise rounds start at different places. ``connections``:
    the offered load of this case (wrk's closed loop: each connection sends its next request
    when its answer is in), when it is not interleave's."""

    name: str
    requests: Sequence[Request]
    once: bool = False
    connections: int | None = None  # wrk's connections; None: interleave's default


def interleave(
    instance: Instance, cases: Sequence[Case], rounds: int, seconds: float, connections: int = 16
) -> dict[str, list[Load]]:
    """Each case for ``seconds`` in turn, ``rounds`` times; the loads per case, by round."""
    results: dict[str, list[Load]] = {c.name: [] for c in cases}
    for r in range(rounds):
        for case in cases:
            if case.once:
                share, offset = list(case.requests[r::rounds]), 0
            else:
                share, offset = list(case.requests), r * len(case.requests) // rounds
            conns = case.connections or connections
            cpu = instance.web_cpu()
            load = wrk(instance.url, share, seconds, conns, offset, case.once, instance.root)
            load = replace(load, web_cpu=instance.web_cpu() - cpu)
            if case.once and load.requests >= len(share):
                log(f"  {case.name}: all {len(share)} distinct requests used; more would help")
            results[case.name].append(load)
            log(
                f"  round {r + 1} {case.name}: {load.rps:8.1f} req/s, p50 {load.p50:8.1f} ms, "
                f"p95 {load.p95:8.1f} ms, web CPU {load.cpu_ms:6.2f} ms/request, "
                f"{load.status_errors} >= 400, {load.errors} errors"
            )
            instance.quiet()
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def per_round(results: dict[str, list[Load]], name: str, base: str, figure: str) -> Iterator[float]:
    """``figure`` (an attribute of :class:`Load`) of ``name`` over ``base``, per round."""
    for case, baseline in zip(results[name], results[base], strict=True):
        yield getattr(case, figure) / getattr(baseline, figure)


def months_ahead(count: int) -> list[str]:
    """``YYYY-MM`` of this month and the next ``count - 1``."""
    first = datetime.now(UTC).date().replace(day=1)
    out = []
    for _ in range(count):
        out.append(f"{first:%Y-%m}")
        first = (first + timedelta(days=32)).replace(day=1)
    return out


def month_days(month: str) -> tuple[str, str]:
    """The first and last day of ``YYYY-MM``."""
    first = datetime.strptime(month + "-01", "%Y-%m-%d").date()
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return first.isoformat(), last.isoformat()


def shuffled(items: list[Request], seed: int) -> list[Request]:
    """A fixed shuffle: neighbours in the rotation differ in host, window and zone."""
    random.Random(seed).shuffle(items)
    return items


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "feeds":
        serve_feeds(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "cli":
        run_cli(sys.argv[2])
    else:
        sys.exit("usage: harness.py feeds SPEC | harness.py cli COMMANDS (used by the benches)")
