"""API: the host's bookings and calendar busy blocks, day by day (/api/v1/schedule)."""

from __future__ import annotations

from flask import g, jsonify

from portal.api.base import day_range, operation, require_token
from portal.api.details import bp
from portal.api.schemas.bookings import DaysQuery
from portal.api.schemas.details import Schedule
from portal.booking import checks
from portal.booking import schedule as agenda


@bp.get("/schedule")
@require_token
@operation(
    "Your bookings and calendar busy blocks, day by day",
    "host",
    {200: ("the schedule", Schedule)},
    query=DaysQuery,
    description=f"At most {agenda.MAX_DAYS} days at once; `end` defaults to `start`.",
)
def get_schedule(query: DaysQuery):
    """Bookings and busy blocks for whole days ``start``..``end`` in ``tz``."""
    user = g.api_user
    tz_name = query.tz or user.timezone
    tz = checks.zone(tz_name)
    start, end = day_range(query.start, query.end, tz, 1, agenda.MAX_DAYS)
    found = agenda.items(user, start, end)
    return jsonify(timezone=tz_name, items=[agenda.item_dict(i) for i in found])
