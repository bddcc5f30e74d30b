"""The host's availability: weekly hours, date overrides, zone and lead time."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainValidator, RootModel, WithJsonSchema

from portal.api.schemas.base import Body, Day, Zone, fail
from portal.booking.wallclock import CLOCK_PATTERN, parse_clock

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOST_LEAD_TIME = (0, 525_600)  # one year, in minutes; the settings form uses it too
MAX_INTERVALS_PER_DAY = 48
MAX_OVERRIDES = 1000

_TIME = {"type": "string", "pattern": CLOCK_PATTERN, "examples": ["09:00"]}


def _interval(value: Any) -> tuple[str, str]:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(x, str) for x in value)):
        raise fail('expected ["HH:MM", "HH:MM"]')
    start, end = value
    if parse_clock(start) is None or start == "24:00":
        raise fail(f"start {start!r} is not a time between 00:00 and 23:59")
    if parse_clock(end) is None:
        raise fail(f"end {end!r} is not HH:MM (24:00 = end of the day)")
    if start >= end:  # zero-padded HH:MM compares like the time it names
        raise fail(f"start {start} is not before end {end}")
    return start, end


class Interval(RootModel[tuple[str, str]]):
    root: Annotated[
        tuple[str, str],
        PlainValidator(_interval),
        WithJsonSchema(
            {
                "type": "array",
                "description": '["HH:MM", "HH:MM"], start before end; "24:00" only as an end',
                "prefixItems": [_TIME, _TIME],
                "minItems": 2,
                "maxItems": 2,
                "items": False,
            }
        ),
    ]


def _apart(windows: list[Interval]) -> list[Interval]:
    """Touching windows (12:00–13:00 after 09:00–12:00) are allowed and kept as given."""
    found = sorted((w.root, i) for i, w in enumerate(windows))
    for ((_, end), _i), ((start, _), j) in zip(found, found[1:], strict=False):
        if start < end:
            raise fail(f"window starting {start} overlaps one ending {end}", at=f"[{j}]")
    return windows


class Intervals(RootModel[list[Interval]]):
    """Non-overlapping windows of one day; [] = not bookable."""

    root: Annotated[list[Interval], Field(max_length=MAX_INTERVALS_PER_DAY), AfterValidator(_apart)]

    def pairs(self) -> list[tuple[str, str]]:
        return sorted(w.root for w in self.root)


def _none() -> Intervals:
    return Intervals([])


class Weekly(Body):
    """A weekday left out is a day off."""

    mon: Intervals = Field(default_factory=_none)
    tue: Intervals = Field(default_factory=_none)
    wed: Intervals = Field(default_factory=_none)
    thu: Intervals = Field(default_factory=_none)
    fri: Intervals = Field(default_factory=_none)
    sat: Intervals = Field(default_factory=_none)
    sun: Intervals = Field(default_factory=_none)


class Override(Body):
    date: Day
    intervals: Intervals


def _dates_once(items: list[Override]) -> list[Override]:
    seen: set[date] = set()
    for i, item in enumerate(items):
        if item.date in seen:
            raise fail(f"{item.date} is given twice", at=f"[{i}].date")
        seen.add(item.date)
    return items


class Availability(Body):
    """PUT replaces all of it; GET answers the same shape."""

    timezone: Zone
    weekly: Weekly
    overrides: Annotated[
        list[Override],
        Field(
            max_length=MAX_OVERRIDES,
            description="replace a date's weekly windows; one entry per date",
        ),
        AfterValidator(_dates_once),
    ]
    lead_time_minutes: Annotated[
        int, Field(ge=HOST_LEAD_TIME[0], le=HOST_LEAD_TIME[1], description="minimum notice")
    ]
