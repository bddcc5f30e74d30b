"""Bookings as CalDAV resources: the deterministic file name and the VCALENDAR stored.

The invitee is an ATTENDEE with ``SCHEDULE-AGENT=CLIENT`` (Kairos sends the
invitation itself; the server must not send another) and the meeting link
is the LOCATION and URL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import icalendar

from portal.calendars.providers.base import EventData

PRODID = "-//Kairos//Kairos booking portal//EN"


def resource_name(ical_uid: str) -> str:
    """The deterministic file name of a booking's event inside a calendar."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", ical_uid)[:200] + ".ics"


def event_ical(event: EventData, now: datetime | None = None) -> str:
    """The VCALENDAR stored for a booking (text values escaped by ``icalendar``)."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    ev = icalendar.Event()
    ev.add("uid", event.ical_uid)
    ev.add("sequence", event.sequence)
    ev.add("dtstamp", now or datetime.now(UTC))
    ev.add("dtstart", event.start.astimezone(UTC))
    ev.add("dtend", event.end.astimezone(UTC))
    ev.add("summary", event.summary)
    description = event.description
    if event.location and event.location not in description:
        description = f"{description}\n\n{event.location}".strip()
    ev.add("description", description)
    if event.location:
        ev.add("location", event.location)
        if re.match(r"^https?://", event.location):
            ev.add("url", event.location)
    ev.add("status", "CONFIRMED")
    ev.add("transp", "OPAQUE")
    if event.organizer_email:
        organizer = icalendar.vCalAddress(f"mailto:{event.organizer_email}")
        organizer.params["CN"] = icalendar.vText(event.organizer_name or event.organizer_email)
        ev.add("organizer", organizer)
    for name, email in event.attendees():
        attendee = icalendar.vCalAddress(f"mailto:{email}")
        attendee.params["CN"] = icalendar.vText(name or email)
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "ACCEPTED"
        attendee.params["RSVP"] = "FALSE"
        attendee.params["SCHEDULE-AGENT"] = "CLIENT"
        ev.add("attendee", attendee)
    ev.add("x-kairos-booking", event.booking_uid)
    cal.add_component(ev)
    return cal.to_ical().decode()
