"""Meeting details: link and signature, questions, webhooks and deliveries, feed, schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from portal.api.schemas.base import Body, DateTime, Patch, Reply, Zone, absent, whole
from portal.api.schemas.bookings import Booking
from portal.booking.locations import MAX_MEETING_LINK, MAX_SIGNATURE
from portal.booking.questions import KEY_RE, MAX_LABEL, MAX_OPTION, MAX_OPTIONS, MAX_QUESTIONS
from portal.booking.questions import KINDS as QUESTION_KINDS
from portal.notify.webhooks import EVENTS, MAX_DESCRIPTION, MAX_URL

# ---------------------------------------------------------------- meeting link and signature


class MeetingDetails(Reply):
    meeting_link: str = Field(description="personal meeting link (types of kind `personal`)")
    email_signature: str = Field(description="plain text")


class MeetingDetailsPatch(Patch):
    meeting_link: Annotated[
        str, Field(max_length=MAX_MEETING_LINK, description="an http(s) URL, or empty")
    ] = absent()
    email_signature: Annotated[str, Field(max_length=MAX_SIGNATURE)] = absent()


# ---------------------------------------------------------------- questions

if TYPE_CHECKING:  # the kinds are portal.booking.questions' keys, known only at run time
    QuestionKind = str
else:
    QuestionKind = Literal[tuple(QUESTION_KINDS)]
Options = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=MAX_OPTION)]],
    Field(
        max_length=MAX_OPTIONS,
        description="the choices of `single_choice` (two or more) and `checkboxes`",
    ),
]


class QuestionSpec(Body):
    key: Annotated[
        str,
        Field(
            pattern=KEY_RE.pattern,
            description="the answer's name in `answers`; made from the label when left out",
        ),
    ] = absent()
    label: Annotated[str, Field(min_length=1, max_length=MAX_LABEL)]
    kind: QuestionKind
    required: bool = False
    options: Options = Field(default_factory=list)


class QuestionsRequest(Body):
    """Replaces the type's questions, in this order."""

    questions: Annotated[list[QuestionSpec], Field(max_length=MAX_QUESTIONS)]


class Question(Reply):
    key: str
    label: str
    kind: QuestionKind
    required: bool
    options: list[str]


class QuestionList(Reply):
    questions: list[Question]


# ---------------------------------------------------------------- webhooks

if TYPE_CHECKING:
    Events = list[str]
else:
    Events = whole(
        list[Literal[EVENTS]],  # type: ignore[valid-type]
        "expected a list of event names: " + ", ".join(EVENTS),
        {
            "type": "array",
            "items": {"type": "string", "enum": list(EVENTS)},
            "minItems": 1,
            "description": "default: all of them",
        },
    )


WebhookUrl = Annotated[
    str,
    Field(
        max_length=MAX_URL, description="https:// (http:// only where allowed); no private hosts"
    ),
]
WebhookDescription = Annotated[str | None, Field(max_length=MAX_DESCRIPTION)]


class WebhookRequest(Body):
    url: WebhookUrl
    events: Events = absent()
    description: WebhookDescription = absent()
    active: bool = True


class WebhookPatch(Patch):
    """Only the fields given change; `id`, `created_at` and `last_delivery` are ignored."""

    url: WebhookUrl = absent()
    events: Events = absent()
    description: WebhookDescription = absent()
    active: bool = absent()
    id: Any = Field(default=None, json_schema_extra={"readOnly": True})
    created_at: Any = Field(default=None, json_schema_extra={"readOnly": True})
    last_delivery: Any = Field(default=None, json_schema_extra={"readOnly": True})


class Delivery(Reply):
    id: int
    delivery: str = Field(description="X-Kairos-Delivery")
    event_id: str = Field(description="the body's `id`")
    event: Literal[EVENTS]  # type: ignore[valid-type]
    booking_uid: str
    status: Literal["pending", "retrying", "delivered", "failed"]
    attempts: int
    response_status: int | None
    error: str
    duration_ms: int | None
    created_at: DateTime
    last_attempt_at: DateTime | None
    delivered_at: DateTime | None
    replay_of: int | None
    payload: str = Field(default="", description="the exact JSON body sent")
    response_body: str = Field(default="", description="the start of the answer")


class Webhook(Reply):
    id: int
    url: str
    events: list[Literal[EVENTS]]  # type: ignore[valid-type]
    description: str
    active: bool
    created_at: DateTime
    last_delivery: Delivery | None


class WebhookCreated(Webhook):
    secret: str = Field(description="whsec_…; shown only in this answer")


class WebhookList(Reply):
    webhooks: list[Webhook]


class DeliveryList(Reply):
    deliveries: list[Delivery]


# ---------------------------------------------------------------- feed and schedule


class Feed(Reply):
    active: bool
    url: str | None = Field(json_schema_extra={"format": "uri"})


class ScheduleItem(Reply):
    kind: Literal["booking", "busy"]
    start: DateTime
    end: DateTime
    label: str = Field(description="busy blocks: `Busy · <calendar name>`")
    calendar: str = Field(default="", description="busy blocks: the calendar's name")
    booking: Booking = absent(description="booking items: the booking")


class Schedule(Reply):
    timezone: Zone
    items: list[ScheduleItem]
