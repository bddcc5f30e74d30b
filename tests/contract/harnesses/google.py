"""Google Calendar harness: the adapter against the fake Google process (tests/fakes).

Seed events become Google event resources (``recurrence`` lines, exceptions
with ``recurringEventId`` / ``originalStartTime``); the fake computes
free/busy and sync-token listings from them the way Google does.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from harness import FEATURES, OAuthAccount, RemoteEvent, SeedEvent, oauth_harness

from portal.calendars.providers.google.events import event_id_for
from tests.fakes.google_server import instance_event_id
from tests.support.clock import iso_z
from tests.support.oauth import EMAIL, google_account

ZONE = "America/New_York"


def _id(uid: str) -> str:
    return hashlib.sha1(uid.encode()).hexdigest()  # hex digits are base32hex too


def _point(value: datetime | date, tzid: str | None) -> dict:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return {"dateTime": value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        assert tzid, "Google has no floating times"
        return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": tzid}
    return {"date": value.isoformat()}


def _instant(value: datetime | date, tzid: str | None) -> datetime | date:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=ZoneInfo(tzid or ZONE))
    return value


def _exdate(value: datetime | date, tzid: str | None) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return "EXDATE:" + value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"EXDATE;TZID={tzid}:" + value.strftime("%Y%m%dT%H%M%S")
    return "EXDATE;VALUE=DATE:" + value.strftime("%Y%m%d")


def to_google(ev: SeedEvent) -> list[dict]:
    """A seed event as Google event resources (the series plus its moved instances)."""
    status = {"CANCELLED": "cancelled", "TENTATIVE": "tentative"}.get(ev.status, "confirmed")
    master = {
        "id": _id(ev.uid),
        "iCalUID": ev.uid,
        "summary": ev.summary,
        "status": status,
        "start": _point(ev.start, ev.tzid),
        "end": _point(ev.end, ev.tzid),
    }
    if ev.transparent:
        master["transparency"] = "transparent"
    out = [master]
    if ev.rrule:
        master["recurrence"] = ["RRULE:" + ev.rrule] + [_exdate(x, ev.tzid) for x in ev.exdates]
        for rid, start, end in ev.overrides:
            out.append(
                {
                    "id": instance_event_id(master["id"], _instant(rid, ev.tzid)),
                    "recurringEventId": master["id"],
                    "originalStartTime": _point(rid, ev.tzid),
                    "iCalUID": ev.uid,
                    "summary": ev.summary,
                    "status": "confirmed",
                    "start": _point(start, ev.tzid),
                    "end": _point(end, ev.tzid),
                }
            )
    return out


def _remote(item: dict) -> RemoteEvent:
    def when(p: dict) -> datetime:
        return datetime.fromisoformat(p["dateTime"].replace("Z", "+00:00"))

    return RemoteEvent(
        external_id=item["id"],
        start=when(item["start"]),
        end=when(item["end"]),
        summary=item.get("summary", ""),
        attendee_emails=tuple(a["email"] for a in item.get("attendees", [])),
        text=f"{item.get('location', '')}\n{item.get('description', '')}",
    )


@pytest.fixture
def harness_google(fake_google):
    calendar_id = fake_google.add_calendar(
        owner=EMAIL, calendar_id=EMAIL, summary="Test User", time_zone=ZONE, primary=True
    )
    # a calendar shared with the test user read-only: listed, never writable
    fake_google.add_calendar(
        owner="colleague@example.com",
        calendar_id="colleague@example.com",
        roles={EMAIL: "reader"},
    )
    yield oauth_harness(
        "google",
        fake_google,
        calendar_id,
        ZONE,
        to_google,
        _remote,
        lambda dead: {"GOOGLE_API_BASE": dead, "GOOGLE_TOKEN_URL": dead + "/token"},
        # freeBusy has no tentative/all-busy switches, and Google has no floating times
        FEATURES - {"tentative", "all_busy", "floating"},
    )


@pytest.fixture
def oauth_google(fake_google):
    """The test user's Google account, as the Google integration tests have it."""
    google_account(fake_google)
    return OAuthAccount(
        provider="google",
        fake=fake_google,
        calendar_id=EMAIL,
        busy_event=lambda start, end: {
            "id": f"busy{int(start.timestamp())}",
            "summary": "Private",
            "start": {"dateTime": iso_z(start)},
            "end": {"dateTime": iso_z(end)},
        },
        event_start=lambda event: event["start"]["dateTime"],
        written_start=iso_z,
        attendees=lambda event: [a["email"] for a in event["attendees"]],
        is_booking=lambda event, ical_uid: event["id"] == event_id_for(ical_uid),
        creates=lambda: fake_google.inserts(EMAIL),
        create_key=event_id_for,
        creates_after_lost_answer=1,  # the retry's insert is refused as a duplicate id
        read_path="/calendars/",
        lost_answer_status=500,
        revoked_error="Token has been expired or revoked",
        rotates_refresh_tokens=False,
        sequence=lambda event: event["sequence"],
    )
