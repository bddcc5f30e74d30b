"""The embedded Redis: one server per instance folder, recovered after a killed run."""

from __future__ import annotations

import json
import os

import redis

from portal.runtime.embedded_redis import attach, detach


def test_stale_registry_from_a_killed_run_is_replaced(tmp_path):
    """The record names a live pid (a zombie, after a kill) and a socket that is gone."""
    path = tmp_path / "redis.db"
    registry = tmp_path / "redis.db.settings"
    registry.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "unixsocket": str(tmp_path / "gone" / "redis.socket"),
                "dbdir": str(tmp_path),
                "dbfilename": "redis.db",
            }
        )
    )
    socket = attach(str(path))
    try:
        client = redis.Redis(unix_socket_path=socket)
        assert client.ping()
        client.close()
        assert json.loads(registry.read_text())["unixsocket"] == socket
    finally:
        detach(str(path))
    assert not registry.exists()  # the last user gone, the server stopped
    assert not os.path.exists(socket)
