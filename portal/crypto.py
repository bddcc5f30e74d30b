"""Secrets at rest: MultiFernet over ``KAIROS_ENCRYPTION_KEYS`` (newest first).

Every ciphertext carries the identity of the row it belongs to
(``{"row": "connection:42", "data": …}`` inside the Fernet token) and
:func:`decrypt` refuses a token read from any other row, so copying one
account's secret into another row (a SQL injection elsewhere, a careless
restore) yields an error instead of someone else's credentials.

Rotation: put a new key first in ``KAIROS_ENCRYPTION_KEYS``, keep the old
ones after it, run ``flask --app wsgi keys rotate`` (re-encrypts every
secret under the newest key), then drop the old keys.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from peewee import Model

from portal.models import Connection, ExchangeOrganisation, Webhook, db

#: (model, field) pairs holding encrypted secrets; ``rotate`` walks all of them.
SECRET_FIELDS: list[tuple[type[Model], str]] = [
    (Connection, "secret"),
    (ExchangeOrganisation, "secret"),  # the Exchange corporate mailbox's password
    (Webhook, "secret"),  # webhook signing secrets (portal.notify.webhooks)
]


class SecretError(Exception):
    """A stored secret cannot be read: unknown key, tampered, or moved between rows."""


def fernet(keys: list[str] | None = None) -> MultiFernet:
    keys = keys if keys is not None else list(current_app.config["ENCRYPTION_KEYS"])
    if not keys:
        raise SecretError("no encryption key is configured (KAIROS_ENCRYPTION_KEYS)")
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise SecretError(f"an encryption key is not a valid Fernet key: {exc}") from exc


def row_id(instance: Model) -> str:
    """The identity a secret is bound to: table name and primary key."""
    if instance.get_id() is None:
        raise SecretError("save the row before storing a secret in it")
    return f"{instance._meta.table_name}:{instance.get_id()}"


def encrypt(row: str, data: Any) -> str:
    payload = json.dumps({"row": row, "data": data}, separators=(",", ":")).encode()
    return fernet().encrypt(payload).decode()


def decrypt(row: str, token: str, keys: list[str] | None = None) -> Any:
    """The secret stored in ``row``; raises :class:`SecretError` for any mismatch.

    ``keys`` defaults to the app's; a restore passes the keys it is about to install.
    """
    try:
        payload = json.loads(fernet(keys).decrypt(token.encode()))
    except (InvalidToken, ValueError) as exc:
        raise SecretError("the stored secret cannot be decrypted with the configured keys") from exc
    if not isinstance(payload, dict) or payload.get("row") != row:
        raise SecretError("the stored secret belongs to another row")
    return payload.get("data")


def seal(instance: Model, field: str, data: Any) -> None:
    """Encrypt ``data`` into ``instance.<field>`` (the caller saves the row)."""
    setattr(instance, field, encrypt(row_id(instance), data) if data is not None else "")


def unseal(instance: Model, field: str) -> Any:
    """The decrypted content of ``instance.<field>``, or None when it is empty."""
    token = getattr(instance, field) or ""
    return decrypt(row_id(instance), token) if token else None


def rotate() -> int:
    """Re-encrypt every stored secret under the newest key; returns how many rows changed.

    ``MultiFernet.rotate`` keeps the plaintext — including its row binding —
    and only changes the key, so a row that fails to decrypt is reported,
    not silently rewritten.
    """
    f = fernet()
    changed = 0
    with db.atomic():
        for model, field in SECRET_FIELDS:
            column = getattr(model, field)
            for row in model.select(model._meta.primary_key, column).where(column != ""):
                token = getattr(row, field)
                try:
                    new = f.rotate(token.encode()).decode()
                except InvalidToken as exc:
                    raise SecretError(
                        f"{row_id(row)}: cannot be decrypted with the configured keys"
                    ) from exc
                model.update({column: new}).where(model._meta.primary_key == row.get_id()).execute()
                changed += 1
    return changed
