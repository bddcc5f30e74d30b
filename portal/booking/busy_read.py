"""Reading a window of the busy cache as numbers: the hot read of every booking page.

``BusyBlock`` keeps its instants as integer epoch seconds, so a window's rows come from
the driver's cursor as plain ints with no date strings to parse. The SQL is written out
once per backend (peewee compiling it per call cost more than running it) as two index
ranges over (calendar_id, long_span, start_ts, end_ts), which holds every column read:

- short blocks (≤ ``SHORT_SPAN``) that overlap ``[lo, hi)`` start in ``[lo − SHORT_SPAN, hi)``,
  a range bounded by the window whatever the size of the cache;
- long blocks (multi-day events, rows of unknown length) are few, and read by their start.

The slot engine's pages read per UTC day instead (``day_stamps``, ``short_rows``,
``long_rows``; kept per process by ``slot_memo.merged_busy``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from portal.database import is_sqlite
from portal.models import SHORT_SPAN, db, to_epoch

# The rows of one user's conflict calendars that overlap [lo, hi). Parameters, in order:
# user, conflict, lo − SHORT_SPAN, hi, lo (short blocks), then user, conflict, hi, lo (long).
_FROM = (
    'FROM "busy_block" AS b JOIN "calendar" AS c ON c."id" = b."calendar_id" '
    'JOIN "connection" AS n ON n."id" = c."connection_id" '
    'WHERE n."user_id" = {p} AND c."conflict" = {p} AND b."long_span" = {long} '
)
_BRANCH = 'SELECT b."id", b."calendar_id", c."name", b."start_ts", b."end_ts" ' + _FROM
_SHORT = 'AND b."start_ts" >= {p} AND b."start_ts" < {p} AND b."end_ts" > {p}'
_LONG = 'AND b."start_ts" < {p} AND b."end_ts" > {p}'

_sql: dict[tuple[str, str], str] = {}
DAY = 86400


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
        sql = _sql[(backend, kind)] = _STATEMENTS[kind](p, true, false)
    return sql


def _rows_sql(p: str, true: str, false: str) -> str:
    return f'SELECT w."start_ts", w."end_ts", w."name" FROM ({_window(p, true, false)}) AS w'  # noqa: S608


_DAYS = (
    'SELECT d."day", d."calendar_id", d."version", 0, 0, 0 '
    'FROM "busy_day" AS d JOIN "calendar" AS c ON c."id" = d."calendar_id" '
    'JOIN "connection" AS n ON n."id" = c."connection_id" '
    'WHERE n."user_id" = {p} AND c."conflict" = {p} AND d."day" >= {p} AND d."day" <= {p}'
)


# Per UTC day a block starts on, the version of each conflict calendar's blocks there
# (``BusyDay``, kept by the database's triggers), then all the host's long blocks (few) as
# day -1 with a stamp of their rows (count, id sum and maximum, sums of the instants).
# Params: user, conflict, first day, last day, then user, conflict (long blocks).
def _day_stamps_sql(p: str, true: str, false: str) -> str:
    days = _DAYS.format(p=p)
    long = (
        'SELECT -1, COUNT(*), SUM(b."id"), MAX(b."id"), SUM(b."start_ts"), SUM(b."end_ts") '
        + _FROM.format(p=p, long=true)
    )
    return f"{days} UNION ALL {long}"


def _short_rows_sql(p: str, true: str, false: str) -> str:
    return (
        'SELECT b."start_ts", b."end_ts" '
        + _FROM.format(p=p, long=false)
        + f'AND b."start_ts" >= {p} AND b."start_ts" < {p}'
    )


def _long_rows_sql(p: str, true: str, false: str) -> str:
    return 'SELECT b."start_ts", b."end_ts" ' + _FROM.format(p=p, long=true)


_STATEMENTS = {
    "rows": _rows_sql,
    "day_stamps": _day_stamps_sql,
    "short_rows": _short_rows_sql,
    "long_rows": _long_rows_sql,
}


def _params(user_id: int, start: datetime, end: datetime) -> tuple:
    # Stored instants are whole seconds: "end_ts > start" holds iff it holds for start
    # floored, "start_ts < end" iff it holds for end rounded up.
    lo, hi = to_epoch(start), to_epoch(end) + (1 if end.microsecond else 0)
    return (user_id, True, lo - SHORT_SPAN, hi, lo, user_id, True, hi, lo)


def rows(user_id: int, start: datetime, end: datetime) -> list[tuple[int, int, str]]:
    """``(start_ts, end_ts, calendar name)`` of the blocks overlapping ``[start, end)``."""
    return db.execute_sql(_statement("rows"), _params(user_id, start, end)).fetchall()


def day_stamps(user_id: int, first_day: int, last_day: int) -> dict[int, tuple]:
    """``{UTC day number: stamp}`` of the short blocks starting on days ``first_day`` ..
    ``last_day`` (days since 1970), and under ``-1`` of all the host's long blocks.

    A day's stamp is the version of each conflict calendar's blocks that start on it,
    which the database renews whenever one is inserted, updated or deleted (``BusyDay``);
    unticking a calendar takes its versions out. Reading them costs a row per calendar and
    day, however many blocks there are. Days without any are absent.
    """
    params = (user_id, True, first_day, last_day, user_id, True)
    stamps: dict[int, list] = {}
    for day, *stamp in db.execute_sql(_statement("day_stamps"), params).fetchall():
        if day >= 0:
            stamps.setdefault(day, []).append((stamp[0], stamp[1]))
        elif stamp[0]:
            stamps[-1] = [tuple(stamp)]
    return {day: tuple(sorted(found)) for day, found in stamps.items()}


def short_rows(user_id: int, first_day: int, last_day: int) -> list[tuple[int, int]]:
    """``(start_ts, end_ts)`` of the short blocks starting on days ``first_day``..``last_day``."""
    params = (user_id, True, first_day * DAY, (last_day + 1) * DAY)
    return db.execute_sql(_statement("short_rows"), params).fetchall()


def long_rows(user_id: int) -> list[tuple[int, int]]:
    """``(start_ts, end_ts)`` of all the host's long blocks (multi-day events: few)."""
    return db.execute_sql(_statement("long_rows"), (user_id, True)).fetchall()


def instants(values: list[tuple[int, int, str]]) -> dict[int, datetime]:
    """Aware UTC datetimes for the distinct epoch seconds of ``values`` (calendars repeat
    the same hours and half-hours, so this converts far fewer than two per row)."""
    seen = {s for s, _, _ in values}
    seen.update(e for _, e, _ in values)
    fromtimestamp = datetime.fromtimestamp
    return {ts: fromtimestamp(ts, UTC) for ts in seen}
