"""A host with an "intro" meeting type, its slots and its bookings, on the tests' clock.

The calendar integration tests (Google, Microsoft, Exchange, the OAuth contract
cases) share these steps: a host in Berlin, slots of a day counted from the
tests' Monday, and a booking made through the booking service.
"""

from __future__ import annotations

from datetime import datetime

from portal.booking import rules
from portal.booking import service as booking
from portal.models import Booking, MeetingType, User
from portal.org.users import create_user
from tests.support.app import PASSWORD
from tests.support.clock import at


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` UTC, ``day`` days after the test clock's Monday (1 = Tuesday)."""
    return at(day, hour, minute)


def make_host(email: str = "alice@example.com", slug: str = "alice", admin: bool = False) -> User:
    """A host in Berlin with a 30-minute "intro" meeting type (inside an app context)."""
    user = create_user(email, PASSWORD, slug, admin=admin, timezone="Europe/Berlin")
    MeetingType.create(user=user, slug="intro", name="Intro", duration_minutes=30)
    return user


def intro(user: User) -> MeetingType:
    return MeetingType.get(MeetingType.user == user, MeetingType.slug == "intro")


def slots(user: User, day: int, now: datetime) -> list[datetime]:
    """The intro slots offered on day ``day`` (UTC midnight to midnight)."""
    return rules.available_slots(user, intro(user), utc(day, 0), utc(day + 1, 0), now=now)


def book(
    user: User, start: datetime, now: datetime, name: str = "Ada", domain: str = "example.com"
) -> Booking:
    """An intro booking by ``name`` (``<name>@<domain>``) through the booking service."""
    email = f"{name.lower()}@{domain}"
    return booking.book(user, intro(user), start, name, email, now=now).booking


def assert_busy_types_decide(user: User, now: datetime) -> None:
    """The slots left by the day of busy types the provider tests seed on day 1 (and day 3).

    08–11 are blocked (busy, away, tentative), 11–14 are free (free, working
    elsewhere, a cancelled meeting), and an all-day event fills day 3 in Berlin.
    """
    offered = slots(user, 1, now)
    for busy in (utc(1, 8), utc(1, 9), utc(1, 10)):  # tentative counts by default
        assert busy not in offered
    for free in (utc(1, 11), utc(1, 12), utc(1, 13)):
        assert free in offered
    assert slots(user, 3, now) == []  # the all-day event fills the Berlin day
    assert slots(user, 4, now) != []
