"""A host's availability, read and written in one place: weekly hours, date overrides,
time zone and minimum notice.

The settings pages, the JSON API and the slot engine's reader (``portal.booking.rules``)
all go through here. Input is checked where it is parsed, with the one ``HH:MM`` reader
(``portal.booking.wallclock.parse_clock``) and the API's bounds
(``portal.api.schemas.availability``), which the settings forms share.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date

from peewee import SQL, Cast

from portal.models import DateOverride, User, WeeklyHours, compiled_sql, db

Windows = Iterable[tuple[str, str]]


def weekly_windows(user_id: int) -> dict[int, list[tuple[str, str]]]:
    """``{weekday: [("09:00", "17:00"), …]}`` for Monday (0) to Sunday (6), in time order."""
    out: dict[int, list[tuple[str, str]]] = {d: [] for d in range(7)}
    for row in (
        WeeklyHours.select()
        .where(WeeklyHours.user == user_id)
        .order_by(WeeklyHours.weekday, WeeklyHours.start)
    ):
        if 0 <= row.weekday <= 6:
            out[row.weekday].append((row.start, row.end))
    return out


def rules_of(
    user_id: int,
) -> tuple[dict[int, list[tuple[str, str]]], dict[date, list[tuple[str, str]]]]:
    """``(weekly_windows(user_id), date_overrides(user_id))`` in one query: every page view
    of the slot engine reads both."""
    sql = compiled_sql(
        "rules-of",
        lambda: (
            WeeklyHours.select(SQL("0"), WeeklyHours.weekday, WeeklyHours.start, WeeklyHours.end)
            .where(WeeklyHours.user == 0)
            .union_all(
                DateOverride.select(
                    SQL("1"), SQL("0"), Cast(DateOverride.date, "TEXT"), DateOverride.intervals
                ).where(DateOverride.user == 0)
            )
        ),
    )
    weekly: dict[int, list[tuple[str, str]]] = {d: [] for d in range(7)}
    overrides: dict[date, list[tuple[str, str]]] = {}
    for kind, weekday, a, b in sorted(db.execute_sql(sql, (user_id, user_id)).fetchall()):
        if kind == 1:
            overrides[date.fromisoformat(a)] = [(s, e) for s, e in json.loads(b)]
        elif 0 <= weekday <= 6:
            weekly[weekday].append((a, b))
    return weekly, overrides


def date_overrides(user_id: int) -> dict[date, list[tuple[str, str]]]:
    """``{date: windows}`` replacing those dates' weekly hours, by date; [] is a day off."""
    rows = DateOverride.select().where(DateOverride.user == user_id).order_by(DateOverride.date)
    return {row.date: [(a, b) for a, b in row.interval_list()] for row in rows}


def save_availability(
    user_id: int,
    weekly: Mapping[int, Windows],
    *,
    timezone: str | None = None,
    lead_time_minutes: int | None = None,
    overrides: Mapping[date, Windows] | None = None,
) -> None:
    """Replace the host's weekly hours, and with them what else is given, in one transaction.

    ``weekly`` maps weekdays (0 = Monday) to windows; a weekday left out is a day off.
    ``overrides``, when given, replace every date override. A zone or notice left as
    None stays as it is.
    """
    changes: dict = {}
    if timezone is not None:
        changes[User.timezone] = timezone
    if lead_time_minutes is not None:
        changes[User.lead_time_minutes] = lead_time_minutes
    with db.atomic():
        if changes:
            User.update(changes).where(User.id == user_id).execute()
        WeeklyHours.delete().where(WeeklyHours.user == user_id).execute()
        rows = [
            {"user": user_id, "weekday": day, "start": start, "end": end}
            for day, windows in sorted(weekly.items())
            for start, end in windows
        ]
        if rows:
            WeeklyHours.insert_many(rows).execute()
        if overrides is not None:
            DateOverride.delete().where(DateOverride.user == user_id).execute()
            rows = [
                {"user": user_id, "date": day, "intervals": _intervals(windows)}
                for day, windows in sorted(overrides.items())
            ]
            if rows:
                DateOverride.insert_many(rows).execute()


def save_override(user_id: int, day: date, windows: Windows) -> None:
    """Set one date's hours (no windows: a day off), replacing an override of that date."""
    intervals = _intervals(windows)
    with db.atomic():
        updated = (
            DateOverride.update(intervals=intervals)
            .where(DateOverride.user == user_id, DateOverride.date == day)
            .execute()
        )
        if not updated:
            DateOverride.create(user=user_id, date=day, intervals=intervals)


def delete_override(user_id: int, override_id: int) -> bool:
    """Remove one of the host's overrides (that date follows the week again); False if none."""
    deleted = (
        DateOverride.delete()
        .where(DateOverride.id == override_id, DateOverride.user == user_id)
        .execute()
    )
    return bool(deleted)


def _intervals(windows: Windows) -> str:
    return json.dumps([[start, end] for start, end in windows])
