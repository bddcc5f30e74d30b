"""The OpenAPI 3.1 document of the JSON API, declared once.

Every route of ``/api/v1`` has exactly one :class:`Op` entry in ``OPERATIONS``
and its bodies a schema in ``SCHEMAS``; :func:`document` turns that
declaration into the document served at ``/api/v1/openapi.json``. A test
compares the declaration with Flask's ``url_map`` both ways, so a route added
without an entry (or an entry without a route) fails CI instead of drifting.

To document a new route: add its body / response schemas to ``SCHEMAS`` and
one ``Op(...)`` to ``OPERATIONS``. The usual error answers (401, 404, 413,
422) are added from the entry's flags, so an entry only names what is
particular to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .locations import KINDS as LOCATION_KINDS
from .questions import KINDS as QUESTION_KINDS
from .questions import MAX_LABEL, MAX_LONG, MAX_OPTION, MAX_OPTIONS, MAX_QUESTIONS
from .webhooks import EVENTS as WEBHOOK_EVENTS

API_VERSION = "1.0.0"

# Wall-clock time of day; "24:00" is only meaningful as the end of a window,
# which the API checks (JSON Schema cannot relate two array items).
TIME = {"type": "string", "pattern": r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$", "examples": ["09:00"]}
DATE = {"type": "string", "format": "date", "examples": ["2026-12-24"]}
DATETIME = {"type": "string", "format": "date-time", "examples": ["2026-12-01T09:00:00+01:00"]}
ZONE = {"type": "string", "description": "IANA time zone", "examples": ["Europe/Berlin"]}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    return {"oneOf": [schema, {"type": "null"}]}


def minutes(low: int, high: int, description: str = "") -> dict:
    out: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    if description:
        out["description"] = description
    return out


# Bounds shared by the schemas and the API's own checks (portal.views.api).
MEETING_TYPE_BOUNDS = {
    "duration_minutes": (5, 720),
    "buffer_before_minutes": (0, 720),
    "buffer_after_minutes": (0, 720),
    "lead_time_minutes": (0, 525_600),
    "window_days": (1, 730),
    "slot_interval_minutes": (5, 720),
    "daily_limit": (1, 1000),
}
HOST_LEAD_TIME_MAX = 525_600  # one year, in minutes
MAX_SLOT_RANGE_DAYS = 62
MAX_INTERVALS_PER_DAY = 48
MAX_OVERRIDES = 1000
MAX_TYPE_NAME = 200
MAX_LOCATION = 255
MAX_DESCRIPTION = 5000


def _meeting_type_fields() -> dict:
    b = MEETING_TYPE_BOUNDS
    return {
        "slug": {
            "type": "string",
            "pattern": r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$",
            "description": "lowercase letters, digits and dashes; unique per host; "
            "words the app routes use are refused",
        },
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_TYPE_NAME},
        "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
        "duration_minutes": minutes(*b["duration_minutes"]),
        "buffer_before_minutes": minutes(*b["buffer_before_minutes"]),
        "buffer_after_minutes": minutes(*b["buffer_after_minutes"]),
        "lead_time_minutes": minutes(
            *b["lead_time_minutes"], "minimum notice; the host's own lead time also applies"
        ),
        "window_days": minutes(*b["window_days"], "how many days ahead invitees may book"),
        "slot_interval_minutes": nullable(
            minutes(*b["slot_interval_minutes"], "null = the duration")
        ),
        "daily_limit": nullable(
            minutes(*b["daily_limit"], "bookings of this type per day; null = no limit")
        ),
        "location": {
            "type": "string",
            "maxLength": MAX_LOCATION,
            "description": "the link, phone number or address, as `location_kind` says",
        },
        "location_kind": {
            "type": "string",
            "enum": list(LOCATION_KINDS),
            "description": "`custom`: the text as written; `link`: a fixed URL; `phone`; "
            "`address`; `personal`: the host's personal meeting link; `google_meet` / `teams`: "
            "a link made per booking in the host's Google / Microsoft calendar for new bookings",
        },
        "active": {"type": "boolean", "description": "inactive types are not bookable"},
    }


_BOOKING_FIELDS: dict[str, Any] = {
    "uid": {"type": "string"},
    "start": DATETIME,
    "end": DATETIME,
    "status": {"type": "string", "enum": ["confirmed", "cancelled", "rescheduled"]},
    "meeting_type": {"type": "string"},
    "name": {"type": "string"},
    "email": {"type": "string", "format": "email"},
    "timezone": ZONE,
    "notes": {"type": "string"},
    "location": {"type": "string"},
    "location_kind": {"type": "string", "enum": list(LOCATION_KINDS)},
    "meeting_link": {
        "type": "string",
        "description": "where to join: the Meet/Teams link the calendar made, the host's "
        "personal link, or the location; empty while a link is still being made",
    },
    "answers": {"type": "array", "items": {"$ref": "#/components/schemas/Answer"}},
    "created_at": DATETIME,
}

SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["invalid"]},
                    "message": {"type": "string"},
                    "field": {
                        "type": "string",
                        "description": "the input at fault, e.g. `email`, `weekly.mon[0]`",
                    },
                },
            }
        },
    },
    "Me": {
        "type": "object",
        "required": ["id", "email", "slug", "name", "timezone", "lead_time_minutes"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string", "format": "email"},
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "timezone": ZONE,
            "lead_time_minutes": {"type": "integer"},
            "is_admin": {"type": "boolean"},
            "allow_booking": {"type": "boolean"},
            "profile_url": {"type": "string", "format": "uri"},
        },
    },
    "Interval": {
        "type": "array",
        "description": '["HH:MM", "HH:MM"], start before end; "24:00" only as an end',
        "prefixItems": [TIME, TIME],
        "minItems": 2,
        "maxItems": 2,
        "items": False,
    },
    "Intervals": {
        "type": "array",
        "items": ref("Interval"),
        "maxItems": MAX_INTERVALS_PER_DAY,
        "description": "non-overlapping windows of one day; [] = not bookable",
    },
    "Availability": {
        "type": "object",
        "description": "PUT replaces all of it; a weekday left out of `weekly` is a day off.",
        "required": ["timezone", "weekly", "overrides", "lead_time_minutes"],
        "additionalProperties": False,
        "properties": {
            "timezone": ZONE,
            "weekly": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    day: ref("Intervals")
                    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
                },
            },
            "overrides": {
                "type": "array",
                "maxItems": MAX_OVERRIDES,
                "description": "replace a date's weekly windows; one entry per date",
                "items": {
                    "type": "object",
                    "required": ["date", "intervals"],
                    "additionalProperties": False,
                    "properties": {"date": DATE, "intervals": ref("Intervals")},
                },
            },
            "lead_time_minutes": minutes(0, HOST_LEAD_TIME_MAX, "minimum notice for every type"),
        },
    },
    "MeetingType": {
        "type": "object",
        "required": list(_meeting_type_fields()) + ["booking_url"],
        "properties": _meeting_type_fields()
        | {"booking_url": {"type": "string", "format": "uri", "readOnly": True}},
    },
    "MeetingTypeCreate": {
        "type": "object",
        "required": ["slug", "name", "duration_minutes"],
        "additionalProperties": False,
        "properties": _meeting_type_fields(),
    },
    "MeetingTypePatch": {
        "type": "object",
        "description": "only the fields given change; `booking_url` is ignored",
        "additionalProperties": False,
        "properties": _meeting_type_fields() | {"booking_url": {"readOnly": True}},
    },
    "MeetingTypeList": {
        "type": "object",
        "required": ["meeting_types"],
        "properties": {"meeting_types": {"type": "array", "items": ref("MeetingType")}},
    },
    "Slots": {
        "type": "object",
        "required": ["timezone", "slots"],
        "properties": {
            "timezone": ZONE,
            "meeting_type": {"type": "string"},
            "duration_minutes": {"type": "integer"},
            "slots": {
                "type": "array",
                "items": DATETIME,
                "description": "offered starts, with the offset of `timezone`",
            },
        },
    },
    "BookingRequest": {
        "type": "object",
        "required": ["start", "name", "email"],
        "additionalProperties": False,
        "properties": {
            "start": DATETIME | {"description": "one of the offered slots, with an offset"},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "email": {"type": "string", "format": "email"},
            "timezone": ZONE | {"description": "the invitee's zone; default UTC"},
            "notes": {"type": "string", "maxLength": 5000},
            "idempotency_key": nullable(
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 200,
                    "description": "retrying with the same key returns the same booking",
                }
            ),
            "answers": {
                "type": "object",
                "description": "the meeting type's questions (`GET …/questions`) by key: text, "
                "or a list of choices for checkboxes; a bad answer is 422 `answers.<key>`",
                "additionalProperties": {
                    "oneOf": [
                        {"type": "string", "maxLength": MAX_LONG},
                        {"type": "array", "items": {"type": "string"}},
                    ]
                },
            },
        },
    },
    "PublicBooking": {
        "type": "object",
        "required": ["uid", "start", "end", "status", "manage_url"],
        "properties": _BOOKING_FIELDS
        | {
            "manage_url": {
                "type": "string",
                "format": "uri",
                "description": "the invitee's private link to cancel or reschedule",
            }
        },
    },
    "Booking": {
        "type": "object",
        "required": ["uid", "start", "end", "status", "calendar_event"],
        "properties": _BOOKING_FIELDS
        | {
            "calendar_event": {
                "type": "object",
                "required": ["status", "calendar_id"],
                "properties": {
                    "status": {
                        "type": "string",
                        "enum": ["pending", "written", "failed", "deleted"],
                    },
                    "calendar_id": nullable({"type": "integer"}),
                },
            },
            "rescheduled_to": nullable({"type": "string", "description": "uid of the new booking"}),
            "rescheduled_from": nullable({"type": "string"}),
            "cancelled_at": nullable(DATETIME),
            "cancelled_by": {"type": "string", "enum": ["", "invitee", "host"]},
            "cancel_reason": {"type": "string"},
        },
    },
    "BookingList": {
        "type": "object",
        "required": ["bookings", "total", "limit", "offset", "next_offset"],
        "properties": {
            "bookings": {"type": "array", "items": ref("Booking")},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "next_offset": nullable({"type": "integer"}),
        },
    },
    "CancelRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"reason": {"type": "string", "maxLength": 5000}},
    },
    "RescheduleRequest": {
        "type": "object",
        "required": ["start"],
        "additionalProperties": False,
        "properties": {"start": DATETIME},
    },
    # Calendar connections (portal.views.api_connections)
    "Calendar": {
        "type": "object",
        "required": ["id", "name", "writable", "conflict", "write"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "writable": {"type": "boolean", "description": "the account may create events here"},
            "conflict": {"type": "boolean", "description": "its busy times block slots"},
            "write": {"type": "boolean", "description": "receives new bookings (one per host)"},
        },
    },
    "Connection": {
        "type": "object",
        "required": ["id", "provider", "status", "last_synced_at", "calendars"],
        "properties": {
            "id": {"type": "integer"},
            "provider": {"type": "string", "examples": ["caldav"]},
            "label": {"type": "string", "description": "account name, user @ server, feed name"},
            "status": {"type": "string", "enum": ["ok", "syncing", "needs_reconnect", "error"]},
            "last_synced_at": nullable(DATETIME),
            "last_error": {"type": "string"},
            "calendars": {"type": "array", "items": ref("Calendar")},
        },
    },
    "ConnectionList": {
        "type": "object",
        "required": ["connections"],
        "properties": {"connections": {"type": "array", "items": ref("Connection")}},
    },
    "ConnectionRequest": {
        "type": "object",
        "required": ["provider"],
        "description": 'ICS: `{"provider": "ics", "url"}`; CalDAV: `{"provider": "caldav", '
        '"url", "username", "password"}` (iCloud: an app-specific password); Exchange: '
        '`{"provider": "exchange", "email", "password", "ews_url"?, "username"?}`. Google '
        "and Microsoft accounts are connected in the browser.",
        "additionalProperties": False,
        "properties": {
            "provider": {"type": "string", "enum": ["ics", "caldav", "exchange"]},
            "url": {"type": "string", "maxLength": 2000},
            "username": {"type": "string", "maxLength": 320},
            "password": {"type": "string", "maxLength": 1000},
            "email": {"type": "string", "maxLength": 320},
            "ews_url": {"type": "string", "maxLength": 2000},
        },
    },
    "CalendarPatch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "conflict": {"type": "boolean"},
            "write": {"type": "boolean", "description": "true moves the write flag here"},
        },
    },
    "OpenApiDocument": {"type": "object", "description": "this document"},
    # Exchange corporate connection (portal.exchange_org)
    "ExchangeOrganisationRequest": {
        "type": "object",
        "required": ["email"],
        "additionalProperties": False,
        "properties": {
            "email": {"type": "string", "format": "email", "description": "the mailbox"},
            "password": {"type": "string", "description": "blank keeps the stored one"},
            "username": {"type": "string", "description": "blank, the address, or DOMAIN\\user"},
            "ews_url": {"type": "string", "description": "blank: found by Autodiscover"},
            "access": {"type": "string", "enum": ["delegate", "impersonation"]},
        },
    },
    "ExchangeMember": {
        "type": "object",
        "required": ["user_id", "email", "mailbox", "role", "connection_id", "status"],
        "properties": {
            "user_id": {"type": "integer"},
            "email": {"type": "string"},
            "mailbox": {"type": "string", "description": "the member's Exchange address"},
            "role": {"type": "string", "enum": ["main", "busy", "additional", "none"]},
            "connection_id": nullable({"type": "integer"}),
            "status": nullable({"type": "string"}),
        },
    },
    "ExchangeOrganisation": {
        "type": "object",
        "required": ["email", "ews_url", "username", "access", "status", "members"],
        "properties": {
            "email": {"type": "string"},
            "ews_url": {"type": "string"},
            "autodiscovered": {"type": "boolean"},
            "username": {"type": "string"},
            "access": {"type": "string", "enum": ["delegate", "impersonation"]},
            "auth_type": {"type": "string", "enum": ["ntlm", "basic", ""]},
            "version": {"type": "string", "description": "the server's build"},
            "status": {"type": "string"},
            "members": {"type": "array", "items": ref("ExchangeMember")},
        },
    },
    "ExchangeMailboxRequest": {
        "type": "object",
        "required": ["mailbox"],
        "additionalProperties": False,
        "properties": {"mailbox": {"type": "string", "description": "blank: the Kairos e-mail"}},
    },
    "ExchangeRoleRequest": {
        "type": "object",
        "required": ["role"],
        "additionalProperties": False,
        "properties": {"role": {"type": "string", "enum": ["main", "busy", "additional", "none"]}},
    },
}

# ---- Meeting details (portal.views.api_details): link and signature, questions, webhooks,
# the calendar feed and the schedule.
_QUESTION = {
    "key": {
        "type": "string",
        "pattern": r"^[a-z][a-z0-9_]{0,39}$",
        "description": "the answer's name in `answers`; made from the label when left out",
    },
    "label": {"type": "string", "minLength": 1, "maxLength": MAX_LABEL},
    "kind": {"type": "string", "enum": list(QUESTION_KINDS)},
    "required": {"type": "boolean"},
    "options": {
        "type": "array",
        "maxItems": MAX_OPTIONS,
        "items": {"type": "string", "minLength": 1, "maxLength": MAX_OPTION},
        "description": "the choices of `single_choice` (two or more) and `checkboxes`",
    },
}
_WEBHOOK_FIELDS = {
    "url": {
        "type": "string",
        "maxLength": 2000,
        "description": "https:// (http:// only where allowed); no private addresses",
    },
    "events": {
        "type": "array",
        "items": {"type": "string", "enum": list(WEBHOOK_EVENTS)},
        "minItems": 1,
        "description": "default: all three",
    },
    "description": {"type": "string", "maxLength": 200},
    "active": {"type": "boolean"},
}
SCHEMAS.update(
    {
        "Answer": {
            "type": "object",
            "required": ["key", "label", "value"],
            "properties": {
                "key": {"type": "string"},
                "label": {"type": "string", "description": "the question as it was asked"},
                "value": {
                    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
                },
            },
        },
        "MeetingDetails": {
            "type": "object",
            "required": ["meeting_link", "email_signature"],
            "properties": {
                "meeting_link": {
                    "type": "string",
                    "description": "personal meeting link (types of kind `personal`)",
                },
                "email_signature": {"type": "string", "description": "plain text"},
            },
        },
        "MeetingDetailsPatch": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "meeting_link": {
                    "type": "string",
                    "maxLength": 1000,
                    "description": "an http(s) URL, or empty",
                },
                "email_signature": {"type": "string", "maxLength": 2000},
            },
        },
        "Question": {"type": "object", "required": list(_QUESTION), "properties": _QUESTION},
        "QuestionList": {
            "type": "object",
            "required": ["questions"],
            "properties": {"questions": {"type": "array", "items": ref("Question")}},
        },
        "QuestionsRequest": {
            "type": "object",
            "required": ["questions"],
            "additionalProperties": False,
            "description": "replaces the type's questions, in this order",
            "properties": {
                "questions": {
                    "type": "array",
                    "maxItems": MAX_QUESTIONS,
                    "items": {
                        "type": "object",
                        "required": ["label", "kind"],
                        "additionalProperties": False,
                        "properties": _QUESTION,
                    },
                }
            },
        },
        "Webhook": {
            "type": "object",
            "required": ["id", "url", "events", "active", "last_delivery"],
            "properties": _WEBHOOK_FIELDS
            | {
                "id": {"type": "integer"},
                "created_at": DATETIME,
                "last_delivery": nullable(ref("Delivery")),
            },
        },
        "WebhookCreated": {
            "type": "object",
            "required": ["id", "url", "events", "active", "secret"],
            "properties": _WEBHOOK_FIELDS
            | {
                "id": {"type": "integer"},
                "created_at": DATETIME,
                "last_delivery": nullable(ref("Delivery")),
                "secret": {"type": "string", "description": "whsec_…; shown only this once"},
            },
        },
        "WebhookList": {
            "type": "object",
            "required": ["webhooks"],
            "properties": {"webhooks": {"type": "array", "items": ref("Webhook")}},
        },
        "WebhookRequest": {
            "type": "object",
            "required": ["url"],
            "additionalProperties": False,
            "properties": _WEBHOOK_FIELDS,
        },
        "WebhookPatch": {
            "type": "object",
            "additionalProperties": False,
            "description": "only the fields given change; `id`, `created_at` and "
            "`last_delivery` are ignored",
            "properties": _WEBHOOK_FIELDS
            | {k: {"readOnly": True} for k in ("id", "created_at", "last_delivery")},
        },
        "Delivery": {
            "type": "object",
            "required": ["id", "delivery", "event_id", "event", "status", "attempts"],
            "properties": {
                "id": {"type": "integer"},
                "delivery": {"type": "string", "description": "X-Kairos-Delivery"},
                "event_id": {"type": "string", "description": "the body's `id`"},
                "event": {"type": "string", "enum": list(WEBHOOK_EVENTS)},
                "booking_uid": {"type": "string"},
                "status": {
                    "type": "string",
                    "enum": ["pending", "retrying", "delivered", "failed"],
                },
                "attempts": {"type": "integer"},
                "response_status": nullable({"type": "integer"}),
                "error": {"type": "string"},
                "duration_ms": nullable({"type": "integer"}),
                "created_at": DATETIME,
                "last_attempt_at": nullable(DATETIME),
                "delivered_at": nullable(DATETIME),
                "replay_of": nullable({"type": "integer"}),
                "payload": {"type": "string", "description": "the exact JSON body sent"},
                "response_body": {"type": "string", "description": "the start of the answer"},
            },
        },
        "DeliveryList": {
            "type": "object",
            "required": ["deliveries"],
            "properties": {"deliveries": {"type": "array", "items": ref("Delivery")}},
        },
        "Feed": {
            "type": "object",
            "required": ["active", "url"],
            "properties": {
                "active": {"type": "boolean"},
                "url": nullable({"type": "string", "format": "uri"}),
            },
        },
        "Schedule": {
            "type": "object",
            "required": ["timezone", "items"],
            "properties": {
                "timezone": ZONE,
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["kind", "start", "end", "label"],
                        "properties": {
                            "kind": {"type": "string", "enum": ["booking", "busy"]},
                            "start": DATETIME,
                            "end": DATETIME,
                            "label": {
                                "type": "string",
                                "description": "busy blocks: `Busy · <calendar name>`",
                            },
                            "calendar": {"type": "string"},
                            "booking": ref("Booking"),
                        },
                    },
                },
            },
        },
    }
)


@dataclass(frozen=True)
class Param:
    """A query parameter."""

    name: str
    schema: dict
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Op:
    """One documented route: ``path`` uses OpenAPI's ``{name}`` placeholders."""

    method: str
    path: str
    summary: str
    tag: str
    responses: dict[int, tuple[str, str | None]]  # status → (description, schema name)
    auth: bool = True
    body: str | None = None  # schema name of a JSON request body
    body_required: bool = True
    query: tuple[Param, ...] = ()
    description: str = ""
    errors: tuple[int, ...] = field(default=())  # extra error answers, e.g. (409,)


_DATE_PARAM = {"type": "string", "format": "date"}

OPERATIONS: list[Op] = [
    Op(
        "get",
        "/api/v1/openapi.json",
        "This OpenAPI document",
        "meta",
        {200: ("the document", "OpenApiDocument")},
        auth=False,
    ),
    Op("get", "/api/v1/me", "The token's host", "host", {200: ("the host", "Me")}),
    Op(
        "get",
        "/api/v1/availability",
        "Weekly hours, date overrides, time zone and lead time",
        "host",
        {200: ("availability", "Availability")},
    ),
    Op(
        "put",
        "/api/v1/availability",
        "Replace the availability",
        "host",
        {200: ("the stored availability", "Availability")},
        body="Availability",
    ),
    Op(
        "get",
        "/api/v1/meeting-types",
        "The host's meeting types",
        "meeting types",
        {200: ("meeting types", "MeetingTypeList")},
    ),
    Op(
        "post",
        "/api/v1/meeting-types",
        "Create a meeting type",
        "meeting types",
        {201: ("created", "MeetingType")},
        body="MeetingTypeCreate",
        errors=(409,),
        description="409 `slug_taken` when the host already has a type with this slug.",
    ),
    Op(
        "get",
        "/api/v1/meeting-types/{slug}",
        "One meeting type",
        "meeting types",
        {200: ("the meeting type", "MeetingType")},
    ),
    Op(
        "patch",
        "/api/v1/meeting-types/{slug}",
        "Change some fields of a meeting type",
        "meeting types",
        {200: ("the changed meeting type", "MeetingType")},
        body="MeetingTypePatch",
        errors=(409,),
    ),
    Op(
        "delete",
        "/api/v1/meeting-types/{slug}",
        "Delete a meeting type (its existing bookings stay)",
        "meeting types",
        {204: ("deleted", None)},
    ),
    Op(
        "get",
        "/api/v1/hosts/{host}/{type}/slots",
        "Offered start times (public)",
        "public",
        {200: ("slots", "Slots")},
        auth=False,
        query=(
            Param("start", _DATE_PARAM, "first day, in `tz`; default today"),
            Param("end", _DATE_PARAM, f"last day (inclusive); ≤ {MAX_SLOT_RANGE_DAYS} days"),
            Param("tz", ZONE, "zone of the days and of the answer; default the host's"),
        ),
    ),
    Op(
        "post",
        "/api/v1/hosts/{host}/{type}/bookings",
        "Book a slot (public)",
        "public",
        {
            201: ("booked", "PublicBooking"),
            200: ("the booking made earlier with this idempotency key", "PublicBooking"),
        },
        auth=False,
        body="BookingRequest",
        errors=(409, 429),
        description=(
            "201 for a new booking. Repeating a request with the same `idempotency_key` "
            "returns the same booking (same `uid`) with 200. 409 `slot_taken` when the "
            "time was just taken; 409 `idempotency_conflict` when the key was used for a "
            "different time, type or e-mail; 422 `start` when the time is not offered."
        ),
    ),
    Op(
        "get",
        "/api/v1/bookings",
        "The host's bookings",
        "bookings",
        {200: ("a page of bookings", "BookingList")},
        query=(
            Param(
                "status",
                {"type": "string", "enum": ["upcoming", "past", "cancelled"]},
                "upcoming: confirmed, not yet ended (soonest first); past: confirmed, ended; "
                "cancelled. Absent: every booking, rescheduled ones included.",
            ),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}),
            Param("offset", {"type": "integer", "minimum": 0, "default": 0}),
        ),
    ),
    Op(
        "get",
        "/api/v1/bookings/{uid}",
        "One booking, with its calendar write-back state",
        "bookings",
        {200: ("the booking", "Booking")},
    ),
    Op(
        "post",
        "/api/v1/bookings/{uid}/cancel",
        "Cancel a booking (as the host)",
        "bookings",
        {200: ("the cancelled booking", "Booking")},
        body="CancelRequest",
        body_required=False,
        errors=(409,),
        description="409 `not_allowed` when the booking is not confirmed (cancelled already, "
        "or rescheduled).",
    ),
    Op(
        "post",
        "/api/v1/bookings/{uid}/reschedule",
        "Move a booking to another offered time",
        "bookings",
        {201: ("the new booking that replaces this one", "Booking")},
        body="RescheduleRequest",
        errors=(409,),
        description="The booking becomes `rescheduled` and a new booking (new `uid`) replaces "
        "it, so a rescheduled or cancelled booking answers 409 `not_allowed`.",
    ),
    Op(
        "get",
        "/api/v1/connections",
        "Your calendar accounts and their calendars",
        "connections",
        {200: ("the connections", "ConnectionList")},
    ),
    Op(
        "post",
        "/api/v1/connections",
        "Connect an ICS feed, a CalDAV account or a personal Exchange account",
        "connections",
        {201: ("the new connection; its first refresh runs in the background", "Connection")},
        body="ConnectionRequest",
        description="Kairos signs in to the server first; a refusal is 422 naming the field "
        "(`password`, `url` …). Busy times appear once `status` leaves `syncing`.",
    ),
    Op(
        "get",
        "/api/v1/connections/{connection_id}",
        "One connection with its status and calendars",
        "connections",
        {200: ("the connection", "Connection")},
    ),
    Op(
        "delete",
        "/api/v1/connections/{connection_id}",
        "Disconnect: the stored password or token is deleted",
        "connections",
        {204: ("disconnected", None)},
    ),
    Op(
        "patch",
        "/api/v1/connections/{connection_id}/calendars/{calendar_id}",
        "Check a calendar for conflicts, or make it the one that receives bookings",
        "connections",
        {200: ("the calendar", "Calendar")},
        body="CalendarPatch",
        description="`write: true` on a read-only calendar is 422 (`write`).",
    ),
    Op(
        "post",
        "/api/v1/connections/{connection_id}/refresh",
        "Read the account's busy times again now",
        "connections",
        {202: ("accepted; poll the connection until `status` leaves `syncing`", "Connection")},
        errors=(409,),
        description="Deduplicated: a refresh already waiting is not queued twice. "
        "409 `needs_reconnect` when the account refused our credentials.",
    ),
    Op(
        "get",
        "/api/v1/exchange/organisation",
        "The Exchange organisation mailbox and its members (admin)",
        "exchange",
        {200: ("the organisation mailbox", "ExchangeOrganisation")},
        errors=(404,),
        description="404 for anyone but an admin, and when none is set up.",
    ),
    Op(
        "put",
        "/api/v1/exchange/organisation",
        "Set up or change the Exchange organisation mailbox (admin)",
        "exchange",
        {200: ("the organisation mailbox", "ExchangeOrganisation")},
        body="ExchangeOrganisationRequest",
        errors=(404,),
        description="Kairos signs in to Exchange first (Autodiscover when `ews_url` is blank); "
        "a failure is 422 naming the field to change, with what to try next.",
    ),
    Op(
        "delete",
        "/api/v1/exchange/organisation",
        "Remove the organisation mailbox; members' calendars through it are disconnected",
        "exchange",
        {204: ("removed", None)},
        errors=(404,),
    ),
    Op(
        "put",
        "/api/v1/exchange/organisation/members/{user_id}",
        "Map a member to their Exchange address (admin)",
        "exchange",
        {200: ("the member", "ExchangeMember")},
        body="ExchangeMailboxRequest",
    ),
    Op(
        "get",
        "/api/v1/exchange/membership",
        "How your Exchange calendar is used through the organisation mailbox",
        "exchange",
        {200: ("your membership", "ExchangeMember")},
        errors=(404,),
    ),
    Op(
        "put",
        "/api/v1/exchange/membership",
        "Choose the role of your Exchange calendar",
        "exchange",
        {200: ("your membership", "ExchangeMember")},
        body="ExchangeRoleRequest",
        errors=(404,),
        description="`main`: the main booking calendar; `busy`: a busy-time source; "
        "`additional`: every booking is copied there too; `none`: disconnect it.",
    ),
]

_WEBHOOK = "/api/v1/webhooks/{webhook_id}"
OPERATIONS += [
    Op(
        "get",
        "/api/v1/me/meeting-details",
        "Your personal meeting link and e-mail signature",
        "host",
        {200: ("meeting details", "MeetingDetails")},
    ),
    Op(
        "patch",
        "/api/v1/me/meeting-details",
        "Change your personal meeting link and/or e-mail signature",
        "host",
        {200: ("meeting details", "MeetingDetails")},
        body="MeetingDetailsPatch",
    ),
    Op(
        "get",
        "/api/v1/meeting-types/{slug}/questions",
        "The questions a meeting type asks invitees",
        "meeting types",
        {200: ("questions, in order", "QuestionList")},
    ),
    Op(
        "put",
        "/api/v1/meeting-types/{slug}/questions",
        "Replace a meeting type's questions",
        "meeting types",
        {200: ("the stored questions", "QuestionList")},
        body="QuestionsRequest",
        description="Answers given to earlier questions stay with their bookings.",
    ),
    Op(
        "get",
        "/api/v1/hosts/{host}/{type}/questions",
        "The questions a booking must answer (public)",
        "public",
        {200: ("questions, in order", "QuestionList")},
        auth=False,
    ),
    Op("get", "/api/v1/webhooks", "Your webhooks", "webhooks", {200: ("webhooks", "WebhookList")}),
    Op(
        "post",
        "/api/v1/webhooks",
        "Register a webhook",
        "webhooks",
        {201: ("registered; `secret` is shown only in this answer", "WebhookCreated")},
        body="WebhookRequest",
        description="Deliveries are POSTs of JSON signed with `X-Kairos-Signature: "
        't=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`.',
    ),
    Op("get", _WEBHOOK, "One webhook", "webhooks", {200: ("the webhook", "Webhook")}),
    Op(
        "patch",
        _WEBHOOK,
        "Change a webhook",
        "webhooks",
        {200: ("the webhook", "Webhook")},
        body="WebhookPatch",
    ),
    Op("delete", _WEBHOOK, "Delete a webhook and its log", "webhooks", {204: ("deleted", None)}),
    Op(
        "post",
        _WEBHOOK + "/secret",
        "Make a new signing secret",
        "webhooks",
        {200: ("the new `secret`, shown only in this answer", "WebhookCreated")},
    ),
    Op(
        "get",
        _WEBHOOK + "/deliveries",
        "The delivery log (last 30 days, newest first)",
        "webhooks",
        {200: ("deliveries", "DeliveryList")},
    ),
    Op(
        "post",
        _WEBHOOK + "/deliveries/{delivery_id}/replay",
        "Send a finished delivery again",
        "webhooks",
        {202: ("the new delivery, queued", "Delivery")},
        errors=(409,),
        description="Same body and event id, a new delivery id. 409 `not_finished` while "
        "the delivery is still being tried.",
    ),
    Op("get", "/api/v1/feed", "Your private calendar feed URL", "feed", {200: ("feed", "Feed")}),
    Op(
        "post",
        "/api/v1/feed",
        "Create the feed, or give it a new URL (the old one stops working)",
        "feed",
        {201: ("feed", "Feed")},
    ),
    Op("delete", "/api/v1/feed", "Turn the feed off", "feed", {204: ("turned off", None)}),
    Op(
        "get",
        "/api/v1/schedule",
        "Your bookings and calendar busy blocks, day by day",
        "host",
        {200: ("the schedule", "Schedule")},
        query=(
            Param("start", _DATE_PARAM, "first day, in `tz`; default today"),
            Param("end", _DATE_PARAM, "last day (inclusive), at most 62 days; default `start`"),
            Param("tz", ZONE, "zone of the days; default yours"),
        ),
    ),
]

_ERROR_TEXT = {
    401: "no or an invalid bearer token",
    404: "not found (or not yours)",
    409: "conflict with the current state",
    413: "body larger than the size cap",
    422: "invalid input; `error.field` names it",
    429: "too many requests from this address; retry after `Retry-After` seconds",
}


def _operation(op: Op) -> dict:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    params += [
        {"name": p.name, "in": "query", "required": p.required, "schema": p.schema}
        | ({"description": p.description} if p.description else {})
        for p in op.query
    ]
    responses: dict[str, Any] = {}
    for status, (text, schema) in sorted(op.responses.items()):
        responses[str(status)] = {"description": text}
        if schema:
            responses[str(status)]["content"] = {"application/json": {"schema": ref(schema)}}
    errors = set(op.errors)
    if op.auth:
        errors.add(401)
    if "{" in op.path:
        errors.add(404)
    if op.body:
        errors |= {413, 422}
    if op.query:
        errors.add(422)
    for status in sorted(errors):
        responses[str(status)] = {
            "description": _ERROR_TEXT[status],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    out: dict[str, Any] = {
        "operationId": f"{op.method}_{re.sub(r'[^a-z0-9]+', '_', op.path[8:].lower()).strip('_')}",
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if op.description:
        out["description"] = op.description
    if params:
        out["parameters"] = params
    if op.body:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": ref(op.body)}},
        }
    out["security"] = [{"bearer": []}] if op.auth else []
    return out


@cache
def document() -> dict:
    """The OpenAPI 3.1 document built from ``OPERATIONS`` and ``SCHEMAS``."""
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Kairos API",
            "version": API_VERSION,
            "description": (
                "Bearer tokens come from the settings page or `flask --app wsgi tokens create`. "
                'Errors are `{"error": {"code", "message", "field"?}}`; invalid input is 422 '
                "naming the field. Instants are ISO 8601 with an offset."
            ),
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
