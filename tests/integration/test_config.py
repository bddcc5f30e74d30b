"""Configuration from the environment, the instance folder, and proxy headers."""

from __future__ import annotations

import pytest
from flask import request

from portal.config import Config
from tests.support.app import make_app


def test_generated_secrets_persist_in_the_instance_folder(tmp_path):
    first = Config(env={}, instance_path=str(tmp_path / "inst"))
    again = Config(env={}, instance_path=str(tmp_path / "inst"))
    assert first.SECRET_KEY == again.SECRET_KEY and len(first.SECRET_KEY) >= 32
    assert first.ENCRYPTION_KEYS == again.ENCRYPTION_KEYS
    assert (tmp_path / "inst" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert f"sqlite:///{tmp_path / 'inst' / 'kairos.db'}" == first.DATABASE_URL
    assert first.REDIS_URL == ""  # embedded


def test_environment_overrides(tmp_path):
    cfg = Config(
        env={
            "SECRET_KEY": "s",
            "KAIROS_ENCRYPTION_KEYS": "new, old",
            "DATABASE_URL": "postgresql://u@h/db",
            "REDIS_URL": "redis://r:6379/0",
            "KAIROS_BOOKING_RATE_LIMIT": "3/minute",
            "KAIROS_PROXY_HOPS": "1",
            "KAIROS_MAX_BODY_BYTES": "not a number",
        },
        instance_path=str(tmp_path),
    )
    assert cfg.SECRET_KEY == "s" and cfg.ENCRYPTION_KEYS == ["new", "old"]
    assert cfg.DATABASE_URL.startswith("postgresql://") and cfg.REDIS_URL.startswith("redis://")
    assert cfg.BOOKING_RATE_LIMIT == "3/minute" and cfg.PROXY_HOPS == 1
    assert cfg.MAX_CONTENT_LENGTH == 64 * 1024  # a bad number falls back to the default
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    ("hops", "addr", "scheme"), [(0, "127.0.0.1", "http"), (1, "203.0.113.9", "https")]
)
def test_proxy_headers_trusted_only_when_configured(tmp_path, redis_url, hops, addr, scheme):
    app = make_app(tmp_path, redis_url, PROXY_HOPS=hops)

    @app.get("/_probe")
    def _probe():
        return f"{request.remote_addr} {request.scheme}"

    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    assert app.test_client().get("/_probe", headers=headers).text == f"{addr} {scheme}"
