"""Microsoft Graph harness: the adapter against the fake Microsoft process (tests/fakes).

Seed events become Graph event resources: ``showAs`` for transparency and
tentative, ``isCancelled``, ``isAllDay`` dates, and a ``patternedRecurrence``
series with exceptions for the recurring seed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from harness import FEATURES, OAuthAccount, RemoteEvent, SeedEvent, oauth_harness

from portal.calendars.providers.microsoft import transaction_id
from tests.support.oauth import EMAIL, microsoft_account

ZONE = "America/New_York"
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
FREQ = {"DAILY": "daily", "WEEKLY": "weekly"}


def _point(value: datetime | date, tzid: str | None) -> dict:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return {
                "dateTime": value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            }
        assert tzid, "Graph has no floating times"
        return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": tzid}
    return {"dateTime": value.strftime("%Y-%m-%dT00:00:00"), "timeZone": ZONE}


def _recurrence(ev: SeedEvent) -> dict:
    """The RRULEs the suite uses (DAILY/WEEKLY, INTERVAL, COUNT/UNTIL) as Graph patterns."""
    rule = dict(part.split("=", 1) for part in (ev.rrule or "").split(";"))
    first = ev.start if isinstance(ev.start, date) else ev.start.date()
    pattern: dict = {"type": FREQ[rule["FREQ"]], "interval": int(rule.get("INTERVAL", 1))}
    if pattern["type"] == "weekly":
        pattern["daysOfWeek"] = [WEEKDAYS[first.weekday()]]
        pattern["firstDayOfWeek"] = "sunday"
    rng: dict = {"startDate": first.isoformat(), "recurrenceTimeZone": ev.tzid or "UTC"}
    if "COUNT" in rule:
        rng |= {"type": "numbered", "numberOfOccurrences": int(rule["COUNT"])}
    elif "UNTIL" in rule:
        until = rule["UNTIL"][:8]
        rng |= {"type": "endDate", "endDate": f"{until[:4]}-{until[4:6]}-{until[6:]}"}
    else:
        rng |= {"type": "noEnd"}
    return {"pattern": pattern, "range": rng}


def to_graph(ev: SeedEvent) -> list[dict]:
    """A seed event as Graph event resources (series master plus exceptions)."""
    master = {
        "id": "AAMkAG" + ev.uid.replace("@", "-"),
        "subject": ev.summary,
        "start": _point(ev.start, ev.tzid),
        "end": _point(ev.end, ev.tzid),
        "isAllDay": not isinstance(ev.start, datetime),
        "isCancelled": ev.status == "CANCELLED",
        "showAs": "free" if ev.transparent else "tentative" if ev.status == "TENTATIVE" else "busy",
        "type": "singleInstance",
    }
    out = [master]
    if ev.rrule:
        master["type"] = "seriesMaster"
        master["recurrence"] = _recurrence(ev)
        master["_exdates"] = [x.isoformat() for x in ev.exdates]
        for n, (rid, start, end) in enumerate(ev.overrides):
            out.append(
                {
                    "id": f"{master['id']}-exception-{n}",
                    "type": "exception",
                    "seriesMasterId": master["id"],
                    "_originalStart": rid.isoformat(),
                    "subject": ev.summary,
                    "start": _point(start, ev.tzid),
                    "end": _point(end, ev.tzid),
                    "showAs": master["showAs"],
                    "isAllDay": master["isAllDay"],
                    "isCancelled": False,
                }
            )
    return out


def _remote(item: dict) -> RemoteEvent:
    def when(p: dict) -> datetime:
        assert p["timeZone"] == "UTC", p
        return datetime.fromisoformat(p["dateTime"].split(".")[0]).replace(tzinfo=UTC)

    return RemoteEvent(
        external_id=item["id"],
        start=when(item["start"]),
        end=when(item["end"]),
        summary=item.get("subject", ""),
        attendee_emails=tuple(a["emailAddress"]["address"] for a in item.get("attendees", [])),
        text=f"{item.get('location', {}).get('displayName', '')}\n"
        f"{item.get('body', {}).get('content', '')}",
    )


@pytest.fixture
def harness_microsoft(fake_microsoft):
    calendar_id = fake_microsoft.add_calendar(owner=EMAIL, name="Calendar", default=True)
    fake_microsoft.add_calendar(owner=EMAIL, name="Birthdays", can_edit=False)
    fake_microsoft.mailbox_zone(EMAIL, ZONE)
    yield oauth_harness(
        "microsoft",
        fake_microsoft,
        calendar_id,
        ZONE,
        to_graph,
        _remote,
        lambda dead: {"MS_GRAPH_BASE": dead + "/v1.0", "MS_LOGIN_BASE": dead},
        FEATURES - {"floating"},  # Graph has no floating times
    )


@pytest.fixture
def oauth_microsoft(fake_microsoft):
    """The test user's Microsoft 365 mailbox, as the Microsoft integration tests have it."""
    calendar_id = microsoft_account(fake_microsoft)
    return OAuthAccount(
        provider="microsoft",
        fake=fake_microsoft,
        calendar_id=calendar_id,
        busy_event=lambda start, end: {
            "subject": "Private",
            "start": _point(start, None),
            "end": _point(end, None),
        },
        event_start=lambda event: event["start"],
        written_start=lambda start: _point(start, None),
        attendees=lambda event: [a["emailAddress"]["address"] for a in event["attendees"]],
        is_booking=lambda event, ical_uid: event["transactionId"] == transaction_id(ical_uid),
        creates=fake_microsoft.posts,
        create_key=transaction_id,
        creates_after_lost_answer=2,  # the retry's POST carries the same transactionId
        read_path="/calendarView",
        lost_answer_status=504,
        revoked_error="AADSTS50173",
        rotates_refresh_tokens=True,
    )
