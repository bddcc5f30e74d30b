"""Shared pieces of the Google / Microsoft / OAuth integration tests.

Test modules import the fixtures they need (``from tests.support.oauth import
oauth_app_fixture``); pytest finds fixtures among a module's globals, by the
``name`` they were declared with.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from portal.models import Connection, db
from tests.support.app import csrf_token, make_app

EMAIL = "test.user@example.com"  # who the fakes sign in by default


@pytest.fixture(name="oauth_app")
def oauth_app_fixture(tmp_path, redis_url, fake_google, fake_microsoft):
    """Kairos pointed at both fakes, with a short HTTP timeout."""
    from portal.models import db as database

    app = make_app(
        tmp_path,
        redis_url,
        **fake_google.config(),
        **fake_microsoft.config(),
        HTTP_TIMEOUT=2,
        OUTBOX_RELAY_ON_COMMIT=False,
    )
    yield app
    if not database.is_closed():
        database.close()


@pytest.fixture(name="ctx")
def ctx_fixture(oauth_app):
    """An app context for tests that call the domain directly (no test client).

    Tests that drive the test client must not hold one: a request reuses an
    app context that is already pushed, so ``g`` (and Flask-WTF's cached CSRF
    token in it) would leak from one request into the next. They wrap
    direct calls in ``with oauth_app.app_context():`` instead.
    """
    with oauth_app.app_context():
        yield oauth_app
        if not db.is_closed():
            db.close()


def through_provider(answer) -> str:
    """Follow our redirect through the fake's authorize endpoint; returns our callback path."""
    assert answer.status_code in (302, 303), answer.get_data(as_text=True)
    location = answer.headers["Location"]
    hop = requests.get(location, allow_redirects=False, timeout=10)
    assert hop.status_code == 302, hop.text
    back = urlsplit(hop.headers["Location"])
    return f"{back.path}?{back.query}"


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def start_connect(client, provider: str, **data) -> str:
    """Press "Connect …" (a CSRF-checked POST); returns the callback path the provider sends."""
    token = csrf_token(client, "/settings")
    answer = client.post(
        f"/settings/connections/{provider}/connect", data={"csrf_token": token, **data}
    )
    return through_provider(answer)


def connect(client, provider: str, **data) -> Connection:
    """The whole connect flow through the test client; returns the new connection row."""
    before = {c.id for c in Connection.select(Connection.id)}
    answer = client.get(start_connect(client, provider, **data))
    assert answer.status_code == 302, answer.get_data(as_text=True)
    [conn] = [c for c in Connection.select() if c.id not in before]
    return conn


def grant(user, provider: str) -> Connection:
    """Connect ``provider`` for ``user`` without a browser (inside an app context)."""
    from flask import current_app

    from portal.calendars import oauth_accounts
    from portal.calendars.providers import provider_class, provider_config
    from tests.fakes.common import obtain_token

    config = provider_config(current_app.config)
    token = obtain_token(provider, config)
    account = provider_class(provider).account(token, config)
    return oauth_accounts.connect_grant(user, provider, token, account)


def google_account(fake_google) -> str:
    """The test user's Google calendars: their own (returned), a team one, a colleague's.

    The colleague's calendar is shared read-only: our scopes see its free/busy only.
    """
    fake_google.add_calendar(calendar_id=EMAIL, summary="Test", primary=True)
    fake_google.add_calendar(calendar_id="team@example.com", summary="Team")
    fake_google.add_calendar(
        owner="bob@example.com", calendar_id="bob@example.com", roles={EMAIL: "reader"}
    )
    return EMAIL


def microsoft_account(fake_microsoft) -> str:
    """The test user's Microsoft 365 mailbox (in Berlin); returns its default calendar."""
    fake_microsoft.mailbox_zone(EMAIL, "Europe/Berlin")
    return fake_microsoft.add_calendar(name="Calendar", default=True)
