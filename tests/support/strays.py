"""Fail the run when a process it started outlives it (a pytest plugin, see tests/conftest.py).

Tests start real servers and workers; one left running holds ports, sockets
and CPU on a machine shared with other runs, and the next run may even attach
to it. At the end of the session this looks for redis-server, the embedded
Redis supervisor and RQ worker/scheduler processes that belong to *this*
session: descendants of the pytest process, or processes whose working
directory or command line lies under this session's basetemp (a daemonized
redis-server is re-parented to init but keeps its data folder as cwd).
Processes of other people's concurrent runs match neither and are left alone.
"""

from __future__ import annotations

import os
import time

import psutil
import pytest

GRACE_SECONDS = 10  # an embedded server stops within a poll of its last user leaving


def _kind(proc: psutil.Process) -> str:
    """What sort of process this is, or "" when not one we watch for."""
    try:
        name = proc.name()
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""
    if name.startswith("redis-server") or "redis-server" in cmdline.split(" ", 1)[0]:
        return "redis-server"
    if "portal.runtime.embedded_redis" in cmdline:
        return "embedded Redis supervisor"
    if cmdline.startswith("rq:") or name.startswith("rq:"):
        return "RQ worker/scheduler"
    words = cmdline.split()
    if "worker" in words and ("flask" in cmdline or "rq" in words[:3]):
        return "RQ worker"
    return ""


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _under(proc: psutil.Process, root: str) -> bool:
    try:
        if (proc.cwd() + os.sep).startswith(root):
            return True
        return any(root in part for part in proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def strays(basetemp: str | None) -> list[tuple[psutil.Process, str]]:
    """This session's watched processes that are still alive."""
    me = psutil.Process()
    found = {p.pid: p for p in me.children(recursive=True)}
    if basetemp:
        root = os.path.realpath(basetemp) + os.sep
        for proc in psutil.process_iter():
            if proc.pid != me.pid and proc.pid not in found and _under(proc, root):
                found[proc.pid] = proc
    out = []
    for proc in found.values():
        kind = _kind(proc)
        if kind and _alive(proc):
            out.append((proc, kind))
    return out


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from portal.runtime.queue import shutdown_embedded

    shutdown_embedded()  # servers this process itself still uses (the session's Redis)
    factory = getattr(session.config, "_tmp_path_factory", None)
    basetemp = str(factory.getbasetemp()) if factory is not None else None
    deadline = time.monotonic() + GRACE_SECONDS
    left = strays(basetemp)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = strays(basetemp)
    if not left:
        return
    lines = []
    for proc, kind in left:
        try:
            lines.append(f"  pid {proc.pid} ({kind}): {' '.join(proc.cmdline())[:200]}")
        except psutil.Error:
            lines.append(f"  pid {proc.pid} ({kind})")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "processes started by this test session are still running:\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_sep("=", "stray processes", red=True)
        reporter.write_line(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
