"""Binding the models' DatabaseProxy to SQLite or PostgreSQL, and migrations."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from urllib.parse import parse_qsl, unquote, urlparse

from peewee import Database, SqliteDatabase
from playhouse.migrations import Runner
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

from portal.models import ALL_MODELS, User, db

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")

# A PostgreSQL that went away without closing its sockets (host down, network cut)
# must not hang requests for the kernel's minutes: a connect gives up after 5 s, and
# a connection whose peer stops answering is declared dead within about 20 s, so
# the request gets its 503 (portal.web.outage) and the pool a fresh connection.
PG_DEFAULTS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "2",
    "tcp_user_timeout": "20000",  # ms: sent data left unacknowledged this long
}


def make_database(url: str, pool_size: int = 20) -> Database:
    """Build a peewee database from ``sqlite:///path`` or ``postgresql://…``.

    Both are pooled: closing at the end of a request hands the connection back,
    so a page view pays for neither a new connection nor SQLite's PRAGMAs.
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy spells them.
        path = unquote(parsed.path)[1:]
        if path not in (":memory:", ""):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return PooledSqliteDatabase(
            path or ":memory:",
            max_connections=64,
            stale_timeout=600,
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": 15000,
                "foreign_keys": 1,
                "synchronous": "normal",
            },
            timeout=15,  # seconds to wait for a free pooled connection
            # A pooled connection is used by one thread at a time, but not always the same one.
            check_same_thread=False,
            # Every transaction, not only write_transaction()'s, takes the write lock at
            # BEGIN and so waits out the busy timeout instead of failing (see there).
            lock_type="IMMEDIATE",
        )
    if parsed.scheme in ("postgres", "postgresql"):
        return PooledPostgresqlDatabase(
            unquote(parsed.path.lstrip("/")),
            max_connections=pool_size,
            stale_timeout=300,
            timeout=15,
            user=unquote(parsed.username or "") or None,
            password=unquote(parsed.password or "") or None,
            host=parsed.hostname or None,
            port=parsed.port or None,
            # libpq parameters in the URL (?sslmode=require&connect_timeout=2) win.
            **(PG_DEFAULTS | dict(parse_qsl(parsed.query))),
        )
    raise ValueError(f"unsupported DATABASE_URL scheme: {parsed.scheme!r}")


def init_db(url: str, pool_size: int = 20) -> Database:
    """Bind the models to ``url``; a pool bound before (an earlier app) is emptied first."""
    previous = db.obj
    if previous is not None and hasattr(previous, "close_all"):
        previous.close_all()
    database = make_database(url, pool_size)
    db.initialize(database)
    return database


def is_sqlite() -> bool:
    return isinstance(db.obj, SqliteDatabase)


def upgrade() -> list[str]:
    """Apply pending numbered migrations; returns their names."""
    with db.obj.connection_context():
        return Runner(db.obj, MIGRATIONS_DIR).up()


# The writers of this process on SQLite (re-entrant: inside a transaction it is a savepoint).
_sqlite_writers = threading.RLock()


@contextmanager
def write_transaction():
    """A transaction that will write: all of it commits, or none of it.

    On SQLite it takes the write lock up front (``BEGIN IMMEDIATE``). A
    deferred transaction that reads first holds only a read snapshot; when
    another connection commits meanwhile, its first write cannot be granted
    without losing what it read, so SQLite answers "database is locked" at
    once and the busy timeout never applies. Taking the lock at ``BEGIN``
    makes a writer queue for up to the busy timeout instead. PostgreSQL's
    row locks need no such help: there it is a plain transaction. Inside an
    open transaction it is a savepoint of that transaction.
    """
    if is_sqlite():
        # Threads of one process queue here, each woken as soon as the one before commits,
        # rather than in SQLite's busy handler, which polls a held lock with growing
        # sleeps (up to 100 ms) and so adds its backoff to every contended booking.
        with _sqlite_writers, db.obj.atomic("IMMEDIATE") as txn:
            yield txn
    else:
        with db.obj.atomic() as txn:
            yield txn


@contextmanager
def host_lock(host_id: int):
    """A write transaction that serialises every booking change of one host.

    SQLite's write lock (:func:`write_transaction`) already serialises them,
    so two racing confirmations cannot both read "free"; PostgreSQL locks the
    host row.
    """
    with write_transaction() as txn:
        if not is_sqlite():
            User.select(User.id).where(User.id == host_id).for_update().execute()
        yield txn


def truncate_all() -> None:
    """Empty every table (tests)."""
    with db.obj.atomic():
        if is_sqlite():
            for model in reversed(ALL_MODELS):
                model.delete().execute()
        else:
            names = ", ".join(f'"{m._meta.table_name}"' for m in ALL_MODELS)
            db.obj.execute_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
