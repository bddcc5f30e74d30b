"""The database proxy, the base model, and the conversions every model shares.

No network here. Instants are stored as naive UTC datetimes; ``to_db`` /
``from_db`` are the only place that converts.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from peewee import BigIntegerField, DatabaseProxy, Model

M = TypeVar("M", bound=Model)
# Bound to the real database by the app factory (portal.database).
db = DatabaseProxy()
_COMPILED: dict[tuple[str, str], str] = {}


def compiled_sql(name: str, build: Callable[[], Any]) -> str:
    """The SQL of a query that runs on every page view, built by peewee once per backend.

    peewee turns its query tree into SQL on every execution, which cost the booking page
    more than the database did; the shape never changes, only the parameters (passed to
    ``Model.raw`` or ``db.execute_sql`` in the order of the query's placeholders).
    """
    return _once(name, lambda: build().sql()[0])


def _once(name: str, make: Callable[[], str]) -> str:
    """The statement named ``name`` for the bound backend, made by ``make`` the first time."""
    key = (name, type(db.obj).__name__)
    sql = _COMPILED.get(key)
    if sql is None:
        sql = _COMPILED[key] = make()
    return sql


def first_row_as(sql: str, params: Sequence[Any], *models: type[Model]) -> tuple[Any, ...] | None:
    """The first row of ``sql`` as one instance of each of ``models``, or None.

    ``sql`` selects every column of each model, model after model in field order (what
    ``A.select(A, B).join(B)`` compiles to). For lookups on every page view: peewee's own
    cursor wrappers resolve the columns and build the instances anew on each query, which
    cost five times the query itself.
    """
    row = db.execute_sql(sql, params).fetchone()
    if row is None:
        return None
    out = []
    at = 0
    for model in models:
        fields = model._meta.sorted_fields  # type: ignore[attr-defined]
        obj = model(__no_default__=1)
        obj.__data__ = {
            f.name: (f.python_value(v) if v is not None else None)
            for f, v in zip(fields, row[at : at + len(fields)], strict=True)
        }
        at += len(fields)
        out.append(obj)
    if at != len(row):
        raise ValueError(f"{len(row)} columns for {at} fields")
    return tuple(out)


def insert_rows(model: type[Model], rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """INSERT ``rows`` (each with the same keys) into ``model``'s table; their new ids.

    What peewee's ``insert_many`` does, fields' defaults included, with the statement built
    once per table, columns, row count and backend (``insert_many`` builds its SQL anew on
    every call, a tenth of a booking's time). Values pass through each field's
    ``db_value``; the ids come back through ``RETURNING`` (SQLite ≥ 3.35, PostgreSQL).
    """
    if not rows:
        return []
    meta: Any = model._meta  # type: ignore[attr-defined]
    full = [{**meta.get_default_dict(), **row} for row in rows]
    names = tuple(
        name for name in full[0] if not (name == meta.primary_key.name and full[0][name] is None)
    )

    def make() -> str:
        open_q, close_q = db.obj.quote
        columns = ", ".join(f"{open_q}{meta.fields[n].column_name}{close_q}" for n in names)
        one = "(" + ", ".join([db.obj.param] * len(names)) + ")"
        pk = meta.primary_key.column_name
        table = f"{open_q}{meta.table_name}{close_q}"
        values = ", ".join([one] * len(rows))
        # Table and column names come from the model, never from input.
        return f"INSERT INTO {table} ({columns}) VALUES {values} RETURNING {open_q}{pk}{close_q}"  # noqa: S608

    sql = _once(f"insert:{meta.table_name}:{','.join(names)}:{len(rows)}", make)
    fields = [meta.fields[n] for n in names]
    params = [f.db_value(row[f.name]) for row in full for f in fields]
    return [row[0] for row in db.execute_sql(sql, params).fetchall()]


def insert_instance(instance: M) -> M:
    """INSERT a new, unsaved model instance (as ``save(force_insert=True)``), compiled once."""
    (instance.id,) = insert_rows(type(instance), [instance.__data__])  # type: ignore[attr-defined]
    instance._dirty.clear()  # type: ignore[attr-defined]
    return instance


SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
# Words the app's own routes use; a host or meeting type may not take them.
RESERVED_SLUGS = frozenset(
    [
        "login",
        "logout",
        "setup",
        "settings",
        "api",
        "embed",
        "booking",
        "static",
        "oauth",
        "admin",
        "invite",
        "reset",
        "password",
        "health",
        "healthz",
        "metrics",
        "feeds",
        "feed",
        "webhooks",
        "help",
        "about",
        "terms",
        "privacy",
        "signup",
        "register",
        "www",
        "account",
        "accounts",
        "user",
        "users",
        "auth",
        "static-files",
        "assets",
        "favicon.ico",
        "robots.txt",
    ]
)

# Row ids fit a signed 64-bit column (SQLite's INTEGER, PostgreSQL's bigint); a bigger
# number names no row, and SQLite cannot even bind it (OverflowError).
MAX_ID = 2**63 - 1


def parse_id(text: str) -> int | None:
    """The row id written in ``text`` (a URL part, a form value), or None if it can be none."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:  # "²".isdigit() is True
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_db(value: datetime | None) -> datetime | None:
    """Aware instant → naive UTC for storage."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(UTC).replace(tzinfo=None)


def from_db(value: datetime | None) -> datetime | None:
    """Stored naive UTC → aware UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC)


_EPOCH = datetime(1970, 1, 1)


def to_epoch(value: datetime) -> int:
    """An instant (aware, or naive UTC as stored) → whole seconds since 1970 UTC (floored)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return (value - _EPOCH) // timedelta(seconds=1)


class EpochField(BigIntegerField):
    """An instant stored as integer seconds since 1970 UTC, read as naive UTC like ``to_db``.

    Hot range reads (the busy cache) take the integers straight from the cursor: no
    date strings to parse, and comparisons the index answers as numbers.
    """

    field_type = "BIGINT"

    def db_value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return to_epoch(value)
        return super().db_value(value)

    def python_value(self, value: Any) -> Any:
        if value is None:
            return None
        return _EPOCH + timedelta(seconds=int(value))


def hash_token(token: str) -> str:
    """Tokens carry ≥128 random bits, so a plain SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def validate_slug(slug: str) -> str | None:
    """Return an error message, or None when the slug is acceptable."""
    if not SLUG_RE.fullmatch(slug or ""):  # fullmatch: "$" alone lets "x\n" through
        return "use 1–40 lowercase letters, digits and dashes"
    if slug in RESERVED_SLUGS:
        return "this word is reserved"
    return None


class BaseModel(Model):
    if TYPE_CHECKING:
        # peewee adds ``id`` and the ``<fk>_id`` accessors at runtime; tell mypy so.
        id: Any

        def __getattr__(self, name: str) -> Any: ...

    class Meta:
        database = db
        legacy_table_names = False
