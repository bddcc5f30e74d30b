"""CalDAV harness: the adapter against a real Radicale (tests/support/servers.py)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import icalendar
import pytest
from harness import Harness, RemoteEvent, to_ics

from portal.calendars.providers import CalendarRef, get_provider
from tests.support.servers import TcpProxy

CONFIG = {"ALLOW_PRIVATE_URLS": True, "HTTP_TIMEOUT": 5, "TENTATIVE_IS_BUSY": True}


def remote_events(radicale, calendar_url: str) -> list[RemoteEvent]:
    """Read the calendar with plain HTTP, not through the adapter."""
    out = []
    for name in radicale.hrefs(calendar_url):
        cal = icalendar.Calendar.from_ical(radicale.get(calendar_url + name))
        for ev in cal.walk("VEVENT"):
            attendees = ev.get("ATTENDEE", [])
            attendees = attendees if isinstance(attendees, list) else [attendees]
            out.append(
                RemoteEvent(
                    external_id=calendar_url + name,
                    start=ev["DTSTART"].dt,
                    end=ev["DTEND"].dt,
                    summary=str(ev.get("SUMMARY", "")),
                    attendee_emails=tuple(str(a).removeprefix("mailto:") for a in attendees),
                    text=f"{ev.get('LOCATION', '')}\n{ev.get('DESCRIPTION', '')}",
                )
            )
    return out


@pytest.fixture
def harness_caldav(radicale):
    zone = "America/New_York"
    busy_url = radicale.make_calendar("alice", "Busy " + uuid.uuid4().hex[:6], tz=zone)
    write_url = radicale.make_calendar("alice", "Bookings " + uuid.uuid4().hex[:6])
    # The adapter talks to Radicale through a proxy that `unreachable` takes down.
    proxy = TcpProxy(radicale.port).up()
    settings = {"url": proxy.url, "username": "alice"}
    made = []

    def make(config=None, password="alice-secret"):
        provider = get_provider("caldav", settings, {"password": password}, CONFIG | (config or {}))
        made.append(provider)
        return provider

    def seed(events):
        for name in radicale.hrefs(busy_url):
            radicale.delete(busy_url + name)
        for ev in events:
            radicale.put(busy_url, f"{uuid.uuid4().hex}.ics", to_ics([ev]))

    yield Harness(
        name="caldav",
        provider=make(),
        calendar=CalendarRef(proxy.rewrite(busy_url), timezone=zone),
        seed=seed,
        bad_credentials=lambda: make(password="wrong"),
        unreachable=lambda: (proxy.down(), make())[1],
        with_config=make,
        write_calendar_id=proxy.rewrite(write_url),
        remote_events=lambda url: [
            replace(e, external_id=proxy.rewrite(e.external_id))
            for e in remote_events(radicale, url.replace(proxy.url, radicale.url))
        ],
    )
    for provider in made:
        provider.close()
    proxy.down()
