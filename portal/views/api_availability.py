"""API: the host's weekly hours, date overrides and lead time (GET|PUT /api/v1/availability)."""

from __future__ import annotations

import json
import re
from datetime import date

from flask import g, jsonify

from .. import openapi
from ..models import (
    DateOverride,
    User,
    WeeklyHours,
    db,
)
from .api import (
    Fields,
    bp,
    invalid,
    json_body,
    parse_date,
    parse_zone,
    require_token,
)

# ---------------------------------------------------------------- availability

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def availability_dict(user: User) -> dict:
    weekly: dict[str, list[list[str]]] = {day: [] for day in DAYS}
    rows = WeeklyHours.select().where(WeeklyHours.user == user)
    for row in rows.order_by(WeeklyHours.weekday, WeeklyHours.start):
        weekly[DAYS[row.weekday]].append([row.start, row.end])
    overrides = [
        {"date": row.date.isoformat(), "intervals": row.interval_list()}
        for row in DateOverride.select()
        .where(DateOverride.user == user)
        .order_by(DateOverride.date)
    ]
    return {
        "timezone": user.timezone,
        "weekly": weekly,
        "overrides": overrides,
        "lead_time_minutes": user.lead_time_minutes,
    }


def parse_intervals(value: object, field: str) -> list[tuple[str, str]]:
    """One day's windows: ``[["HH:MM", "HH:MM"], …]``, each non-empty, none overlapping.

    Touching windows (12:00–13:00 after 09:00–12:00) are allowed and kept
    apart, exactly as given, so what a client PUTs is what it GETs back.
    """
    if not isinstance(value, list):
        raise invalid(field, 'expected a list of ["HH:MM", "HH:MM"] pairs')
    if len(value) > openapi.MAX_INTERVALS_PER_DAY:
        raise invalid(field, f"at most {openapi.MAX_INTERVALS_PER_DAY} windows a day")
    found: list[tuple[str, str, int]] = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not (
            isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)
        ):
            raise invalid(where, 'expected ["HH:MM", "HH:MM"]')
        start, end = item
        if not _CLOCK.fullmatch(start):
            raise invalid(where, f"start {start!r} is not a time between 00:00 and 23:59")
        if end != "24:00" and not _CLOCK.fullmatch(end):
            raise invalid(where, f"end {end!r} is not HH:MM (24:00 = end of the day)")
        if start >= end:  # zero-padded HH:MM compares like the time it names
            raise invalid(where, f"start {start} is not before end {end}")
        found.append((start, end, i))
    found.sort()
    for (_, end, _i), (start, _, j) in zip(found, found[1:], strict=False):
        if start < end:
            raise invalid(f"{field}[{j}]", f"window starting {start} overlaps one ending {end}")
    return [(start, end) for start, end, _ in found]


def parse_availability(data: dict) -> dict:
    f = Fields(data)
    f.only(("timezone", "weekly", "overrides", "lead_time_minutes"))
    timezone = f.raw("timezone", True)
    parse_zone(timezone, "timezone")
    lead = f.integer("lead_time_minutes", 0, openapi.HOST_LEAD_TIME_MAX, required=True)

    weekly_in = f.raw("weekly", True)
    if not isinstance(weekly_in, dict):
        raise invalid("weekly", 'expected an object such as {"mon": [["09:00", "17:00"]]}')
    Fields(weekly_in, "weekly.").only(DAYS)
    weekly = {
        DAYS.index(day): parse_intervals(weekly_in.get(day, []), f"weekly.{day}") for day in DAYS
    }

    overrides_in = f.raw("overrides", True)
    if not isinstance(overrides_in, list):
        raise invalid("overrides", 'expected a list of {"date", "intervals"}')
    if len(overrides_in) > openapi.MAX_OVERRIDES:
        raise invalid("overrides", f"at most {openapi.MAX_OVERRIDES} date overrides")
    overrides: dict[date, list[tuple[str, str]]] = {}
    for i, item in enumerate(overrides_in):
        where = f"overrides[{i}]"
        if not isinstance(item, dict):
            raise invalid(where, 'expected {"date": "YYYY-MM-DD", "intervals": [...]}')
        item_fields = Fields(item, where + ".")
        item_fields.only(("date", "intervals"))
        day = parse_date(item_fields.raw("date", True), where + ".date")
        if day in overrides:
            raise invalid(where + ".date", f"{day} is given twice")
        overrides[day] = parse_intervals(item_fields.raw("intervals", True), where + ".intervals")
    return {"timezone": timezone, "lead": lead, "weekly": weekly, "overrides": overrides}


@bp.get("/availability")
@require_token
def get_availability():
    return jsonify(availability_dict(g.api_user))


@bp.put("/availability")
@require_token
def put_availability():
    """Replace hours, overrides, zone and lead time in one transaction."""
    new = parse_availability(json_body())
    user = g.api_user
    with db.atomic():
        User.update(timezone=new["timezone"], lead_time_minutes=new["lead"]).where(
            User.id == user.id
        ).execute()
        WeeklyHours.delete().where(WeeklyHours.user == user).execute()
        rows = [
            {"user": user.id, "weekday": day, "start": start, "end": end}
            for day, windows in new["weekly"].items()
            for start, end in windows
        ]
        if rows:
            WeeklyHours.insert_many(rows).execute()
        DateOverride.delete().where(DateOverride.user == user).execute()
        rows = [
            {"user": user.id, "date": day, "intervals": json.dumps([list(w) for w in windows])}
            for day, windows in sorted(new["overrides"].items())
        ]
        if rows:
            DateOverride.insert_many(rows).execute()
    return jsonify(availability_dict(User.get_by_id(user.id)))
