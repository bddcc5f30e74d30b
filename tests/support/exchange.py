"""Shared pieces of the Exchange tests: an app pointed at the fake Exchange, users, bookings.

Test modules import the fixtures they use (``from tests.support.exchange import …``);
the fake itself is the ``ews`` fixture of tests/conftest.py (its CA trusted
through ``REQUESTS_CA_BUNDLE``, TLS verification on).
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from portal.booking import service as booking
from portal.models import MeetingType, db
from portal.org.users import create_user
from tests.support.app import make_app
from tests.support.clock import at

PASSWORD = "correct horse"
ALICE = "alice@example.com"
ALICE_PW = "alice-exchange-secret"


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` UTC, ``day`` days after the test clock's Monday (1 = Tuesday)."""
    return at(day, hour, minute)


@pytest.fixture(name="exchange_app")
def exchange_app_fixture(tmp_path, redis_url, ews):
    """Kairos with the fake's Autodiscover endpoint and a short HTTP timeout."""
    app = make_app(
        tmp_path,
        redis_url,
        HTTP_TIMEOUT=5,
        EWS_AUTODISCOVER_URL=ews.autodiscover_url,
        OUTBOX_RELAY_ON_COMMIT=False,
    )
    yield app
    if not db.is_closed():
        db.close()


@pytest.fixture(name="ctx")
def ctx_fixture(exchange_app):
    """An app context for tests that call the domain directly (not for test-client tests)."""
    with exchange_app.app_context():
        yield exchange_app
        if not db.is_closed():
            db.close()


def make_host(email: str = ALICE, slug: str = "alice", admin: bool = False):
    user = create_user(email, PASSWORD, slug, admin=admin, timezone="Europe/Berlin")
    MeetingType.create(user=user, slug="intro", name="Intro", duration_minutes=30)
    return user


def intro(user) -> MeetingType:
    return MeetingType.get(MeetingType.user == user, MeetingType.slug == "intro")


def slots(user, day: int, now: datetime) -> list[datetime]:
    return booking.available_slots(user, intro(user), utc(day, 0), utc(day + 1, 0), now=now)


def book(user, start: datetime, now: datetime, name: str = "Ada"):
    return booking.book(
        user, intro(user), start, name, f"{name.lower()}@example.org", now=now
    ).booking


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    match = CSRF.search(page) or re.search(r'"X-CSRFToken": "([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, email: str = ALICE) -> None:
    answer = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(client)}
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
