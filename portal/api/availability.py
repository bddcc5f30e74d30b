"""API: the host's weekly hours, date overrides and lead time (GET|PUT /api/v1/availability)."""

from __future__ import annotations

import json

from flask import g, jsonify

from portal.api.base import bp, operation, require_token
from portal.api.schemas.availability import DAYS, Availability
from portal.models import DateOverride, User, WeeklyHours, db

# ---------------------------------------------------------------- availability


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


@bp.get("/availability")
@require_token
@operation(
    "Weekly hours, date overrides, time zone and lead time",
    "host",
    {200: ("availability", Availability)},
)
def get_availability():
    return jsonify(availability_dict(g.api_user))


@bp.put("/availability")
@require_token
@operation(
    "Replace the availability",
    "host",
    {200: ("the stored availability", Availability)},
    body=Availability,
)
def put_availability(body: Availability):
    """Replace hours, overrides, zone and lead time in one transaction."""
    user = g.api_user
    with db.atomic():
        User.update(timezone=body.timezone, lead_time_minutes=body.lead_time_minutes).where(
            User.id == user.id
        ).execute()
        WeeklyHours.delete().where(WeeklyHours.user == user).execute()
        rows = [
            {"user": user.id, "weekday": day, "start": start, "end": end}
            for day, name in enumerate(DAYS)
            for start, end in getattr(body.weekly, name).pairs()
        ]
        if rows:
            WeeklyHours.insert_many(rows).execute()
        DateOverride.delete().where(DateOverride.user == user).execute()
        rows = [
            {"user": user.id, "date": o.date, "intervals": json.dumps(o.intervals.pairs())}
            for o in sorted(body.overrides, key=lambda o: o.date)
        ]
        if rows:
            DateOverride.insert_many(rows).execute()
    return jsonify(availability_dict(User.get_by_id(user.id)))
