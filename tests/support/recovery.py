"""Real worker processes, and servers that stall on cue, for the crash-recovery tests.

``WorkerProcess`` runs ``flask --app wsgi worker`` exactly as production does,
configured through the environment; tests SIGKILL it mid-job and start another.
``StallingProxy`` forwards to a real server (Radicale) but holds the answer to
a PUT once the server has it, so the kill lands after the provider wrote and
before we recorded it. ``StallingInbox`` is an SMTP server (aiosmtpd) that
holds the conversation at RCPT for chosen recipients.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.app import ENCRYPTION_KEY
from tests.support.processes import free_port, stop_process
from tests.support.servers import shut

REPO = Path(__file__).resolve().parents[2]


def wait_until(check: Callable[[], object], timeout: float, what: str, every: float = 0.2):
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def app_env(tmp_path: Path, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a Kairos process sharing the test app's database and keys."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAIROS_", "REDIS_URL", "DATABASE_URL", "SMTP_URL"))
    }
    env.update(
        {
            "KAIROS_INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "test-secret",
            "KAIROS_ENCRYPTION_KEYS": ENCRYPTION_KEY,
            "KAIROS_ALLOW_PRIVATE_URLS": "1",
            "KAIROS_RATELIMIT": "0",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(extra)
    return env


class WorkerProcess:
    """``flask --app wsgi worker`` as a real process, logging to a file."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        out = open(self.log, "ab")  # noqa: SIM115 (handed to the child)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
            cwd=REPO,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """kill -9, as an OOM killer or a lost host would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        stop_process(self.process, 20)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


class StallingProxy:
    """A TCP proxy to ``target_port`` that, while armed, withholds the answer to a PUT.

    The request itself goes through, so the server does the write; only its
    successful answer waits (until ``release()``). ``stalled`` is set once one is held.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.armed = threading.Event()
        self.stalled = threading.Event()
        self.released = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def rewrite(self, url: str) -> str:
        return url.replace(f":{self.target_port}/", f":{self.port}/")

    def release(self) -> None:
        self.armed.clear()
        self.released.set()

    def close(self) -> None:
        self.release()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            held = threading.Event()  # this connection carried a PUT while armed
            threading.Thread(target=self._up, args=(client, upstream, held), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, held), daemon=True).start()

    def _up(self, src: socket.socket, dst: socket.socket, held: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if self.armed.is_set() and data.startswith(b"PUT "):
                    held.set()
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _down(self, src: socket.socket, dst: socket.socket, held: threading.Event) -> None:
        try:
            while data := src.recv(65536):
                # Only a success is held: a 401 asking for credentials (the client then
                # repeats the PUT with them) and "100 Continue" pass.
                done = data.startswith(b"HTTP/") and data[9:10] == b"2"
                if held.is_set() and done and not self.released.is_set():
                    self.stalled.set()
                    self.released.wait()
                    return  # the client that asked is gone by now
                dst.sendall(data)
        except OSError:
            pass
        finally:
            shut(src, dst, close=True)


class StallingInbox:
    """aiosmtpd handler: keeps delivered messages; holds RCPT for ``stall_for`` recipients."""

    def __init__(self, stall_for: set[str]):
        self.stall_for = stall_for
        self.messages: list[tuple[list[str], bytes]] = []
        self.stalled = threading.Event()
        self.released = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.stall_for and not self.released.is_set():
            self.stalled.set()
            while not self.released.is_set():
                await asyncio.sleep(0.05)
            return "451 try again later"  # the client that asked was killed meanwhile
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[bytes]:
        return [body for rcpts, body in self.messages if address in rcpts]
