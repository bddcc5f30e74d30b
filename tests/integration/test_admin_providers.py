"""The organisation's connection rules, enforced by the server on every connect path.

Per provider, "allow personal connections" (``provider_enabled:<name>``), and who
may connect calendars at all (everyone / listed members / e-mail domains): the
buttons and forms disappear, and the settings page, the JSON API,
``portal.calendars.sync`` and the OAuth flows all refuse.
"""

from __future__ import annotations

import pytest

from portal.calendars import sync
from portal.calendars.providers import InvalidSetup
from portal.models import AppSetting, Connection, User, db
from portal.org import settings
from portal.org.errors import AdminError
from portal.org.users import create_user
from tests.support.app import PASSWORD, AuthActions, csrf_token, sign_in
from tests.support.oauth import connect, oauth_app_fixture, start_connect  # noqa: F401

ICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nEND:VCALENDAR\r\n"


@pytest.fixture
def team(app, hosts):
    ada = hosts.create("ada", email="ada@staff.example", name="Ada", admin=True)
    bob = hosts.create("bob", email="bob@example.com", name="Bob")
    return {"ada": ada, "bob": bob, "bob_token": hosts.token(bob)}


def test_provider_allowed_by_default_and_per_switch(app, team):
    with app.app_context(), db.connection_context():
        bob = User.get_by_id(team["bob"].id)
        assert all(settings.provider_allowed(bob, p) for p in settings.PROVIDERS)
        assert not settings.provider_allowed(bob, "myspace")
        AppSetting.write("provider_enabled:caldav", False)
        assert not settings.provider_allowed(bob, "caldav") and settings.provider_allowed(
            bob, "ics"
        )
        # The switch is for everyone, admins included.
        assert not settings.provider_allowed(User.get_by_id(team["ada"].id), "caldav")


def test_connect_rule_members_and_domains(app, team):
    with app.app_context(), db.connection_context():
        ada, bob = User.get_by_id(team["ada"].id), User.get_by_id(team["bob"].id)
        settings.save_connect_rule(settings.ConnectRule("members", frozenset({ada.id})))
        assert not settings.provider_allowed(bob, "ics")
        settings.save_connect_rule(settings.ConnectRule("members", frozenset({bob.id})))
        assert settings.provider_allowed(bob, "ics")
        settings.save_connect_rule(settings.ConnectRule("domains", domains=("staff.example",)))
        assert not settings.provider_allowed(bob, "ics")
        assert settings.provider_allowed(ada, "ics")  # and admins may always
        settings.save_connect_rule(settings.ConnectRule("domains", domains=("example.com",)))
        assert settings.provider_allowed(bob, "ics")
        with pytest.raises(AdminError):
            settings.save_connect_rule(settings.ConnectRule("domains"))


def test_sync_connect_and_reconnect_refuse_a_switched_off_provider(app, team, feed_server):
    url = feed_server.publish("/cal.ics", ICS)
    with app.app_context(), db.connection_context():
        bob = User.get_by_id(team["bob"].id)
        conn = sync.connect(bob, "ics", {"url": url})
        AppSetting.write("provider_enabled:ics", False)
        with pytest.raises(InvalidSetup) as refused:
            sync.connect(bob, "ics", {"url": url})
        assert refused.value.field == "provider" and "does not allow" in str(refused.value)
        with pytest.raises(InvalidSetup):
            sync.reconnect(conn, {"url": url})
        assert Connection.select().count() == 1


def test_api_refuses_a_switched_off_provider_with_422(app, client, team, feed_server):
    url = feed_server.publish("/cal.ics", ICS)
    bearer = {"Authorization": f"Bearer {team['bob_token']}"}
    with app.app_context(), db.connection_context():
        AppSetting.write("provider_enabled:ics", False)
    answer = client.post(
        "/api/v1/connections", json={"provider": "ics", "url": url}, headers=bearer
    )
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == "provider"
    assert "does not allow" in answer.get_json()["error"]["message"]
    with app.app_context(), db.connection_context():
        assert Connection.select().count() == 0
        AppSetting.write("provider_enabled:ics", True)
    answer = client.post(
        "/api/v1/connections", json={"provider": "ics", "url": url}, headers=bearer
    )
    assert answer.status_code == 201, answer.get_json()


def test_api_refuses_members_outside_the_connect_rule(app, client, team, feed_server):
    url = feed_server.publish("/cal.ics", ICS)
    with app.app_context(), db.connection_context():
        settings.save_connect_rule(settings.ConnectRule("domains", domains=("staff.example",)))
    bearer = {"Authorization": f"Bearer {team['bob_token']}"}
    answer = client.post(
        "/api/v1/connections", json={"provider": "ics", "url": url}, headers=bearer
    )
    assert answer.status_code == 422 and answer.get_json()["error"]["field"] == "provider"


def test_settings_page_hides_the_form_and_refuses_the_post(app, client, team, feed_server):
    url = feed_server.publish("/cal.ics", ICS)
    auth = AuthActions(client)
    auth.login("bob@example.com")
    page = client.get("/settings/connections/").get_data(as_text=True)
    assert "/settings/connections/add/ics" in page and "/settings/connections/add/caldav" in page
    with app.app_context(), db.connection_context():
        AppSetting.write("provider_enabled:ics", False)
    page = client.get("/settings/connections/").get_data(as_text=True)
    assert "/settings/connections/add/ics" not in page
    assert "/settings/connections/add/caldav" in page
    answer = auth.post("/settings/connections/add/ics", {"ics-url": url})
    assert answer.status_code == 404
    with app.app_context(), db.connection_context():
        assert Connection.select().count() == 0


def test_admin_switch_through_the_organisation_page(app, client, team):
    from tests.integration.test_admin import org_form

    auth = AuthActions(client)
    auth.login("ada@staff.example")
    answer = auth.post("/settings/admin/organisation", org_form(provider_caldav=None))
    assert answer.status_code == 302
    with app.app_context(), db.connection_context():
        assert not settings.provider_allowed(User.get_by_id(team["bob"].id), "caldav")
        assert settings.provider_allowed(User.get_by_id(team["bob"].id), "ics")


# ---------------------------------------------------------------- OAuth providers


@pytest.fixture
def oauth_team(oauth_app, fake_google):
    with oauth_app.app_context():
        ada = create_user("ada@staff.example", PASSWORD, "ada", admin=True)
        bob = create_user("test.user@example.com", PASSWORD, "bob")
    fake_google.add_calendar(calendar_id="test.user@example.com", summary="Test", primary=True)
    return {"ada": ada, "bob": bob}


def test_oauth_connect_refused_for_members_outside_the_rule(oauth_app, oauth_team):
    with oauth_app.app_context(), db.connection_context():
        settings.save_connect_rule(
            settings.ConnectRule("members", frozenset({oauth_team["ada"].id}))
        )
    bob = oauth_app.test_client()
    sign_in(bob, "test.user@example.com")
    token = csrf_token(bob, "/settings")
    assert (
        bob.post("/settings/connections/google/connect", data={"csrf_token": token}).status_code
        == 404
    )
    assert bob.get("/settings/connections/google/connect").status_code == 404
    page = bob.get("/settings/connections/").get_data(as_text=True)
    assert "Connect Google" not in page
    ada = oauth_app.test_client()
    sign_in(ada, "ada@staff.example")
    assert "Connect Google" in ada.get("/settings/connections/").get_data(as_text=True)
    answer = ada.post(
        "/settings/connections/google/connect", data={"csrf_token": csrf_token(ada, "/settings")}
    )
    assert answer.status_code == 303


def test_grant_refused_when_switched_off_during_the_flow(oauth_app, oauth_team):
    bob = oauth_app.test_client()
    sign_in(bob, "test.user@example.com")
    callback = start_connect(bob, "google")  # allowed when the flow started …
    with oauth_app.app_context(), db.connection_context():
        AppSetting.write("provider_enabled:google", False)  # … switched off before it returns
    answer = bob.get(callback, follow_redirects=True)
    assert "does not allow connecting Google Calendar" in answer.get_data(as_text=True)
    with oauth_app.app_context(), db.connection_context():
        assert Connection.select().count() == 0


def test_oauth_connect_still_works_when_allowed(oauth_app, oauth_team):
    bob = oauth_app.test_client()
    sign_in(bob, "test.user@example.com")
    conn = connect(bob, "google")
    assert conn.provider == "google" and conn.user_id == oauth_team["bob"].id
