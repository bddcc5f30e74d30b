"""Server processes of the tests: a free port, starting one that announces its port, stopping any.

The provider fakes (tests/fakes/) run as ``python -m tests.fakes.<name> --port 0``
and print ``PORT <n>`` as their first line; Radicale and the worker processes
are stopped the same way, so a test's server never outlives it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_url() -> str:
    """An http URL where nothing listens (connection refused at once)."""
    return f"http://127.0.0.1:{free_port()}/"


def stop_process(process: subprocess.Popen | None, grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; the pipe it announced on is closed."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process and process.stdout:
        process.stdout.close()


def start_announced(module: str, *args: str) -> tuple[subprocess.Popen, int]:
    """Run ``python -m <module> --port 0 <args>`` from the repository; returns it and its port.

    The server binds any free port and names it on its first line (``PORT <n>``),
    so two runs on one machine never race for a port.
    """
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        stop_process(process, 10)
        raise RuntimeError(f"{module} did not start: {line!r}")
    return process, int(line.split()[1])
