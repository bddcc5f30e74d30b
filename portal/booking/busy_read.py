"""Reading a window of the busy cache as numbers: the hot read of every booking page.

``BusyBlock`` keeps its instants as integer epoch seconds, so a window's rows come from
the driver's cursor as plain ints with no date strings to parse. The SQL is written out
once per backend (peewee compiling it per call cost more than running it) as two index
ranges over (calendar_id, long_span, start_ts, end_ts), which holds every column read:

- short blocks (≤ ``SHORT_SPAN``) that overlap ``[lo, hi)`` start in ``[lo − SHORT_SPAN, hi)``,
  a range bounded by the window whatever the size of the cache;
- long blocks (multi-day events, rows of unknown length) are few, and read by their start.
"""

from __future__ import annotations

from datetime import UTC, datetime

from portal.database import is_sqlite
from portal.models import SHORT_SPAN, db, to_epoch

# The rows of one user's conflict calendars that overlap [lo, hi). Parameters, in order:
# user, conflict, lo − SHORT_SPAN, hi, lo (short blocks), then user, conflict, hi, lo (long).
_BRANCH = (
    'SELECT b."id", b."calendar_id", c."name", b."start_ts", b."end_ts" '
    'FROM "busy_block" AS b JOIN "calendar" AS c ON c."id" = b."calendar_id" '
    'JOIN "connection" AS n ON n."id" = c."connection_id" '
    'WHERE n."user_id" = {p} AND c."conflict" = {p} AND b."long_span" = {long} '
)
_SHORT = 'AND b."start_ts" >= {p} AND b."start_ts" < {p} AND b."end_ts" > {p}'
_LONG = 'AND b."start_ts" < {p} AND b."end_ts" > {p}'

_sql: dict[tuple[str, str], str] = {}


def _window(p: str, true: str, false: str) -> str:
    return (
        _BRANCH.format(p=p, long=false)
        + _SHORT.format(p=p)
        + " UNION ALL "
        + _BRANCH.format(p=p, long=true)
        + _LONG.format(p=p)
    )


def _statement(kind: str) -> str:
    backend = "sqlite" if is_sqlite() else "postgresql"
    sql = _sql.get((backend, kind))
    if sql is None:
        p, true, false = ("?", "1", "0") if backend == "sqlite" else ("%s", "TRUE", "FALSE")
        # Constant text: every value travels as a parameter.
        window = _window(p, true, false)
        if kind == "rows":
            columns, rest = 'w."start_ts", w."end_ts", w."name"', ""
        else:
            columns = (
                'w."calendar_id", w."name", COUNT(*), SUM(w."id"), MAX(w."id"), '
                'SUM(w."start_ts" + w."end_ts")'
            )
            rest = ' GROUP BY w."calendar_id", w."name" ORDER BY w."calendar_id"'
        sql = f"SELECT {columns} FROM ({window}) AS w{rest}"  # noqa: S608
        _sql[(backend, kind)] = sql
    return sql


def _params(user_id: int, start: datetime, end: datetime) -> tuple:
    # Stored instants are whole seconds: "end_ts > start" holds iff it holds for start
    # floored, "start_ts < end" iff it holds for end rounded up.
    lo, hi = to_epoch(start), to_epoch(end) + (1 if end.microsecond else 0)
    return (user_id, True, lo - SHORT_SPAN, hi, lo, user_id, True, hi, lo)


def rows(user_id: int, start: datetime, end: datetime) -> list[tuple[int, int, str]]:
    """``(start_ts, end_ts, calendar name)`` of the blocks overlapping ``[start, end)``."""
    return db.execute_sql(_statement("rows"), _params(user_id, start, end)).fetchall()


def fingerprint(user_id: int, start: datetime, end: datetime) -> tuple:
    """Per calendar and name: count, id sum and maximum, sum of the instants of those rows.

    A sync that inserts, deletes or moves a block, or renames or unticks a calendar,
    changes it; computed by the database in one aggregate over the same index ranges.
    """
    cursor = db.execute_sql(_statement("fingerprint"), _params(user_id, start, end))
    return tuple(tuple(row) for row in cursor.fetchall())


def instants(values: list[tuple[int, int, str]]) -> dict[int, datetime]:
    """Aware UTC datetimes for the distinct epoch seconds of ``values`` (calendars repeat
    the same hours and half-hours, so this converts far fewer than two per row)."""
    seen = {s for s, _, _ in values}
    seen.update(e for _, e, _ in values)
    fromtimestamp = datetime.fromtimestamp
    return {ts: fromtimestamp(ts, UTC) for ts in seen}
