"""Busy time from Exchange: ``GetUserAvailability`` in UTC, cut into windows the server accepts.

It needs only free/busy rights: ``Busy``/``OOF`` are busy, ``Tentative``
follows ``TENTATIVE_IS_BUSY``, ``Free``/``WorkingElsewhere``/``NoData`` are
free. Recurrences and all-day events arrive expanded by the server.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

from exchangelib import EWSDateTime, EWSTimeZone
from exchangelib.properties import (
    DaylightTime,
    FreeBusyViewOptions,
    MailboxData,
    StandardTime,
    TimeWindow,
    TimeZone,
)
from exchangelib.services import GetUserAvailability

from portal.calendars.providers.base import BusyInterval, CalendarRef
from portal.calendars.providers.exchange.session import EwsSession

# Exchange refuses availability windows longer than 62 days; stay well inside.
AVAILABILITY_CHUNK = timedelta(days=42)
BUSY_TYPES = frozenset({"Busy", "OOF"})
# The availability request's zone: UTC, with the zero-bias rules servers expect to see.
UTC_AVAILABILITY_ZONE = TimeZone(
    bias=0,
    standard_time=StandardTime(bias=0, time=time(0), occurrence=1, iso_month=1, weekday=1),
    daylight_time=DaylightTime(bias=0, time=time(0), occurrence=5, iso_month=12, weekday=7),
)


def busy_type_blocks(busy_type: str, tentative_is_busy: bool) -> bool:
    """EWS free/busy semantics: Busy/OOF block, Tentative per setting, the rest is free."""
    if busy_type == "Tentative":
        return tentative_is_busy
    return busy_type in BUSY_TYPES


def windows(
    start: datetime, end: datetime, size: timedelta = AVAILABILITY_CHUNK
) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive windows no longer than ``size``."""
    cursor = start
    while cursor < end:
        upper = min(cursor + size, end)
        yield cursor, upper
        cursor = upper


def _utc(value: Any) -> datetime:
    return datetime.fromtimestamp(value.timestamp(), UTC)


def busy(
    session: EwsSession,
    calendars: Sequence[CalendarRef],
    start: datetime,
    end: datetime,
    tentative_is_busy: bool,
) -> dict[str, list[BusyInterval]]:
    """Busy intervals per mailbox (a calendar's external id is its mailbox address)."""
    result: dict[str, list[BusyInterval]] = {c.external_id: [] for c in calendars}
    if not calendars or end <= start:
        return result
    mailboxes = [c.external_id for c in calendars]
    seen: set[tuple[str, datetime, datetime, str]] = set()
    for lower, upper in windows(start.astimezone(UTC), end.astimezone(UTC)):
        for mailbox, events in availability(session, mailboxes, lower, upper):
            for event in events:
                if event.start is None or event.end is None:
                    continue
                if not busy_type_blocks(str(event.busy_type), tentative_is_busy):
                    continue
                span_start, span_end = _utc(event.start), _utc(event.end)
                source = str(getattr(event.details, "id", "") or "")
                key = (mailbox, span_start, span_end, source)
                if span_end <= span_start or key in seen:
                    continue
                seen.add(key)  # an event across a window edge is reported by both windows
                result[mailbox].append(BusyInterval(span_start, span_end, source))
    return result


def probe(session: EwsSession, mailbox: str, now: datetime) -> None:
    """One hour of availability: raises when this login may not read the mailbox's free/busy."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    availability(session, [mailbox], hour, hour + timedelta(hours=1))


def availability(
    session: EwsSession, mailboxes: list[str], start: datetime, end: datetime
) -> list[tuple[str, list[Any]]]:
    """``(mailbox, calendar events)`` per mailbox from one GetUserAvailability call.

    The request is made in UTC, whose definition never changes, so unlike
    ``Protocol.get_free_busy_info`` it does not first ask the server for
    the zone (``GetServerTimeZones``): one round trip per read, which the
    confirm-time live check feels.
    """
    zone = EWSTimeZone("UTC")
    options = FreeBusyViewOptions(
        time_window=TimeWindow(
            start=EWSDateTime.from_datetime(start).astimezone(zone),
            end=EWSDateTime.from_datetime(end).astimezone(zone),
        ),
        merged_free_busy_interval=30,
        requested_view="Detailed",
    )
    with session.errors():
        views = list(
            GetUserAvailability(session.protocol()).call(
                tzinfo=zone,
                mailbox_data=[
                    MailboxData(email=m, attendee_type="Required", exclude_conflicts=False)
                    for m in mailboxes
                ],
                timezone=UTC_AVAILABILITY_ZONE,
                free_busy_view_options=options,
            )
        )
        out = []
        for mailbox, view in zip(mailboxes, views, strict=True):
            if isinstance(view, Exception):
                raise view
            out.append((mailbox, view.calendar_events or []))
    return out
