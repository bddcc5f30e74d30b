"""Public slots and booking, and the host's bookings: queries, bodies and answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, WithJsonSchema

from portal.api.schemas.base import (
    Body,
    DateTime,
    Day,
    Instant,
    Query,
    Reply,
    Zone,
    absent,
    fail,
    whole,
)
from portal.api.schemas.meeting_types import LocationKind
from portal.booking.checks import MAX_NAME, MAX_NOTES
from portal.booking.questions import MAX_LONG
from portal.i18n import LANGUAGES

MAX_SLOT_RANGE_DAYS = 62
MAX_EMAIL = 320
MAX_IDEMPOTENCY_KEY = 200


class DaysQuery(Query):
    """Whole days ``start``..``end`` (inclusive) in ``tz``."""

    start: Day | None = Field(default=None, description="first day, in `tz`; default today")
    end: Day | None = Field(default=None, description="last day (inclusive)")
    tz: Zone | None = Field(default=None, description="zone of the days; default the host's")


class SlotsQuery(DaysQuery):
    end: Day | None = Field(
        default=None,
        description=f"last day (inclusive), at most {MAX_SLOT_RANGE_DAYS} days after `start`; "
        "default six days after it",
    )


class Slots(Reply):
    timezone: Zone
    meeting_type: str
    duration_minutes: int
    slots: list[DateTime] = Field(description="offered starts, with the offset of `timezone`")


if TYPE_CHECKING:
    AnswerValue = str | list[str]
else:
    AnswerValue = whole(
        str | list[str],
        "expected text, or a list of choices",
        {
            "oneOf": [
                {"type": "string", "maxLength": MAX_LONG},
                {"type": "array", "items": {"type": "string", "maxLength": MAX_LONG}},
            ]
        },
    )


def _language(value: str) -> str:
    if value not in LANGUAGES:
        raise fail("expected one of " + ", ".join(LANGUAGES))
    return value


#: a language Kairos writes its pages and e-mails in
Language = Annotated[
    str,
    AfterValidator(_language),
    WithJsonSchema({"type": "string", "enum": list(LANGUAGES)}),
]


class BookingRequest(Body):
    start: Instant = Field(description="one of the offered slots, with an offset")
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
    email: Annotated[str, Field(max_length=MAX_EMAIL, json_schema_extra={"format": "email"})]
    timezone: Annotated[str, Field(max_length=64, description="the invitee's IANA zone")] = "UTC"
    notes: Annotated[str, Field(max_length=MAX_NOTES)] = ""
    idempotency_key: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY,
            description="retrying with the same key returns the same booking",
        ),
    ] = None
    answers: dict[str, AnswerValue] = absent(
        description="the meeting type's questions (`GET …/questions`) by key: text, or a list "
        "of choices for checkboxes; a bad answer is 422 `answers.<key>`",
    )
    language: Language = absent(
        description="the invitee's language for their e-mails and pages; default the "
        "request's `Accept-Language` (English when none matches)",
    )


class Answer(Reply):
    key: str
    label: str = Field(description="the question as it was asked")
    value: str | list[str]


_BOOKING_STATUS = Literal["confirmed", "cancelled", "rescheduled"]


class PublicBooking(Reply):
    uid: str
    start: DateTime
    end: DateTime
    status: _BOOKING_STATUS
    meeting_type: str = Field(description="the type's slug at booking time")
    name: str
    email: str = Field(json_schema_extra={"format": "email"})
    timezone: str
    notes: str
    location: str
    location_kind: LocationKind
    meeting_link: str = Field(
        description="where to join: the Meet/Teams link the calendar made, the host's personal "
        "link, or the location; empty while a link is still being made",
    )
    answers: list[Answer]
    created_at: DateTime
    rescheduled_to: str | None = Field(default=None, description="uid of the new booking")
    manage_url: str = Field(
        json_schema_extra={"format": "uri"},
        description="the invitee's private link to cancel or reschedule",
    )


class CalendarEvent(Reply):
    status: Literal["pending", "written", "failed", "deleted", "superseded"] = Field(
        description="`superseded`: the booking was rescheduled; the new booking's event is it"
    )
    calendar_id: int | None


class Booking(Reply):
    uid: str
    start: DateTime
    end: DateTime
    status: _BOOKING_STATUS
    meeting_type: str
    name: str
    email: str = Field(json_schema_extra={"format": "email"})
    timezone: str
    notes: str
    location: str
    location_kind: LocationKind
    meeting_link: str
    answers: list[Answer]
    created_at: DateTime
    calendar_event: CalendarEvent
    # Always in the host's list and detail answers; a schedule's booking leaves them out.
    rescheduled_to: str | None = Field(default=None, description="uid of the new booking")
    rescheduled_from: str | None = Field(default=None, description="uid of the booking it moved")
    cancelled_at: DateTime | None = None
    cancelled_by: Literal["", "invitee", "host"] = ""
    cancel_reason: str = ""


class BookingsQuery(Query):
    status: Literal["upcoming", "past", "cancelled"] | None = Field(
        default=None,
        description="upcoming: confirmed, not yet ended (soonest first); past: confirmed, "
        "ended; cancelled. Absent: every booking, rescheduled ones included.",
    )
    limit: Annotated[int, Field(ge=1, le=100)] = 25
    offset: Annotated[int, Field(ge=0, le=100_000_000)] = 0


class BookingList(Reply):
    bookings: list[Booking]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class CancelRequest(Body):
    reason: Annotated[str, Field(max_length=MAX_NOTES)] = ""


class RescheduleRequest(Body):
    start: Instant
