"""The one-command portal recovers the embedded Redis after a run that was killed."""

from __future__ import annotations

import json
import os

from portal.serve import _embedded_redis


def test_stale_registry_from_a_killed_run_is_replaced(tmp_path):
    """The record names a live pid (a zombie, after a kill) and a socket that is gone."""
    path = tmp_path / "redis.db"
    registry = tmp_path / "redis.db.settings"
    (tmp_path / "gone.pid").write_text(str(os.getpid()))
    registry.write_text(
        json.dumps(
            {
                "pidfile": str(tmp_path / "gone.pid"),
                "unixsocket": str(tmp_path / "gone" / "redis.socket"),
                "dbdir": str(tmp_path),
                "dbfilename": "redis.db",
            }
        )
    )
    server = _embedded_redis(path)
    try:
        assert server.ping()
        assert json.loads(registry.read_text())["unixsocket"] == server.socket_file
    finally:
        server.shutdown(nosave=True)
