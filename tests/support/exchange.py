"""Shared pieces of the Exchange tests: an app pointed at the fake Exchange, and its bookings.

Test modules import the fixtures they use (``from tests.support.exchange import …``);
the fake itself is the ``ews`` fixture of tests/conftest.py (its CA trusted
through ``REQUESTS_CA_BUNDLE``, TLS verification on).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from portal.models import db
from tests.support import booking
from tests.support.app import make_app

ALICE = "alice@example.com"
ALICE_PW = "alice-exchange-secret"


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


def book(user, start: datetime, now: datetime, name: str = "Ada"):
    """A booking whose invitee has an address outside the Exchange organisation."""
    return booking.book(user, start, now, name, domain="example.org")
