"""Meeting types: the bounds the API and the settings form share, the bodies and the answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field

from portal.api.schemas.base import ONE_LINE, Body, Patch, Reply, absent, fail
from portal.booking.locations import KINDS as LOCATION_KINDS
from portal.booking.locations import MAX_LOCATION
from portal.models import SLUG_RE, validate_slug

# (low, high) of each number; portal.web.forms builds its NumberRange checks from these.
DURATION = (5, 720)
BUFFER = (0, 720)
LEAD_TIME = (0, 525_600)  # one year, in minutes
WINDOW_DAYS = (1, 730)
INTERVAL = (5, 720)
DAILY_LIMIT = (1, 1000)
MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_SLUG = 40


def _slug(value: str) -> str:
    problem = validate_slug(value)
    if problem:
        raise fail(problem)
    return value


def _name(value: str) -> str:
    if not value.strip():
        raise fail("name is required")
    return value.strip()


Slug = Annotated[
    str,
    Field(
        max_length=MAX_SLUG,
        pattern=SLUG_RE.pattern,
        description="lowercase letters, digits and dashes; unique per host; "
        "words the app routes use are refused",
    ),
    AfterValidator(_slug),
]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME), ONE_LINE, AfterValidator(_name)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION), AfterValidator(str.strip)]
Duration = Annotated[int, Field(ge=DURATION[0], le=DURATION[1])]
Buffer = Annotated[int, Field(ge=BUFFER[0], le=BUFFER[1])]
LeadTime = Annotated[
    int,
    Field(
        ge=LEAD_TIME[0],
        le=LEAD_TIME[1],
        description="minimum notice; the host's own lead time also applies",
    ),
]
WindowDays = Annotated[
    int,
    Field(ge=WINDOW_DAYS[0], le=WINDOW_DAYS[1], description="how many days ahead invitees book"),
]
SlotInterval = Annotated[
    int | None, Field(ge=INTERVAL[0], le=INTERVAL[1], description="null = the duration")
]
DailyLimit = Annotated[
    int | None,
    Field(
        ge=DAILY_LIMIT[0],
        le=DAILY_LIMIT[1],
        description="bookings of this type per day; null = no limit",
    ),
]
Location = Annotated[
    str,
    Field(
        max_length=MAX_LOCATION,
        description="the link, phone number or address, as `location_kind` says",
    ),
    ONE_LINE,
    AfterValidator(str.strip),
]
if TYPE_CHECKING:  # the kinds are portal.booking.locations' keys, known only at run time
    LocationKind = str
else:
    LocationKind = Annotated[
        Literal[tuple(LOCATION_KINDS)],
        Field(
            description="`custom`: the text as written; `link`: a fixed URL; `phone`; "
            "`address`; `personal`: the host's personal meeting link; `google_meet` / "
            "`teams`: a link made per booking in the host's Google / Microsoft calendar for "
            "new bookings"
        ),
    ]
Active = Annotated[bool, Field(description="inactive types are not bookable")]


class MeetingTypeCreate(Body):
    slug: Slug
    name: Name
    description: Description = ""
    duration_minutes: Duration
    buffer_before_minutes: Buffer = 0
    buffer_after_minutes: Buffer = 0
    lead_time_minutes: LeadTime = 0
    window_days: WindowDays = 60
    slot_interval_minutes: SlotInterval = None
    daily_limit: DailyLimit = None
    location: Location = ""
    location_kind: LocationKind = "custom"
    active: Active = True


class MeetingTypePatch(Patch):
    """Only the fields given change; `booking_url` is ignored."""

    slug: Slug = absent()
    name: Name = absent()
    description: Description = absent()
    duration_minutes: Duration = absent()
    buffer_before_minutes: Buffer = absent()
    buffer_after_minutes: Buffer = absent()
    lead_time_minutes: LeadTime = absent()
    window_days: WindowDays = absent()
    slot_interval_minutes: SlotInterval = absent()
    daily_limit: DailyLimit = absent()
    location: Location = absent()
    location_kind: LocationKind = absent()
    active: Active = absent()
    booking_url: Any = Field(default=None, json_schema_extra={"readOnly": True})


class MeetingType(Reply):
    slug: str
    name: str
    description: str
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    lead_time_minutes: int
    window_days: int
    slot_interval_minutes: int | None
    daily_limit: int | None
    location: str
    location_kind: LocationKind
    active: bool
    booking_url: str = Field(json_schema_extra={"format": "uri", "readOnly": True})


class MeetingTypeList(Reply):
    meeting_types: list[MeetingType]
