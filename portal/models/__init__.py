"""Peewee models and the small queries that belong to them, one module per resource.

``db`` is the one ``DatabaseProxy`` every model is bound to (``portal.models.base``);
``from portal.models import X`` names any model or helper, wherever it lives:

- ``base``: ``db``, ``BaseModel``, stored-instant conversions, token hashing, ids, slugs
- ``users``: hosts, browser sessions, API tokens, password resets, OAuth flows and identities
- ``hours``: weekly hours and date overrides
- ``meeting_types``: meeting types and the questions they ask
- ``bookings``: bookings, attendees, the outbox and sent e-mails
- ``calendars``: connections, calendars, busy blocks, written events and copies, Exchange
- ``org``: admin switches, invites, webhooks and their deliveries
"""

from portal.models.base import (
    MAX_ID,
    RESERVED_SLUGS,
    SLUG_RE,
    BaseModel,
    EpochField,
    compiled_sql,
    db,
    first_row_as,
    from_db,
    hash_token,
    insert_instance,
    insert_rows,
    new_token,
    parse_id,
    to_db,
    to_epoch,
    utcnow,
    validate_slug,
)
from portal.models.bookings import Booking, BookingAttendee, Outbox, SentEmail
from portal.models.calendars import (
    SHORT_SPAN,
    BookingCopy,
    BusyBlock,
    BusyDay,
    Calendar,
    CalendarEvent,
    Connection,
    ExchangeOrganisation,
)
from portal.models.hours import DEFAULT_WEEKLY, DateOverride, WeeklyHours
from portal.models.meeting_types import MeetingType, Question
from portal.models.org import AppSetting, Invite, Webhook, WebhookDelivery
from portal.models.users import ApiToken, OAuthFlow, OAuthIdentity, PasswordReset, User, UserSession

# Every table, in the order they are created (a table after those it refers to).
ALL_MODELS = [
    User,
    WeeklyHours,
    DateOverride,
    MeetingType,
    Booking,
    ApiToken,
    Outbox,
    Connection,
    Calendar,
    BusyBlock,
    BusyDay,
    CalendarEvent,
    SentEmail,
    AppSetting,
    UserSession,
    PasswordReset,
    OAuthFlow,
    OAuthIdentity,
    Invite,
    BookingAttendee,
    Question,
    Webhook,
    WebhookDelivery,
    BookingCopy,
    ExchangeOrganisation,
]

__all__ = [
    "ALL_MODELS",
    "DEFAULT_WEEKLY",
    "MAX_ID",
    "RESERVED_SLUGS",
    "SHORT_SPAN",
    "SLUG_RE",
    "ApiToken",
    "AppSetting",
    "BaseModel",
    "Booking",
    "BookingAttendee",
    "BookingCopy",
    "BusyBlock",
    "BusyDay",
    "Calendar",
    "CalendarEvent",
    "Connection",
    "DateOverride",
    "EpochField",
    "ExchangeOrganisation",
    "Invite",
    "MeetingType",
    "OAuthFlow",
    "OAuthIdentity",
    "Outbox",
    "PasswordReset",
    "Question",
    "SentEmail",
    "User",
    "UserSession",
    "Webhook",
    "WebhookDelivery",
    "db",
    "first_row_as",
    "from_db",
    "hash_token",
    "new_token",
    "parse_id",
    "compiled_sql",
    "insert_instance",
    "insert_rows",
    "to_db",
    "to_epoch",
    "utcnow",
    "validate_slug",
]
