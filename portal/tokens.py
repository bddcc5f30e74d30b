"""Secrets in links (manage, invite, password reset, calendar feed), made one way.

Each is an HMAC of the app's secret key over a purpose and a row's random salt:
the database keeps only ``models.hash_token(token)``, yet jobs (e-mails) can
rebuild a link without the plain secret ever being stored. Changing the
secret key, or the salt, retires every such link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app

from portal.models import hash_token

# Longer than any token this app makes: a longer one is refused before it is hashed.
MAX_TOKEN = 200

Row = TypeVar("Row")


def derived_token(purpose: str, *parts: object, secret_key: str | None = None) -> str:
    """A 256-bit URL-safe token for ``purpose`` bound to ``parts`` (43 characters).

    ``secret_key`` defaults to the app's; a restore passes the candidate key to check it.
    """
    key = (secret_key if secret_key is not None else current_app.config["SECRET_KEY"]).encode()
    message = ":".join([purpose, *(str(p) for p in parts)]).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def find_by_token(
    model: type[Row], hash_field: Any, token: str, rebuild: Callable[[Row], str], *where: Any
) -> Row | None:
    """The row of ``model`` behind a link's ``token``, or None.

    The stored hash finds the row; ``rebuild`` then makes the row's token as it
    is now ("" when the link is no longer good: used, expired…), compared in
    constant time, so a link dies when what it was derived from changes (the
    secret key, a password) even though its hash is still stored.
    """
    if not token or len(token) > MAX_TOKEN:
        return None
    row = model.get_or_none(hash_field == hash_token(token), *where)  # type: ignore[attr-defined]
    if row is None:
        return None
    expected = rebuild(row)
    return row if expected and hmac.compare_digest(expected, token) else None
