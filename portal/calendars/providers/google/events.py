"""Google event resources ↔ Kairos values: ids, times, busy spans, the body a booking writes.

Pure functions (no HTTP): the deterministic event id and Meet request id of
a booking, reading a listed event as busy time the way Google's free/busy
does, and the event body written for a booking (description HTML-escaped,
as Google renders descriptions as HTML).
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portal.calendars.providers.base import BusyInterval, EventData

MEET = "hangoutsMeet"


def event_id_for(ical_uid: str) -> str:
    """The Google event id of a booking: base32hex of a hash of its UID.

    Google accepts client ids made of ``a–v`` and ``0–9``, 5–1024 long, and
    refuses a second insert with the same id — which is what makes a
    retried create detectable.
    """
    digest = hashlib.sha256(ical_uid.encode()).digest()
    return "kairos" + base64.b32hexencode(digest).decode().rstrip("=").lower()


def conference_request_id(ical_uid: str) -> str:
    """The Meet create request of a booking: the same for every write of its event."""
    return "kairos-" + hashlib.sha256(ical_uid.encode()).hexdigest()[:32]


def meet_link(data: Mapping[str, Any]) -> tuple[str, str]:
    """(join link, create status) of an event resource: ``hangoutLink`` or the video entry point."""
    conference = data.get("conferenceData") or {}
    status = str(
        ((conference.get("createRequest") or {}).get("status") or {}).get("statusCode", "")
    )
    link = str(data.get("hangoutLink") or "")
    if not link:
        for entry in conference.get("entryPoints") or []:
            if entry.get("entryPointType") == "video" and entry.get("uri"):
                link = str(entry["uri"])
                break
    return link, status


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    """The listing's zone (for all-day events); UTC when Google names none we know."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def chunks(start: datetime, end: datetime, size: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive pieces no longer than ``size``."""
    cursor = start
    while cursor < end:
        stop = min(end, cursor + size)
        yield cursor, stop
        cursor = stop


def merge(spans: list[BusyInterval]) -> list[BusyInterval]:
    """Join spans that touch (chunk borders cut one busy block into two)."""
    out: list[BusyInterval] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if out and span.start <= out[-1].end:
            if span.end > out[-1].end:
                out[-1] = BusyInterval(out[-1].start, span.end)
        else:
            out.append(span)
    return out


def event_span(
    item: Mapping[str, Any], listing_zone: ZoneInfo, start: datetime, end: datetime
) -> BusyInterval | None:
    """The busy span of one listed event inside ``[start, end)``, or None when it is free.

    Free means what free/busy means at Google: cancelled, transparent
    ("show me as available"), or declined by the calendar's owner.
    """
    if item.get("status") == "cancelled" or item.get("transparency") == "transparent":
        return None
    for attendee in item.get("attendees", []):
        if attendee.get("self") and attendee.get("responseStatus") == "declined":
            return None

    def point(p: Mapping[str, Any]) -> datetime:
        if "dateTime" in p:
            return parse_time(p["dateTime"])
        day = date.fromisoformat(p["date"])
        return datetime.combine(day, datetime.min.time(), listing_zone).astimezone(UTC)

    try:
        s, e = point(item["start"]), point(item["end"])
    except (KeyError, ValueError):
        return None
    if e <= s or e <= start or s >= end:
        return None
    # Clipped to the window, as free/busy answers are.
    return BusyInterval(max(s, start), min(e, end), item.get("id", ""))


def event_body(event: EventData) -> dict[str, Any]:
    """The event resource written for a booking (Kairos' fields only)."""
    zone_name = event.timezone if event.timezone else "UTC"
    attendees = []
    for name, email in event.attendees():
        attendee = {"email": email, "responseStatus": "accepted"}
        if name:
            attendee["displayName"] = name
        attendees.append(attendee)
    body: dict[str, Any] = {
        "summary": event.summary,
        "description": html.escape(event.description, quote=False),
        "location": event.location,
        "start": {"dateTime": rfc3339(event.start), "timeZone": zone_name},
        "end": {"dateTime": rfc3339(event.end), "timeZone": zone_name},
        "attendees": attendees,
        "sequence": event.sequence,
        "reminders": {"useDefault": True},
        "extendedProperties": {
            "private": {"kairosBooking": event.booking_uid, "kairosUid": event.ical_uid}
        },
    }
    if event.conference == "google_meet":
        body["conferenceData"] = {
            "createRequest": {
                "requestId": conference_request_id(event.ical_uid),
                "conferenceSolutionKey": {"type": MEET},
            }
        }
    return body


def write_params(event: EventData) -> dict[str, Any]:
    """Query parameters of a write: Google sends no mail; Meet needs the conference version."""
    params: dict[str, Any] = {"sendUpdates": "none"}
    if event.conference == "google_meet":
        params["conferenceDataVersion"] = 1  # without it Google ignores conferenceData
    return params
