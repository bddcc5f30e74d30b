"""Exchange harnesses: the EWS adapter against the fake Exchange (tests/fakes/ews_server.py).

Two accounts join the suite: a *personal* one (the host's own mailbox, NTLM)
and a *corporate* one (a service mailbox with delegate access writing into a
member's calendar). Both connect through ``prepare`` first, so the suite runs
with the endpoint, auth type and version stored the way production stores
them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
from harness import FEATURES, Harness, RemoteEvent, to_ics

from portal.calendars.providers import CalendarRef, get_provider
from portal.calendars.providers.exchange import ExchangeProvider
from portal.calendars.providers.exchange.setup import member_settings
from tests.support.processes import closed_url

CONFIG = {"ALLOW_PRIVATE_URLS": True, "HTTP_TIMEOUT": 5, "TENTATIVE_IS_BUSY": True}
ZONE = "Europe/Berlin"
# EWS has no floating times, and Exchange always states free/busy (no TRANSP-less servers)
EXCHANGE_FEATURES = FEATURES - {"floating", "all_busy"}


def seed_items(events, zone: str) -> list[dict]:
    """Seed events as the server stores them: instances expanded, all-day at local midnight."""
    cal = icalendar.Calendar.from_ical(to_ics(events, calendar_zone=zone))
    tz = ZoneInfo(zone)
    recurring = {str(ev["UID"]) for ev in cal.walk("VEVENT") if "RRULE" in ev}

    def instant(value) -> datetime:
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
        return datetime.combine(value, time(0), tz).astimezone(UTC)

    items = []
    span = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
    for ev in recurring_ical_events.of(cal).between(*span):
        uid, status = str(ev["UID"]), str(ev.get("STATUS", "")).upper()
        start, end = ev["DTSTART"].dt, ev["DTEND"].dt
        show_as = {"TENTATIVE": "Tentative"}.get(status, "Busy")
        if str(ev.get("TRANSP", "")).upper() == "TRANSPARENT":
            show_as = "Free"
        items.append(
            {
                "uid": uid,
                "subject": str(ev.get("SUMMARY", "")),
                "start": instant(start).isoformat(),
                "end": instant(end).isoformat(),
                "is_all_day": not isinstance(start, datetime) and isinstance(start, date),
                "show_as": show_as,
                "is_cancelled": status == "CANCELLED",
                "series": uid if uid in recurring else "",
                "type": "Occurrence" if uid in recurring else "Single",
            }
        )
    return items


def remote_events(ews, mailbox: str) -> list[RemoteEvent]:
    """The mailbox's calendar as the server holds it, read without the adapter."""
    return [
        RemoteEvent(
            external_id=item["id"],
            start=datetime.fromisoformat(item["start"]),
            end=datetime.fromisoformat(item["end"]),
            summary=item["subject"],
            attendee_emails=tuple(a["email"] for a in item["attendees"]),
            text=f"{item['location']}\n{item['body']}",
        )
        for item in ews.events(mailbox)
    ]


def _harness(ews, name: str, settings: dict, password: str, mailbox: str) -> Harness:
    made = []

    def make(config=None, settings=settings, password=password):
        provider = get_provider(
            "exchange", settings, {"password": password}, CONFIG | (config or {})
        )
        made.append(provider)
        return provider

    unreachable = dict(
        settings, ews_url=closed_url().replace("http://", "https://") + "EWS/Exchange.asmx"
    )
    harness = Harness(
        name=name,
        provider=make(),
        calendar=CalendarRef(mailbox, timezone=ZONE),
        seed=lambda events: ews.seed(mailbox, seed_items(events, ZONE)),
        bad_credentials=lambda: make(password="wrong"),
        unreachable=lambda: make(settings=unreachable),
        with_config=make,
        write_calendar_id=mailbox,
        remote_events=lambda cal: remote_events(ews, cal),
        features=EXCHANGE_FEATURES,
    )
    harness.made = made  # type: ignore[attr-defined]
    return harness


@pytest.fixture
def harness_exchange(ews):
    """A host's own mailbox, connected with the EWS URL, over NTLM."""
    ews.add_user("alice@example.com", "alice-secret", sam="alice", name="Alice Host")
    setup = ExchangeProvider.prepare(
        {"email": "alice@example.com", "password": "alice-secret", "ews_url": ews.ews_url}, CONFIG
    )
    assert setup.settings["auth_type"] == "ntlm"
    harness = _harness(ews, "exchange", dict(setup.settings), "alice-secret", "alice@example.com")
    yield harness
    for provider in harness.made:
        provider.close()


@pytest.fixture
def harness_exchange_corporate(ews):
    """The organisation's mailbox writing into a member's calendar through delegate access."""
    ews.add_user("kairos@example.com", "service-secret", sam="svc-kairos", name="Kairos")
    ews.add_user("bob@example.com", "bob-secret", sam="bob", name="Bob Member")
    ews.mailbox("bob@example.com", delegates={"kairos@example.com": "Editor"})
    setup = ExchangeProvider.prepare(
        {
            "email": "kairos@example.com",
            "password": "service-secret",
            "username": "EXAMPLE\\svc-kairos",
            "ews_url": ews.ews_url,
        },
        CONFIG,
    )
    settings = member_settings(setup.settings, "bob@example.com")
    harness = _harness(ews, "exchange_corporate", settings, "service-secret", "bob@example.com")
    yield harness
    for provider in harness.made:
        provider.close()
