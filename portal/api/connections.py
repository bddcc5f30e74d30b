"""JSON API: calendar connections (``/api/v1/connections``).

``GET|POST /connections``, ``GET|DELETE /connections/<id>``,
``PATCH /connections/<id>/calendars/<calendar_id>`` ``{"conflict", "write"}``
and ``POST /connections/<id>/refresh`` (202). OAuth providers connect in the
browser; ICS, CalDAV and personal Exchange accounts connect here too. Every
connection is looked up through the token's user: another host's id is 404.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from portal.api.base import ApiError, invalid, json_errors, not_found, operation, require_token
from portal.api.schemas.connections import (
    CONNECT_FIELDS,
    CalendarPatch,
    ConnectionList,
    ConnectionRequest,
)
from portal.api.schemas.connections import Calendar as CalendarAnswer
from portal.api.schemas.connections import Connection as ConnectionAnswer
from portal.calendars import refresh_queue, sync
from portal.calendars.providers import REGISTRY, InvalidSetup, provider_class
from portal.models import Calendar, Connection, from_db

bp = json_errors(Blueprint("api_connections", __name__, url_prefix="/api/v1"))


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
@operation(
    "Your calendar accounts and their calendars",
    "connections",
    {200: ("the connections", ConnectionList)},
)
def list_connections():
    conns = Connection.select().where(Connection.user == g.api_user).order_by(Connection.id)
    return jsonify({"connections": [connection_dict(c) for c in conns]})


@bp.post("/connections")
@require_token
@operation(
    "Connect an ICS feed, a CalDAV account or a personal Exchange account",
    "connections",
    {201: ("the new connection; its first refresh runs in the background", ConnectionAnswer)},
    body=ConnectionRequest,
    description="Kairos signs in to the server first; a refusal is 422 naming the field "
    "(`password`, `url` …). Busy times appear once `status` leaves `syncing`.",
)
def create_connection(body: ConnectionRequest):
    """Connect an account: checked with its server first; 422 names the field at fault."""
    provider = body.provider
    if provider not in REGISTRY:
        raise invalid("provider", "unknown provider; one of " + ", ".join(sorted(REGISTRY)))
    if provider not in CONNECT_FIELDS:
        title = provider_class(provider).title or provider
        raise invalid("provider", f"{title} accounts are connected in the browser (Settings)")
    limits = CONNECT_FIELDS[provider]
    foreign = sorted(body.model_fields_set - {"provider", *limits})
    if foreign:
        raise invalid(foreign[0], f"unknown field for {provider}; send {', '.join(limits)}")
    values = {key: getattr(body, key) for key in limits}
    try:
        conn = sync.connect(g.api_user, provider, values)
    except InvalidSetup as exc:
        field = exc.field if exc.field in limits or exc.field == "provider" else next(iter(limits))
        raise invalid(field, exc.message) from exc
    refresh_queue.request_refresh(conn)
    return jsonify(connection_dict(Connection.get_by_id(conn.id))), 201


@bp.get("/connections/<int:connection_id>")
@require_token
@operation(
    "One connection with its status and calendars",
    "connections",
    {200: ("the connection", ConnectionAnswer)},
)
def get_connection(connection_id: int):
    return jsonify(connection_dict(_own(connection_id)))


@bp.delete("/connections/<int:connection_id>")
@require_token
@operation(
    "Disconnect: the stored password or token is deleted",
    "connections",
    {204: ("disconnected", None)},
)
def delete_connection(connection_id: int):
    """Disconnect: the stored secret, calendars and cached busy time are deleted."""
    sync.disconnect(_own(connection_id))
    return "", 204


@bp.patch("/connections/<int:connection_id>/calendars/<int:calendar_id>")
@require_token
@operation(
    "Check a calendar for conflicts, or make it the one that receives bookings",
    "connections",
    {200: ("the calendar", CalendarAnswer)},
    body=CalendarPatch,
    description="`write: true` on a read-only calendar is 422 (`write`).",
)
def patch_calendar(connection_id: int, calendar_id: int, body: CalendarPatch):
    """``conflict``: checked for busy time; ``write``: receives new bookings (one per host)."""
    conn = _own(connection_id)
    calendar = Calendar.get_or_none(Calendar.id == calendar_id, Calendar.connection == conn)
    if calendar is None:
        raise not_found("no such calendar in this connection")
    conflict, write = body.conflict, body.write
    try:
        sync.set_calendar_flags(
            calendar,
            conflict=conflict,
            write=write,
        )
    except InvalidSetup as exc:
        raise invalid(exc.field, exc.message) from exc
    if conflict is True:
        refresh_queue.request_refresh(conn)
    return jsonify(calendar_dict(Calendar.get_by_id(calendar.id)))


@bp.post("/connections/<int:connection_id>/refresh")
@require_token
@operation(
    "Read the account's busy times again now",
    "connections",
    {202: ("accepted; poll the connection until `status` leaves `syncing`", ConnectionAnswer)},
    errors=(409,),
    description="Deduplicated: a refresh already waiting is not queued twice. "
    "409 `needs_reconnect` when the account refused our credentials.",
)
def refresh_connection(connection_id: int):
    """Refresh in the background (deduplicated); poll GET until the status leaves "syncing"."""
    conn = _own(connection_id)
    if conn.status == "needs_reconnect":
        raise ApiError(
            409, "needs_reconnect", "the account refused our credentials; reconnect it first"
        )
    refresh_queue.request_refresh(conn)
    return jsonify(connection_dict(Connection.get_by_id(conn.id))), 202
