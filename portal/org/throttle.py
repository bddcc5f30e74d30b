"""Signing in: the password check behind a throttle counting attempts per account and
per client address (:func:`authenticate`, the one service the sign-in page calls).

Refuses early instead of slowing down: once an account or an address has used up
its attempts for the window, every attempt is answered 429 with ``Retry-After``
before any password is checked, so an attacker holds no server thread and learns
nothing. A successful sign-in gives the account its attempts back. The counts
live in the app's Redis, so every web process shares them; while Redis is down
each process counts in its own memory rather than failing the sign-in (or not
counting at all).

An unknown e-mail is counted exactly like a known one, and costs one password hash
like a known one: neither the answers nor their timing tell which accounts exist.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
import time

from flask import current_app
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.security import check_password_hash, generate_password_hash

from portal.models import User

# After Redis fails, count in memory this long before asking Redis again, so a dead
# Redis costs one connect timeout per half minute, not one per sign-in.
_REDIS_RETRY_SECONDS = 30.0
# Checked when the e-mail is unknown, so both answers cost one password hash.
_DUMMY_HASH = generate_password_hash("kairos-timing-equaliser")


class TooManyAttempts(Exception):
    """Refused before any password was checked; try again in ``wait`` seconds."""

    def __init__(self, wait: int):
        super().__init__(f"too many sign-in attempts; retry in {wait} seconds")
        self.wait = wait


class _Counters:
    """The two limiters of one app: on its Redis, and in memory while Redis is away."""

    def __init__(self, redis_storage: Storage):
        self.redis = FixedWindowRateLimiter(redis_storage)
        self.memory = FixedWindowRateLimiter(MemoryStorage())
        self.redis_errors = redis_storage.base_exceptions
        self.redis_down_until = 0.0
        self.lock = threading.Lock()

    def run(self, op: str, item: RateLimitItem, key: str):
        """Call the limiter method ``op`` on Redis, or in memory while Redis is away."""
        if time.monotonic() >= self.redis_down_until:
            try:
                return getattr(self.redis, op)(item, key)
            except self.redis_errors as exc:
                with self.lock:
                    self.redis_down_until = time.monotonic() + _REDIS_RETRY_SECONDS
                current_app.logger.warning(
                    "sign-in throttle: Redis unavailable (%s); counting in memory", exc
                )
        return getattr(self.memory, op)(item, key)


def _counters() -> _Counters:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    counters = app.extensions.get("kairos_login_throttle")
    if counters is None:
        from portal.extensions import limiter_storage_uri

        uri = app.config.get("RATELIMIT_STORAGE_URI") or limiter_storage_uri(app)
        storage = storage_from_string(
            uri, key_prefix="kairos-login", socket_connect_timeout=1, socket_timeout=1
        )
        # A sync URI (redis://, memory://) gives a sync storage; async:// ones are never set.
        assert isinstance(storage, Storage)
        counters = app.extensions["kairos_login_throttle"] = _Counters(storage)
    return counters


def _account_key(email: str) -> str:
    # Hashed: Redis need not hold a list of the e-mail addresses people tried.
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"account:{digest}"


def _address_key(addr: str | None) -> str:
    """The client address; IPv6 by its /64, which one subscriber usually holds whole."""
    try:
        ip = ipaddress.ip_address(addr or "")
    except ValueError:
        return "address:unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"address:{ip.ipv4_mapped}"
        return f"address:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"address:{ip}"


def _limits(email: str, addr: str | None) -> list[tuple[RateLimitItem, str]]:
    cfg = current_app.config
    return [
        (parse(cfg["LOGIN_ACCOUNT_LIMIT"]), _account_key(email)),
        (parse(cfg["LOGIN_ADDRESS_LIMIT"]), _address_key(addr)),
    ]


def check(email: str, addr: str | None) -> int | None:
    """Count this sign-in attempt; seconds to wait when it is over a limit, else None.

    Counting before the password is checked (one atomic increment per key) means
    parallel guesses cannot slip past the limit between a look and a write.
    """
    counters = _counters()
    waits = []
    for item, key in _limits(email, addr):
        if not counters.run("hit", item, key):
            stats = counters.run("get_window_stats", item, key)
            # Redis keeps expiries in whole seconds (its TTL is truncated), so the window may
            # end up to a second after reset_time: a client that waits Retry-After must not
            # be refused again (never more than the window itself, which is all a wait can be).
            wait = math.ceil(stats.reset_time - time.time()) + 1
            waits.append(max(1, min(item.get_expiry(), wait)))
    return max(waits) if waits else None


def reset(email: str) -> None:
    """A successful sign-in clears the account's count (the address keeps its own)."""
    item, key = _limits(email, None)[0]
    _counters().run("clear", item, key)


def authenticate(email: str, password: str, addr: str | None) -> User | None:
    """The active host these credentials open, or None; :class:`TooManyAttempts` when the
    account or the address ``addr`` has used up its attempts for now."""
    email = email.strip().lower()
    wait = check(email, addr)
    if wait is not None:
        raise TooManyAttempts(wait)
    user = User.by_email(email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not (user.check_password(password) and user.is_active):
        return None
    reset(email)
    return user
