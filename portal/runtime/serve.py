"""``python -m portal.runtime.serve``: the one-command portal (web + worker), used by manage.py run.

Migrates the database, starts the embedded Redis when ``REDIS_URL`` is unset
(attached, so the server lives at least as long as this process, and stops
once this process and its children are gone: ``portal.runtime.embedded_redis``), then
runs gunicorn and an RQ worker side by side until Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from portal.config import default_instance_path
from portal.runtime.embedded_redis import attach, detach

ROOT = Path(__file__).resolve().parents[2]


def _stop_on_sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt  # run the same shutdown as Ctrl-C: children and Redis stop too


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    host = os.environ.get("KAIROS_HOST", "127.0.0.1")
    port = os.environ.get("PORT", "5000")
    env = dict(os.environ)
    env.setdefault("KAIROS_BASE_URL", f"http://{host}:{port}")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.check_call([*flask, "db", "upgrade"], cwd=ROOT, env=env)
    embedded = ""
    if not env.get("REDIS_URL"):
        instance = Path(env.get("KAIROS_INSTANCE_PATH") or default_instance_path())
        embedded = str(instance / "redis.db")
        print(f"kairos: embedded Redis at {attach(embedded)}", flush=True)
    procs = [
        subprocess.Popen([*flask, "worker"], cwd=ROOT, env=env),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "wsgi:app",
                "--bind",
                f"{host}:{port}",
                "--workers",
                env.get("WEB_CONCURRENCY", "2"),
                "--threads",
                "4",
                *argv,
            ],
            cwd=ROOT,
            env=env,
        ),
    ]
    print(
        f"kairos: running at {env['KAIROS_BASE_URL']}/ (first run: /setup). Ctrl-C stops.",
        flush=True,
    )
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if embedded:
            detach(embedded)  # the last user gone: its supervisor saves and stops it
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
