"""Connecting Google and Microsoft in the browser: the OAuth flow and its guard rails.

The browser hop to the provider is a plain HTTP GET against the fake
servers (real processes); everything on our side goes through the app's
test client, CSRF included.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests

from portal.calendars import sync
from portal.models import (
    AppSetting,
    Calendar,
    Connection,
    OAuthFlow,
    OAuthIdentity,
    db,
    to_db,
    utcnow,
)
from portal.org.users import create_user
from tests.support.app import PASSWORD, TEST_DATABASE_URL, csrf_token, make_app, sign_in
from tests.support.oauth import connect, oauth_app_fixture, query, start_connect, through_provider  # noqa: F401


@pytest.fixture
def alice(oauth_app, fake_google, fake_microsoft):
    with oauth_app.app_context():
        user = create_user("alice@example.com", PASSWORD, "alice", timezone="Europe/Berlin")
    for fake in (fake_google,):
        fake.add_calendar(calendar_id="test.user@example.com", summary="Test", primary=True)
        fake.add_calendar(calendar_id="team@group.calendar.google.com", summary="Team")
    fake_microsoft.add_calendar(name="Calendar", default=True)
    fake_microsoft.add_calendar(name="Birthdays", can_edit=False)
    return user


@pytest.fixture
def client(oauth_app, alice):
    client = oauth_app.test_client()
    sign_in(client)
    return client


def test_connect_google_stores_sealed_tokens_and_lists_calendars(client, oauth_app, fake_google):
    conn = connect(client, "google")
    assert (conn.provider, conn.label, conn.status) == (
        "google",
        "test.user@example.com",
        "syncing",
    )
    assert conn.settings_dict()["email"] == "test.user@example.com"
    assert "access_token" not in conn.secret and "1//" not in conn.secret  # sealed
    with oauth_app.app_context():
        creds = sync.credentials(conn)
    assert creds["refresh_token"].startswith("1//") and creds["expires_at"] > 0
    calendars = {c.external_id: c for c in Calendar.select().where(Calendar.connection == conn)}
    assert set(calendars) == {"test.user@example.com", "team@group.calendar.google.com"}
    primary = calendars["test.user@example.com"]
    assert primary.writable and primary.write and primary.timezone == "Europe/Berlin"
    # the flow row is gone: a state is good for one use only
    assert OAuthFlow.select().count() == 0
    assert fake_google.oauth_stats()["authorization_code"] == 1


def test_authorize_request_uses_pkce_offline_access_and_minimal_scopes(client):
    token = csrf_token(client, "/settings")
    answer = client.post("/settings/connections/google/connect", data={"csrf_token": token})
    params = query(answer.headers["Location"])
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["access_type"] == "offline" and params["prompt"] == "consent"
    assert set(params["scope"].split()) == {
        "openid",
        "email",
        "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
        "https://www.googleapis.com/auth/calendar.events.freebusy",
        "https://www.googleapis.com/auth/calendar.events.owned",
    }
    assert params["redirect_uri"] == "http://localhost/oauth/google/callback"
    assert "code_verifier" not in answer.headers["Location"]

    answer = client.post("/settings/connections/microsoft/connect", data={"csrf_token": token})
    params = query(answer.headers["Location"])
    assert set(params["scope"].split()) == {"Calendars.ReadWrite", "offline_access", "User.Read"}
    assert params["code_challenge_method"] == "S256"
    assert "/common/oauth2/v2.0/authorize" in answer.headers["Location"]


def test_connect_microsoft(client, oauth_app, fake_microsoft):
    conn = connect(client, "microsoft")
    assert conn.provider == "microsoft" and conn.label == "test.user@example.com"
    names = {c.name: c for c in Calendar.select().where(Calendar.connection == conn)}
    assert names["Calendar"].writable and names["Calendar"].write
    assert not names["Birthdays"].writable
    with oauth_app.app_context():
        assert sync.credentials(conn)["refresh_token"].startswith("M.R3_")


def test_several_accounts_per_host(client, fake_google, fake_microsoft):
    first = connect(client, "google")
    fake_google.sign_in_as("second@example.com", "Second")
    fake_google.add_calendar(owner="second@example.com", calendar_id="second@example.com")
    second = connect(client, "google")
    third = connect(client, "microsoft")
    assert len({first.id, second.id, third.id}) == 3
    assert second.label == "second@example.com"
    assert Connection.select().where(Connection.user == first.user_id).count() == 3
    # connecting the same account again renews it instead of adding a copy
    fake_google.sign_in_as("test.user@example.com")
    client.get(start_connect(client, "google"))
    assert Connection.select().where(Connection.provider == "google").count() == 2


def test_state_is_single_use(client):
    callback = start_connect(client, "google")
    assert client.get(callback).status_code == 302
    again = client.get(callback, follow_redirects=True)
    assert "expired or was already used" in again.get_data(as_text=True)
    assert Connection.select().count() == 1


def test_forged_or_foreign_state_is_refused(client, oauth_app):
    callback = start_connect(client, "google")
    code = query(callback)["code"]
    forged = client.get(
        f"/oauth/google/callback?code={code}&state=not-signed", follow_redirects=True
    )
    assert "expired or was already used" in forged.get_data(as_text=True)
    # the real state, but in another browser (another session): never binds the grant
    other = oauth_app.test_client()
    sign_in(other)
    answer = other.get(callback, follow_redirects=True)
    assert "started in another browser" in answer.get_data(as_text=True)
    assert Connection.select().count() == 0


def test_state_of_one_provider_does_not_work_for_another(client):
    callback = start_connect(client, "google")
    wrong = callback.replace("/oauth/google/", "/oauth/microsoft/")
    assert "expired" in client.get(wrong, follow_redirects=True).get_data(as_text=True)
    assert Connection.select().count() == 0


def test_expired_state_is_refused(client):
    callback = start_connect(client, "google")
    OAuthFlow.update(expires_at=to_db(utcnow() - timedelta(seconds=1))).execute()
    assert "expired" in client.get(callback, follow_redirects=True).get_data(as_text=True)
    assert Connection.select().count() == 0


@pytest.mark.parametrize(
    "target, landing",
    [
        ("/settings/hours", "/settings/hours"),
        ("https://evil.example/steal", "/settings"),
        ("//evil.example/x", "/settings"),
        ("/\\evil.example", "/settings"),
        ("/alice", "/settings"),  # same site, but not a settings page
    ],
)
def test_where_a_connect_lands_is_allow_listed(client, target, landing):
    answer = client.get(start_connect(client, "google", next=target))
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(landing)


def test_connect_needs_csrf_on_post_and_sign_in(oauth_app, alice):
    anonymous = oauth_app.test_client()
    answer = anonymous.get("/settings/connections/google/connect")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    client = oauth_app.test_client()
    sign_in(client)
    assert client.post("/settings/connections/google/connect").status_code == 400
    # a GET only redirects to the provider (nothing of ours changes but the flow row)
    answer = client.get("/settings/connections/google/connect")
    assert answer.status_code == 303 and "code_challenge=" in answer.headers["Location"]


def test_cancelled_consent_connects_nothing(client, fake_google):
    fake_google.oauth_settings(deny=True)
    answer = client.get(start_connect(client, "google"), follow_redirects=True)
    assert "you cancelled the request" in answer.get_data(as_text=True)
    assert Connection.select().count() == 0


def test_unconfigured_provider_is_hidden(tmp_path, redis_url, fake_microsoft):
    app = make_app(tmp_path, redis_url, **fake_microsoft.config())
    with app.app_context(), db.connection_context():
        create_user("alice@example.com", PASSWORD, "alice")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with Microsoft" in page and "Sign in with Google" not in page
    sign_in(client)
    assert client.get("/settings/connections/google/connect").status_code == 404
    assert client.get("/login/google").status_code == 404


def test_admin_switch_turns_a_provider_off(client, oauth_app):
    AppSetting.write("provider_enabled:google", False)
    assert client.get("/settings/connections/google/connect").status_code == 404
    assert "Sign in with Google" not in oauth_app.test_client().get("/login").get_data(as_text=True)
    assert client.get("/settings/connections/microsoft/connect").status_code == 303


def test_reconnect_needs_own_connection(client, oauth_app, fake_google):
    conn = connect(client, "google")
    create_user("bob@example.com", PASSWORD, "bob")
    bob = oauth_app.test_client()
    sign_in(bob, "bob@example.com")
    answer = bob.get(f"/settings/connections/google/connect?connection={conn.id}")
    assert answer.status_code == 404
    answer = client.get(f"/settings/connections/google/connect?connection={conn.id}")
    assert query(answer.headers["Location"])["login_hint"] == "test.user@example.com"


def test_revoked_grant_needs_reconnect_and_reconnect_restores_it(client, oauth_app, fake_google):
    conn = connect(client, "google")
    work = Calendar.get(Calendar.external_id == "test.user@example.com")
    with oauth_app.app_context():
        assert sync.refresh_connection(conn.id) == "ok"
        fake_google.revoke()
        fake_google.expire_access_tokens()
        assert sync.refresh_connection(conn.id) == "needs_reconnect"
    row = Connection.get_by_id(conn.id)
    assert "Token has been expired or revoked" in row.last_error
    [mail] = sync.Outbox.select().where(sync.Outbox.kind == sync.ACTION_REQUIRED)
    assert json.loads(mail.payload) == {"connection_id": conn.id}

    # the host presses "Reconnect": same row, same calendars and choices, back in service
    Calendar.update(conflict=False).where(Calendar.id == work.id).execute()
    client.get(start_connect(client, "google", connection=str(conn.id)))
    row = Connection.get_by_id(conn.id)
    assert row.status == "syncing" and row.last_error == ""
    assert Connection.select().count() == 1
    assert Calendar.get_by_id(work.id).conflict is False
    with oauth_app.app_context():
        assert sync.refresh_connection(conn.id) == "ok"


def test_token_endpoint_down_during_callback_is_a_clear_message(client, fake_google):
    callback = start_connect(client, "google")
    fake_google.fail(503, path="/token")
    answer = client.get(callback, follow_redirects=True)
    assert "did not complete the sign-in" in answer.get_data(as_text=True)
    assert Connection.select().count() == 0


def test_authorize_hop_requires_pkce_at_the_fake(client, oauth_app):
    """The fake refuses a code exchange without the right verifier (so PKCE is really used)."""
    location = client.get("/settings/connections/google/connect").headers["Location"]
    hop = requests.get(
        location.replace("code_challenge_method=S256", "code_challenge_method=plain"),
        allow_redirects=False,
        timeout=10,
    )
    assert query(hop.headers["Location"])["error"] == "invalid_request"
    assert through_provider(client.get("/settings/connections/google/connect"))


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="TEST_DATABASE_URL not set")
def test_connect_and_sign_in_on_postgresql(tmp_path, redis_url, fake_google):
    """The flow and identity tables, the single-use delete and the sealed grant on PostgreSQL."""
    app = make_app(tmp_path, redis_url, TEST_DATABASE_URL, **fake_google.config(), HTTP_TIMEOUT=2)
    fake_google.add_calendar(calendar_id="test.user@example.com", primary=True)
    with app.app_context():
        create_user("test.user@example.com", PASSWORD, "alice")
    client = app.test_client()
    sign_in(client, "test.user@example.com")
    callback = start_connect(client, "google")
    assert client.get(callback).status_code == 302
    assert "already used" in client.get(callback, follow_redirects=True).get_data(as_text=True)
    [conn] = Connection.select()
    assert Calendar.get(Calendar.connection == conn).write

    other = app.test_client()
    token = csrf_token(other, "/login")
    answer = other.get(through_provider(other.post("/login/google", data={"csrf_token": token})))
    assert answer.status_code == 302 and answer.headers["Location"] == "/settings/"
    assert OAuthIdentity.select().count() == 1
    db.close()
