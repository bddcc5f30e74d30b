"""Migrations that convert data: run on a database holding rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playhouse.migrations import Runner

from portal.database import MIGRATIONS_DIR, make_database
from portal.models import BusyBlock
from tests.support.app import TEST_DATABASE_URL
from tests.support.clock import NOW


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "postgresql":
        if not TEST_DATABASE_URL:
            pytest.skip("TEST_DATABASE_URL not set")
        database = make_database(TEST_DATABASE_URL)
        with database.connection_context():
            # The session's app fixtures rebuild their schema with upgrade() + truncate.
            database.execute_sql("DROP SCHEMA public CASCADE")
            database.execute_sql("CREATE SCHEMA public")
    else:
        database = make_database(f"sqlite:///{tmp_path / 'migrate.db'}")
    with database.connection_context():
        yield database
        if request.param == "postgresql":
            Runner(database, MIGRATIONS_DIR).up()  # leave the schema the app fixtures expect
    database.close_all()


def _insert(database, table: str, row: dict) -> int:
    p = database.param
    columns = ", ".join(f'"{c}"' for c in row)
    marks = ", ".join(p for _ in row)
    cursor = database.execute_sql(
        f'INSERT INTO "{table}" ({columns}) VALUES ({marks}) RETURNING "id"',  # noqa: S608
        tuple(row.values()),
    )
    return cursor.fetchone()[0]


def _indexes(database) -> set[str]:
    return {i.name for i in database.get_indexes("busy_block")}


def test_busy_blocks_become_epoch_seconds_and_back(database):
    runner = Runner(database, MIGRATIONS_DIR)
    runner.up("0140_user_sessions")
    created = NOW.replace(tzinfo=None) - timedelta(days=30)  # stored naive UTC, a month back
    user = _insert(
        database,
        "user",
        {
            "email": "a@example.com",
            "password_hash": "x",
            "slug": "a",
            "name": "A",
            "timezone": "UTC",
            "lead_time_minutes": 0,
            "is_admin": False,
            "is_active": True,
            "allow_booking": True,
            "embed_origins": "",
            "created_at": created,
            "meeting_link": "",
            "email_signature": "",
            "feed_salt": "s",
        },
    )
    conn = _insert(
        database,
        "connection",
        {
            "user_id": user,
            "provider": "ics",
            "label": "",
            "status": "ok",
            "settings": "{}",
            "secret": "",
            "sync_state": "{}",
            "last_error": "",
            "created_at": created,
            "failures": 0,
        },
    )
    cal = _insert(
        database,
        "calendar",
        {
            "connection_id": conn,
            "external_id": "main",
            "name": "Main",
            "writable": False,
            "timezone": "",
            "conflict": True,
            "write": False,
            "all_busy": False,
            "sync_state": "{}",
            "copy_bookings": False,
        },
    )
    base = NOW.replace(tzinfo=None, microsecond=0)
    spans = [
        (base + timedelta(hours=1), base + timedelta(hours=2)),  # short
        (base + timedelta(days=1), base + timedelta(days=2)),  # an all-day event: still short
        (base + timedelta(days=3), base + timedelta(days=5, minutes=1)),  # long
    ]
    for start, end in spans:
        _insert(
            database,
            "busy_block",
            {"calendar_id": cal, "start": start, "end": end, "external_id": "e"},
        )

    assert runner.up("0150_busy_epoch") == ["0150_busy_epoch"]
    rows = database.execute_sql(
        'SELECT "start_ts", "end_ts", "long_span" FROM "busy_block" ORDER BY "start_ts"'
    ).fetchall()
    epoch = [
        (int(s.replace(tzinfo=UTC).timestamp()), int(e.replace(tzinfo=UTC).timestamp()))
        for s, e in spans
    ]
    assert [(s, e, bool(long)) for s, e, long in rows] == [
        (*epoch[0], False),
        (*epoch[1], False),
        (*epoch[2], True),
    ]
    assert "busy_block_calendar_id_long_span_start_ts_end_ts" in _indexes(database)
    assert "busy_block_calendar_id_start_end" not in _indexes(database)
    with database.bind_ctx([BusyBlock]):
        assert [(b.start, b.end) for b in BusyBlock.select().order_by(BusyBlock.start)] == spans

    assert runner.down("0150_busy_epoch") == ["0150_busy_epoch"]
    back = database.execute_sql(
        'SELECT "start", "end" FROM "busy_block" ORDER BY "start"'
    ).fetchall()
    as_datetime = [
        tuple(v if isinstance(v, datetime) else datetime.fromisoformat(v) for v in row)
        for row in back
    ]
    assert as_datetime == spans
    assert "busy_block_calendar_id_start_end" in _indexes(database)
