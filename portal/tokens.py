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

from flask import current_app


def derived_token(purpose: str, *parts: object, secret_key: str | None = None) -> str:
    """A 256-bit URL-safe token for ``purpose`` bound to ``parts`` (43 characters).

    ``secret_key`` defaults to the app's; a restore passes the candidate key to check it.
    """
    key = (secret_key if secret_key is not None else current_app.config["SECRET_KEY"]).encode()
    message = ":".join([purpose, *(str(p) for p in parts)]).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
