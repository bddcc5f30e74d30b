"""What a provider brings to the contract suite: a :class:`Harness`.

Each provider adds ONE file, ``tests/contract/harnesses/<name>.py``, defining
a pytest fixture named ``harness_<name>`` that yields a :class:`Harness`
(plus any server fixtures it needs, in the same file). ``conftest.py`` finds
those files, and every test in ``test_provider_contract.py`` runs once per
harness. Nothing else needs editing.

Seed events are described neutrally (:class:`SeedEvent`); a harness turns
them into whatever its server stores (iCalendar text for ICS/CalDAV —
:func:`to_ics` does that — JSON for a Google or Graph fake).

An OAuth provider's file also defines ``oauth_<name>``, yielding an
:class:`OAuthAccount`: ``test_oauth_accounts.py`` runs the cases every OAuth
provider shares (tokens, revocation, throttling, write-back exactly once)
once per such fixture, through the app's sync layer and jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from portal.calendars.providers import CalendarProvider, CalendarRef, get_provider
from tests.fakes.common import obtain_token
from tests.support.ical import VTIMEZONES
from tests.support.oauth import EMAIL
from tests.support.processes import closed_url

#: busy semantics a harness may declare it cannot express (skipped, with the reason shown)
FEATURES = frozenset(
    {
        "transparent",  # TRANSP:TRANSPARENT / showAs=free
        "cancelled",  # STATUS:CANCELLED events listed but ignored
        "tentative",  # tentative follows TENTATIVE_IS_BUSY
        "all_day",  # all-day / multi-day events in the calendar's zone
        "recurrence",  # RRULE + EXDATE + RECURRENCE-ID override
        "all_busy",  # CalendarRef.all_busy makes transparent events busy
        "floating",  # floating local times read in the calendar's zone
    }
)


@dataclass(frozen=True)
class SeedEvent:
    """An event to place in the harness calendar, server side.

    Times: aware datetimes are instants; a naive datetime with ``tzid`` is
    local time in that zone; a naive datetime without ``tzid`` is floating;
    ``date`` values make an all-day event (``end`` exclusive).
    """

    uid: str
    start: datetime | date
    end: datetime | date
    summary: str = "Busy"
    transparent: bool = False
    status: str = ""  # "", "CONFIRMED", "TENTATIVE", "CANCELLED"
    tzid: str | None = None
    rrule: str | None = None  # e.g. "FREQ=WEEKLY;COUNT=4"
    exdates: tuple[datetime, ...] = ()  # same kind of value as ``start``
    # (recurrence-id, new start, new end): a moved instance of the series
    overrides: tuple[tuple[datetime, datetime, datetime], ...] = ()


@dataclass(frozen=True)
class RemoteEvent:
    """An event as the *server* holds it, read without the adapter."""

    external_id: str
    start: datetime  # aware
    end: datetime  # aware
    summary: str
    attendee_emails: tuple[str, ...]
    text: str  # location + description, to find the meeting link in


@dataclass
class Harness:
    """One provider wired to a real or fake server, with a fresh calendar."""

    name: str
    provider: CalendarProvider
    #: the calendar ``seed`` fills; its ``timezone`` is the calendar's zone
    calendar: CalendarRef
    #: make exactly these events exist in ``calendar`` (replacing earlier seeds)
    seed: Callable[[Sequence[SeedEvent]], None]
    #: an adapter whose credentials the server refuses
    bad_credentials: Callable[[], CalendarProvider]
    #: an adapter whose server does not answer (closed port, proxy taken down);
    #: it may take the harness's server down for the rest of the test
    unreachable: Callable[[], CalendarProvider]
    #: an adapter for the same account built with extra config (e.g. TENTATIVE_IS_BUSY)
    with_config: Callable[[dict], CalendarProvider]
    #: a writable calendar id, or None for read-only providers
    write_calendar_id: str | None = None
    #: server-side listing of a calendar's events (required when writable)
    remote_events: Callable[[str], list[RemoteEvent]] | None = None
    features: frozenset[str] = field(default=FEATURES)


@dataclass
class OAuthAccount:
    """An OAuth provider's fake as the app meets it: the account's calendar and its answers.

    ``fake`` is the fake's handle (``tests.fakes.common.FakeProcess``: ``fail``,
    ``revoke``, ``expire_access_tokens``, ``oauth_stats``, ``events``); the
    callables read the provider's own event resources.
    """

    provider: str
    fake: Any
    #: the account's primary calendar, which receives bookings
    calendar_id: str
    #: an event resource that is busy from ``start`` to ``end``
    busy_event: Callable[[datetime, datetime], dict]
    #: a stored event's start as the provider keeps it, and an instant written that way
    event_start: Callable[[Mapping[str, Any]], Any]
    written_start: Callable[[datetime], Any]
    #: a stored event's attendee addresses
    attendees: Callable[[Mapping[str, Any]], list[str]]
    #: whether a stored event is the one written for the booking with this iCalendar UID
    is_booking: Callable[[Mapping[str, Any], str], bool]
    #: the fake's count of creates per booking key (Google: accepted inserts per event
    #: id; Graph: POSTs per transactionId), and the key of a booking's iCalendar UID
    creates: Callable[[], dict[str, int]]
    create_key: Callable[[str], str]
    #: what ``creates`` counts for a booking whose first create lost its answer
    creates_after_lost_answer: int
    #: a path every refresh reads, where an injected failure lands
    read_path: str
    #: what the provider answers a write whose answer gets lost (500 / 504)
    lost_answer_status: int
    #: what the provider says of a revoked grant
    revoked_error: str
    #: whether each refresh replaces the refresh token (and spends the old one)
    rotates_refresh_tokens: bool
    #: a stored event's revision, where the provider keeps one
    sequence: Callable[[Mapping[str, Any]], int] | None = None


def oauth_harness(
    name: str,
    fake: Any,
    calendar_id: str,
    zone: str,
    resources: Callable[[SeedEvent], list[dict]],
    remote: Callable[[dict], RemoteEvent],
    dead_server: Callable[[str], dict[str, str]],
    features: frozenset[str],
) -> Harness:
    """An OAuth adapter against its fake: a token from the real flow, a forged one, a dead server.

    ``resources`` turns a seed event into the provider's event resources;
    ``dead_server`` maps the address of a closed port to the configuration
    that points the adapter there.
    """
    config = fake.config() | {"HTTP_TIMEOUT": 5, "TENTATIVE_IS_BUSY": True}
    token = obtain_token(name, config)
    forged = {"access_token": "forged", "refresh_token": "forged"}
    refused = forged | {"expires_at": time.time() + 3600}

    def make(extra: dict | None = None, credentials: dict | None = None) -> CalendarProvider:
        return get_provider(name, {"email": EMAIL}, credentials or token, config | (extra or {}))

    def seed(events: Sequence[SeedEvent]) -> None:
        fake.put_events(calendar_id, [r for ev in events for r in resources(ev)])

    dead = closed_url().rstrip("/")
    return Harness(
        name=name,
        provider=make(),
        calendar=CalendarRef(calendar_id, timezone=zone),
        seed=seed,
        bad_credentials=lambda: make(credentials=refused),
        unreachable=lambda: make(dead_server(dead)),
        with_config=make,
        write_calendar_id=calendar_id,
        remote_events=lambda cal: [remote(i) for i in fake.events(cal)],
        features=features,
    )


# --------------------------------------------------------------------------- iCalendar


def _fmt(value: datetime | date, tzid: str | None) -> tuple[str, str]:
    """(property parameters, value) for DTSTART/DTEND/EXDATE/RECURRENCE-ID."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return "", value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        stamp = value.strftime("%Y%m%dT%H%M%S")
        return (f";TZID={tzid}", stamp) if tzid else ("", stamp)
    return ";VALUE=DATE", value.strftime("%Y%m%d")


def ics_event_lines(ev: SeedEvent) -> list[str]:
    """VEVENT blocks (master plus overrides) for one seed event."""

    def block(start, end, recurrence_id=None, master=True) -> list[str]:
        lines = ["BEGIN:VEVENT", f"UID:{ev.uid}", "DTSTAMP:20260101T000000Z"]
        p, v = _fmt(start, ev.tzid)
        lines.append(f"DTSTART{p}:{v}")
        p, v = _fmt(end, ev.tzid)
        lines.append(f"DTEND{p}:{v}")
        lines.append(f"SUMMARY:{ev.summary}")
        if ev.transparent:
            lines.append("TRANSP:TRANSPARENT")
        if ev.status:
            lines.append(f"STATUS:{ev.status}")
        if recurrence_id is not None:
            p, v = _fmt(recurrence_id, ev.tzid)
            lines.append(f"RECURRENCE-ID{p}:{v}")
        if master and ev.rrule:
            lines.append(f"RRULE:{ev.rrule}")
            for ex in ev.exdates:
                p, v = _fmt(ex, ev.tzid)
                lines.append(f"EXDATE{p}:{v}")
        lines.append("END:VEVENT")
        return lines

    out = block(ev.start, ev.end)
    for rid, start, end in ev.overrides:
        out += block(start, end, recurrence_id=rid, master=False)
    return out


def to_ics(events: Sequence[SeedEvent], calendar_zone: str | None = None) -> str:
    """One VCALENDAR holding ``events`` (an ICS feed, or one CalDAV resource per event)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Kairos tests//EN"]
    if calendar_zone:
        lines.append(f"X-WR-TIMEZONE:{calendar_zone}")
    for zone in sorted({e.tzid for e in events if e.tzid}):
        lines += VTIMEZONES[zone]
    for ev in events:
        lines += ics_event_lines(ev)
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"
