"""JSON API: calendar connections (``/api/v1/connections``).

``GET|POST /connections``, ``GET|DELETE /connections/<id>``,
``PATCH /connections/<id>/calendars/<calendar_id>`` ``{"conflict", "write"}``
and ``POST /connections/<id>/refresh`` (202). OAuth providers connect in the
browser; ICS, CalDAV and personal Exchange accounts connect here too. Every
connection is looked up through the token's user: another host's id is 404.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from .. import sync
from ..models import Calendar, Connection, from_db
from ..providers import REGISTRY, InvalidSetup, provider_class
from .api import ApiError, Fields, invalid, json_body, json_errors, not_found, require_token

bp = json_errors(Blueprint("api_connections", __name__, url_prefix="/api/v1"))

#: the body fields each provider takes (besides "provider"); longest first is the URL
CONNECT_FIELDS: dict[str, dict[str, int]] = {
    "ics": {"url": 2000},
    "caldav": {"url": 2000, "username": 320, "password": 1000},
    "exchange": {"email": 320, "password": 1000, "ews_url": 2000, "username": 320},
}


def calendar_dict(calendar: Calendar) -> dict:
    return {
        "id": calendar.id,
        "name": calendar.name,
        "writable": calendar.writable,
        "conflict": calendar.conflict,
        "write": calendar.write,
    }


def connection_dict(conn: Connection) -> dict:
    synced = from_db(conn.last_synced_at)
    calendars = Calendar.select().where(Calendar.connection == conn).order_by(Calendar.name)
    return {
        "id": conn.id,
        "provider": conn.provider,
        "label": conn.label,
        "status": conn.status,
        "last_synced_at": synced.isoformat() if synced else None,
        "last_error": conn.last_error,
        "calendars": [calendar_dict(c) for c in calendars],
    }


def _own(connection_id: int) -> Connection:
    conn = Connection.get_or_none(Connection.id == connection_id, Connection.user == g.api_user)
    if conn is None:
        raise not_found("no such connection")
    return conn


@bp.get("/connections")
@require_token
def list_connections():
    conns = Connection.select().where(Connection.user == g.api_user).order_by(Connection.id)
    return jsonify({"connections": [connection_dict(c) for c in conns]})


@bp.post("/connections")
@require_token
def create_connection():
    """Connect an account: checked with its server first; 422 names the field at fault."""
    data = json_body()
    fields = Fields(data)
    provider = fields.string("provider", 40, required=True)
    if provider not in REGISTRY:
        raise invalid("provider", "unknown provider; one of " + ", ".join(sorted(REGISTRY)))
    if provider not in CONNECT_FIELDS:
        title = provider_class(provider).title or provider
        raise invalid("provider", f"{title} accounts are connected in the browser (Settings)")
    limits = CONNECT_FIELDS[provider]
    fields.only(limits, ignored=("provider",))
    values = {}
    for key, max_len in limits.items():
        value = fields.string(key, max_len, one_line=True)
        values[key] = value if isinstance(value, str) else ""
    try:
        conn = sync.connect(g.api_user, provider, values)
    except InvalidSetup as exc:
        field = exc.field if exc.field in limits or exc.field == "provider" else next(iter(limits))
        raise invalid(field, exc.message) from exc
    sync.request_refresh(conn)
    return jsonify(connection_dict(Connection.get_by_id(conn.id))), 201


@bp.get("/connections/<int:connection_id>")
@require_token
def get_connection(connection_id: int):
    return jsonify(connection_dict(_own(connection_id)))


@bp.delete("/connections/<int:connection_id>")
@require_token
def delete_connection(connection_id: int):
    """Disconnect: the stored secret, calendars and cached busy time are deleted."""
    sync.disconnect(_own(connection_id))
    return "", 204


@bp.patch("/connections/<int:connection_id>/calendars/<int:calendar_id>")
@require_token
def patch_calendar(connection_id: int, calendar_id: int):
    """``conflict``: checked for busy time; ``write``: receives new bookings (one per host)."""
    conn = _own(connection_id)
    calendar = Calendar.get_or_none(Calendar.id == calendar_id, Calendar.connection == conn)
    if calendar is None:
        raise not_found("no such calendar in this connection")
    fields = Fields(json_body())
    fields.only(("conflict", "write"), ignored=("id", "name", "writable"))
    conflict = fields.boolean("conflict")
    write = fields.boolean("write")
    try:
        sync.set_calendar_flags(
            calendar,
            conflict=conflict if isinstance(conflict, bool) else None,
            write=write if isinstance(write, bool) else None,
        )
    except InvalidSetup as exc:
        raise invalid(exc.field, exc.message) from exc
    if conflict is True:
        sync.request_refresh(conn)
    return jsonify(calendar_dict(Calendar.get_by_id(calendar.id)))


@bp.post("/connections/<int:connection_id>/refresh")
@require_token
def refresh_connection(connection_id: int):
    """Refresh in the background (deduplicated); poll GET until the status leaves "syncing"."""
    conn = _own(connection_id)
    if conn.status == "needs_reconnect":
        raise ApiError(
            409, "needs_reconnect", "the account refused our credentials; reconnect it first"
        )
    sync.request_refresh(conn)
    return jsonify(connection_dict(Connection.get_by_id(conn.id))), 202
