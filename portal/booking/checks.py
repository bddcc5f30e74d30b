"""What a booking request may carry, checked once: the refusals a person is shown, and the
checks of an invitee's name, e-mail and notes, of time zones and of requested instants."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _

MAX_NAME = 200
MAX_NOTES = 5000
# Dates and instants outside these days are typos, and far ones overflow datetime arithmetic
# (a slot at 9999-12-31T23:30 has no end).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)


class BookingError(Exception):
    """A refusal the caller shows to a person: ``field`` names the input at fault."""

    status = 422
    code = "invalid"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class SlotTaken(BookingError):
    status = 409
    code = "slot_taken"


class NotAllowed(BookingError):
    status = 409
    code = "not_allowed"


class CalendarUnavailable(BookingError):
    """The host's calendar could not be re-checked and the cache is too old to trust."""

    status = 503
    code = "calendar_unavailable"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    # OSError: a key naming a tzdata directory ("Europe") fails as IsADirectoryError.
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        raise BookingError(_("unknown time zone"), "timezone") from exc


def is_valid_zone(name: str) -> bool:
    try:
        zone(name)
    except BookingError:
        return False
    return True


def clean_invitee(name: str, email: str, timezone: str, notes: str) -> tuple[str, str, str, str]:
    name = (name or "").strip()
    if not name:
        raise BookingError(_("name is required"), "name")
    if len(name) > MAX_NAME:
        raise BookingError(_("name is longer than %(max)d characters", max=MAX_NAME), "name")
    if any(ch in name for ch in "\r\n\x00"):
        raise BookingError(_("name cannot contain line breaks"), "name")
    try:
        email = validate_email((email or "").strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        message = _("invalid e-mail address")
        if message == "invalid e-mail address":  # in English the validator's reason helps
            message = f"{message}: {exc}"
        raise BookingError(message, "email") from exc
    timezone = (timezone or "UTC").strip()
    zone(timezone)
    notes = notes or ""
    if len(notes) > MAX_NOTES:
        raise BookingError(_("notes are longer than %(max)d characters", max=MAX_NOTES), "notes")
    return name, email.lower(), timezone, notes


def parse_start(value: object, field: str = "start") -> datetime:
    """An ISO 8601 instant with an explicit offset."""
    if not isinstance(value, str):
        raise BookingError("expected an ISO 8601 date-time with offset", field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BookingError("expected an ISO 8601 date-time with offset", field) from exc
    if parsed.tzinfo is None:
        raise BookingError("the date-time needs a UTC offset", field)
    if not FIRST_DAY <= parsed.date() <= LAST_DAY:
        raise BookingError(f"the date must be between {FIRST_DAY} and {LAST_DAY}", field)
    return parsed.astimezone(UTC)
