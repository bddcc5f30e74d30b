"""Real local servers for calendar tests: Radicale (CalDAV), an ICS feed server, a TCP proxy.

They run on 127.0.0.1 with temporary state; the fixtures in tests/conftest.py
start them. They speak real HTTP, so adapters are tested end to end; the proxy
takes a server "down" without stopping it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import niquests

from tests.support.processes import free_port, stop_process


class RadicaleServer:
    """``python -m radicale`` with a temporary store and an htpasswd file."""

    USERS = {"alice": "alice-secret", "bob": "bob-secret"}

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None

    def start(self) -> RadicaleServer:
        users = self.root / "users"
        users.write_text("".join(f"{u}:{p}\n" for u, p in self.USERS.items()))
        config = self.root / "config"
        config.write_text(
            "\n".join(
                [
                    "[server]",
                    f"hosts = 127.0.0.1:{self.port}",
                    "[auth]",
                    "type = htpasswd",
                    f"htpasswd_filename = {users}",
                    "htpasswd_encryption = plain",
                    "delay = 0",
                    "[rights]",
                    "type = owner_only",
                    "[storage]",
                    f"filesystem_folder = {self.root / 'collections'}",
                    "[logging]",
                    "level = warning",
                    "mask_passwords = True",
                    "[web]",
                    "type = none",
                    "",
                ]
            )
        )
        log = open(self.root / "radicale.log", "wb")  # noqa: SIM115 (kept open for the process)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError((self.root / "radicale.log").read_text()) from None
                time.sleep(0.05)
        raise RuntimeError("radicale did not start")

    def stop(self) -> None:
        stop_process(self.process, 10)

    def add_user(self, name: str | None = None, password: str | None = None) -> tuple[str, str]:
        """A fresh account (Radicale re-reads htpasswd), so tests do not share calendars."""
        name = name or "u" + uuid.uuid4().hex[:10]
        password = password or uuid.uuid4().hex
        self.USERS = {**self.USERS, name: password}
        with open(self.root / "users", "a") as fh:
            fh.write(f"{name}:{password}\n")
        return name, password

    # -- direct access, without the adapter -------------------------------

    def http(self, user: str = "alice") -> niquests.Session:
        s = niquests.Session()
        s.auth = (user, self.USERS[user])
        return s

    def make_calendar(self, user: str = "alice", name: str = "Work", tz: str | None = None) -> str:
        """MKCALENDAR a fresh collection; returns its absolute URL."""
        url = f"{self.url}{user}/{uuid.uuid4().hex[:12]}/"
        tz_prop = ""
        if tz:
            vtz = (
                f"BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:{tz}\r\nEND:VTIMEZONE\r\nEND:VCALENDAR"
            )
            tz_prop = f"<C:calendar-timezone>{vtz}</C:calendar-timezone>"
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"<D:set><D:prop><D:displayname>{name}</D:displayname>{tz_prop}"
            '<C:supported-calendar-component-set><C:comp name="VEVENT"/>'
            "</C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>"
        )
        with self.http(user) as s:
            s.request("PROPFIND", f"{self.url}{user}/", headers={"Depth": "0"})  # creates home
            r = s.request("MKCALENDAR", url, data=body.encode())
            assert r.status_code == 201, (r.status_code, r.text)
        return url

    def put(self, calendar_url: str, name: str, ics: str, user: str = "alice") -> None:
        with self.http(user) as s:
            r = s.put(
                calendar_url + name,
                data=ics.encode(),
                headers={"Content-Type": "text/calendar; charset=utf-8"},
            )
            assert r.status_code in (201, 204), (r.status_code, r.text)

    def delete(self, url: str, user: str = "alice") -> None:
        with self.http(user) as s:
            s.delete(url)

    def hrefs(self, calendar_url: str, user: str = "alice") -> list[str]:
        """Names of the resources in a calendar (PROPFIND depth 1)."""
        import re

        with self.http(user) as s:
            r = s.request(
                "PROPFIND",
                calendar_url,
                headers={"Depth": "1"},
                data=b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/></prop>'
                b"</propfind>",
            )
        hrefs = re.findall(r"<[^>]*href>([^<]+)</[^>]*href>", r.text)
        base = calendar_url.split(str(self.port), 1)[1]
        return sorted(h.rsplit("/", 1)[-1] for h in hrefs if h != base)

    def get(self, url: str, user: str = "alice") -> str:
        with self.http(user) as s:
            r = s.get(url)
            assert r.status_code == 200, (r.status_code, r.text)
            return r.text


def shut(*sockets: socket.socket, close: bool = False) -> None:
    """Shut both directions of each socket (waking a thread blocked on it), then close it."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        if close:
            sock.close()


def answer(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    """Send one complete HTTP answer from a ``BaseHTTPRequestHandler``."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class TcpProxy:
    """Forwards a local port to a server; ``down()`` makes the server unreachable.

    Tests use it to simulate a provider outage without stopping the shared
    server: connections are refused while down and work again after ``up()``.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not
            shut(listener, close=True)
        shut(*conns, close=True)

    def rewrite(self, url: str) -> str:
        """The same URL reached through the proxy."""
        return url.replace(f":{self.target_port}/", f":{self.port}/")

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                if self._listener is not listener:  # went down meanwhile
                    client.close()
                    return
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port))
                except OSError:
                    client.close()
                    continue
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            shut(src, dst)


@dataclass
class FeedServer:
    """Serves ICS bodies from memory with ETags; counts requests; can require a password."""

    feeds: dict[str, bytes] = field(default_factory=dict)
    passwords: dict[str, tuple[str, str]] = field(default_factory=dict)  # path → (user, pw)
    requests: list[tuple[str, int]] = field(default_factory=list)  # (path, status)
    delay: float = 0.0

    def start(self) -> FeedServer:
        feed = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                if feed.delay:
                    time.sleep(feed.delay)
                self._answer(self.path.split("?", 1)[0])

            def _answer(self, path: str) -> int:
                if path in feed.passwords:
                    user, pw = feed.passwords[path]
                    token = base64.b64encode(f"{user}:{pw}".encode()).decode()
                    if self.headers.get("Authorization", "") != f"Basic {token}":
                        return self._send(401, b"", {"WWW-Authenticate": 'Basic realm="feed"'})
                if path.startswith("/redirect/"):
                    return self._send(302, b"", {"Location": "/" + path[len("/redirect/") :]})
                body = feed.feeds.get(path)
                if body is None:
                    return self._send(404, b"not found")
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    return self._send(304, b"", {"ETag": etag})
                return self._send(200, body, {"ETag": etag, "Content-Type": "text/calendar"})

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> int:
                # Recorded before the answer leaves: once the client has it, the list is current.
                feed.requests.append((self.path.split("?", 1)[0], status))
                answer(self, status, body, headers)
                return status

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def publish(self, path: str, ics: str | bytes) -> str:
        self.feeds[path] = ics.encode() if isinstance(ics, str) else ics
        return self.url + path
