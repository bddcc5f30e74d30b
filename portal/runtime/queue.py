"""Redis and RQ: one connection per process, to a real or an embedded server.

With ``REDIS_URL`` unset, the embedded server of the instance folder is used
(``portal.runtime.embedded_redis``): the first process to need it starts it, every other
process (web, worker) opening the same database file attaches to that one
server, and it stops when the last of them ends.
"""

from __future__ import annotations

import threading

import redis
from flask import current_app
from rq import Queue
from rq.serializers import JSONSerializer

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def connect(url: str, embedded_path: str) -> redis.Redis:
    """Return a shared client for ``url``, or for the embedded server when empty."""
    key = url or f"embedded:{embedded_path}"
    with _lock:
        client = _clients.get(key)
        if client is None:
            if url:
                client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
            else:
                from portal.runtime.embedded_redis import attach

                socket = attach(embedded_path)
                client = redis.Redis(unix_socket_path=socket, socket_connect_timeout=2)
            _clients[key] = client
        return client


def get_redis() -> redis.Redis:
    cfg = current_app.config
    return connect(cfg["REDIS_URL"], cfg["REDIS_EMBEDDED_PATH"])


def get_queue() -> Queue:
    return Queue(
        current_app.config["QUEUE_NAME"],
        connection=get_redis(),
        serializer=JSONSerializer,
        default_timeout=120,
    )


def forget(url: str = "", embedded_path: str = "") -> None:
    """Drop a cached client (tests that stop and restart a server)."""
    with _lock:
        _clients.pop(url or f"embedded:{embedded_path}", None)


def shutdown_embedded() -> None:
    """Let go of the embedded servers this process uses; the last user's going stops them.

    For scripts that remove their folder afterwards: this waits until a server
    nobody else uses has stopped.
    """
    from portal.runtime.embedded_redis import detach_all

    with _lock:
        for key in [k for k in _clients if k.startswith("embedded:")]:
            _clients.pop(key).close()
    detach_all()
