"""Busy cache as numbers: epoch-second instants and a covering index for window reads.

``start``/``end`` (timestamps, which SQLite returns as text to parse) become the
integers ``start_ts``/``end_ts``; ``long_span`` marks blocks longer than a day, so a
window read finds the others by a bounded range over ``start_ts`` of the index
(calendar_id, long_span, start_ts, end_ts), which holds everything the read needs.
Existing rows are converted in place (floored to the second).
"""

from peewee import *

# The statements below are constant text (column names, no values).


def _epoch(db, column):
    if isinstance(db, SqliteDatabase):
        return f"CAST(strftime('%s', \"{column}\") AS INTEGER)"
    return f'CAST(FLOOR(EXTRACT(EPOCH FROM "{column}")) AS BIGINT)'


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("busy_block", "start_ts", BigIntegerField(null=True)),
        migrator.add_column("busy_block", "end_ts", BigIntegerField(null=True)),
        migrator.add_column("busy_block", "long_span", BooleanField(default=True)),
    )
    start, end = _epoch(db, "start"), _epoch(db, "end")
    db.execute_sql(f'UPDATE "busy_block" SET "start_ts" = {start}, "end_ts" = {end}')  # noqa: S608
    db.execute_sql('UPDATE "busy_block" SET "long_span" = ("end_ts" - "start_ts" > 86400)')
    migrator.migrate(
        migrator.drop_index("busy_block", "busy_block_calendar_id_start_end"),
        migrator.add_not_null("busy_block", "start_ts"),
        migrator.add_not_null("busy_block", "end_ts"),
        migrator.drop_column("busy_block", "start"),
        migrator.drop_column("busy_block", "end"),
        migrator.add_index("busy_block", ("calendar_id", "long_span", "start_ts", "end_ts"), False),
    )


def _instant(db, column):
    if isinstance(db, SqliteDatabase):
        return f"datetime(\"{column}\", 'unixepoch')"
    return f"(TIMESTAMP 'epoch' + \"{column}\" * INTERVAL '1 second')"


def down(migrator, db):
    migrator.migrate(
        migrator.add_column("busy_block", "start", DateTimeField(null=True)),
        migrator.add_column("busy_block", "end", DateTimeField(null=True)),
    )
    start, end = _instant(db, "start_ts"), _instant(db, "end_ts")
    db.execute_sql(f'UPDATE "busy_block" SET "start" = {start}, "end" = {end}')  # noqa: S608
    migrator.migrate(
        migrator.drop_index("busy_block", "busy_block_calendar_id_long_span_start_ts_end_ts"),
        migrator.add_not_null("busy_block", "start"),
        migrator.add_not_null("busy_block", "end"),
        migrator.drop_column("busy_block", "start_ts"),
        migrator.drop_column("busy_block", "end_ts"),
        migrator.drop_column("busy_block", "long_span"),
        migrator.add_index("busy_block", ("calendar_id", "start", "end"), False),
    )
