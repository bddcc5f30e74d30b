"""API: the host's weekly hours, date overrides and lead time (GET|PUT /api/v1/availability)."""

from __future__ import annotations

from flask import g, jsonify

from portal.api.base import bp, operation, require_token
from portal.api.schemas.availability import DAYS, Availability
from portal.booking.hours import date_overrides, save_availability, weekly_windows
from portal.models import User

# ---------------------------------------------------------------- availability


def availability_dict(user: User) -> dict:
    weekly = weekly_windows(user.id)
    return {
        "timezone": user.timezone,
        "weekly": {name: [list(w) for w in weekly[day]] for day, name in enumerate(DAYS)},
        "overrides": [
            {"date": day.isoformat(), "intervals": [list(w) for w in windows]}
            for day, windows in date_overrides(user.id).items()
        ],
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
    save_availability(
        user.id,
        {day: getattr(body.weekly, name).pairs() for day, name in enumerate(DAYS)},
        timezone=body.timezone,
        lead_time_minutes=body.lead_time_minutes,
        overrides={o.date: o.intervals.pairs() for o in body.overrides},
    )
    return jsonify(availability_dict(User.get_by_id(user.id)))
