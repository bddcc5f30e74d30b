"""What the API schemas are made of: the base models, shared field types, and the error reader.

A request body is a :class:`Body`: unknown keys are refused and JSON's types are
taken as they are (``"30"`` is no number, ``true`` is no 1). A rule one type
cannot say (a window that starts before it ends, a date given once) is a
validator beside the type, so the check and the document come from one
declaration. :func:`validate` turns pydantic's first complaint into the API's
``(field, message)``: ``weekly.mon[0]``, ``overrides[1].date``, ``answers.size``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from portal.booking.checks import FIRST_DAY, LAST_DAY, BookingError, is_valid_zone, parse_start

M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """A JSON request body: unknown keys are refused, JSON types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _no_defaults(schema: dict[str, Any]) -> None:
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def absent(**doc: Any) -> Any:
    """A field that may be left out but not sent as ``null`` (the default is not validated)."""
    return Field(default=None, json_schema_extra=_drop_default, **doc)


class Patch(Body):
    """A body of which only the fields given change: absent is not null.

    Fields default to None without being nullable (pydantic does not validate
    defaults), so a left-out field is None and an explicit ``null`` is refused.
    The document shows no such defaults; views read ``model_fields_set``.
    """

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_no_defaults)


class Query(BaseModel):
    """Query parameters: text, so numbers are read from digits; unknown ones are ignored."""

    model_config = ConfigDict(extra="ignore")


class Reply(BaseModel):
    """An answer's shape, for the document; the views build the dicts it describes."""


class Error(Reply):
    class ErrorDetail(Reply):
        code: str = Field(examples=["invalid"])
        message: str
        field: str | None = Field(
            default=None, description="the input at fault, e.g. `email`, `weekly.mon[0]`"
        )

    error: ErrorDetail


# ---------------------------------------------------------------- reading errors


class InvalidInput(Exception):
    """A body or query that does not fit its schema; the API answers 422 naming ``field``."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def fail(message: str, at: str = "") -> PydanticCustomError:
    """A refusal from a validator; ``at`` (``"[2]"``, ``"[1].date"``) points inside the value."""
    return PydanticCustomError("invalid", message, {"at": at} if at else None)  # type: ignore[arg-type]


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(*_first(exc)) from None


def _first(exc: ValidationError) -> tuple[str, str]:
    error = exc.errors(include_url=False)[0]
    loc = error["loc"]
    field = "".join(
        f"[{part}]" if isinstance(part, int) else (f".{part}" if i else str(part))
        for i, part in enumerate(loc)
    ) + (error.get("ctx") or {}).get("at", "")
    if error["type"] == "missing":
        return field, f"{loc[-1]} is required"
    if error["type"] == "extra_forbidden":
        return field, "unknown field"
    if error["type"] == "value_error":  # a plain ValueError raised by a domain check
        return field, str(error["ctx"]["error"])
    return field or "body", error["msg"]


def whole(tp: Any, message: str, schema: dict | None = None) -> Any:
    """``tp`` checked as one value: a fault anywhere inside is reported at this field.

    For values a client sends as a unit (a list of event names, an answer), where
    ``events[2]`` would be less helpful than ``events: unknown event``.
    """
    adapter: TypeAdapter[Any] = TypeAdapter(tp, config=ConfigDict(strict=True))

    def check(value: Any) -> Any:
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            raise fail(message) from exc

    return Annotated[tp, PlainValidator(check), WithJsonSchema(schema or adapter.json_schema())]


# ---------------------------------------------------------------- field types


def _one_line(value: str | None) -> str | None:
    if value and ("\r" in value or "\n" in value):
        raise fail("cannot contain line breaks")
    return value


#: for ``Annotated[str, …, ONE_LINE]``: text that goes into a header or a subject line
ONE_LINE = AfterValidator(_one_line)


def _zone(name: str) -> str:
    if not is_valid_zone(name):
        raise fail(f"unknown time zone {name[:64]!r}")
    return name


#: an IANA time zone name
Zone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_zone),
    Field(description="IANA time zone", examples=["Europe/Berlin"]),
]

MIN_DATE, MAX_DATE = FIRST_DAY, LAST_DAY
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day(value: Any) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise fail("expected a date as YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise fail(f"{value} is not a calendar date") from None
    if not MIN_DATE <= parsed <= MAX_DATE:
        raise fail(f"must be between {MIN_DATE} and {MAX_DATE}")
    return parsed


#: a calendar date ``YYYY-MM-DD`` between MIN_DATE and MAX_DATE
Day = Annotated[
    date,
    PlainValidator(_day),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "description": f"YYYY-MM-DD, {MIN_DATE} to {MAX_DATE}",
            "examples": ["2026-12-24"],
        }
    ),
]


def _instant(value: Any) -> datetime:
    try:
        return parse_start(value)
    except BookingError as exc:
        raise fail(exc.message) from None


#: an ISO 8601 instant with an offset (or Z), as UTC
Instant = Annotated[
    datetime,
    PlainValidator(_instant),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": f"with an offset; years {MIN_DATE.year} to {MAX_DATE.year}",
            "examples": ["2026-12-01T09:00:00+01:00"],
        }
    ),
]

#: how an answer prints an instant (ISO 8601 with an offset)
DateTime = Annotated[
    str, Field(json_schema_extra={"format": "date-time"}, examples=["2026-12-01T09:00:00+01:00"])
]
