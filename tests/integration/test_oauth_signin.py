"""'Sign in with Google / Microsoft': who gets in, and the calendar offered in the same step."""

from __future__ import annotations

import pytest

from portal.calendars import sync
from portal.models import AppSetting, Calendar, Connection, OAuthIdentity, User
from portal.org.users import create_user
from tests.support.app import PASSWORD, csrf_token
from tests.support.oauth import oauth_app_fixture, through_provider  # noqa: F401


@pytest.fixture
def alice(oauth_app, fake_google, fake_microsoft):
    with oauth_app.app_context():
        user = create_user("alice@example.com", PASSWORD, "alice")
    fake_google.sign_in_as("alice@example.com", "Alice")
    fake_google.add_calendar(
        owner="alice@example.com", calendar_id="alice@example.com", primary=True
    )
    fake_microsoft.sign_in_as("alice@example.com", "Alice")
    fake_microsoft.add_calendar(owner="alice@example.com", name="Calendar", default=True)
    return user


def sign_in_with(client, provider: str, next_path: str | None = None):
    """Press "Sign in with …" on the sign-in page; returns our answer to the callback."""
    data = {"csrf_token": csrf_token(client, "/login")}
    if next_path:
        data["next"] = next_path
    callback = through_provider(client.post(f"/login/{provider}", data=data))
    return client.get(callback)


def signed_in_as(client) -> str | None:
    page = client.get("/settings/", follow_redirects=False)
    if page.status_code != 200:
        return None
    text = page.get_data(as_text=True)
    return text.split("Hello, ", 1)[1].split("<", 1)[0] if "Hello, " in text else "?"


def test_login_page_offers_both_providers(oauth_app, alice):
    page = oauth_app.test_client().get("/login").get_data(as_text=True)
    assert "Sign in with Google" in page and "Sign in with Microsoft" in page


def test_google_sign_in_matches_verified_email_then_offers_the_calendar(oauth_app, alice):
    client = oauth_app.test_client()
    answer = sign_in_with(client, "google")
    assert answer.status_code == 302 and "/oauth/google/offer/" in answer.headers["Location"]
    assert signed_in_as(client) == "alice"
    offer = client.get(answer.headers["Location"])
    text = offer.get_data(as_text=True)
    assert "alice@example.com" in text and "Connect calendar" in text
    assert Connection.select().count() == 0  # nothing is connected without the host's yes

    form = {"csrf_token": csrf_token(client, "/settings/"), "decision": "connect"}
    done = client.post(answer.headers["Location"], data=form)
    assert done.status_code == 302
    [conn] = Connection.select()
    assert (conn.provider, conn.label, conn.user_id) == ("google", "alice@example.com", alice.id)
    assert Calendar.select().where(Calendar.connection == conn, Calendar.write == True).count() == 1  # noqa: E712
    with oauth_app.app_context():
        assert "id_token" not in sync.credentials(conn)
    # the identity is linked: next time the subject alone signs in
    assert OAuthIdentity.get().user_id == alice.id
    # an offer is single use
    assert client.post(answer.headers["Location"], data=form).status_code == 302
    assert Connection.select().count() == 1


def test_declining_the_offer_keeps_nothing(oauth_app, alice):
    client = oauth_app.test_client()
    answer = sign_in_with(client, "google")
    form = {"csrf_token": csrf_token(client, "/settings/"), "decision": "decline"}
    assert client.post(answer.headers["Location"], data=form).status_code == 302
    assert Connection.select().count() == 0
    assert client.get(answer.headers["Location"]).status_code == 302  # gone


def test_an_offer_belongs_to_its_browser(oauth_app, alice):
    client = oauth_app.test_client()
    offer_url = sign_in_with(client, "google").headers["Location"]
    other = oauth_app.test_client()
    other.post(
        "/login",
        data={"email": "alice@example.com", "password": PASSWORD, "csrf_token": csrf_token(other)},
    )
    form = {"csrf_token": csrf_token(other, "/settings/"), "decision": "connect"}
    assert other.post(offer_url, data=form).status_code == 302
    assert Connection.select().count() == 0


def test_next_sign_in_renews_the_connected_account_without_asking(oauth_app, alice, fake_google):
    client = oauth_app.test_client()
    offer_url = sign_in_with(client, "google").headers["Location"]
    client.post(
        offer_url, data={"csrf_token": csrf_token(client, "/settings/"), "decision": "connect"}
    )
    [conn] = Connection.select()
    Connection.update(status="needs_reconnect").execute()

    again = oauth_app.test_client()
    answer = sign_in_with(again, "google", next_path="/settings/hours")
    assert answer.headers["Location"].endswith("/settings/hours")
    assert Connection.get_by_id(conn.id).status in ("syncing", "ok")  # back in service
    assert Connection.select().count() == 1


def test_identity_keeps_working_after_the_address_changes(oauth_app, alice, fake_google):
    client = oauth_app.test_client()
    sign_in_with(client, "google")
    fake_google.sign_in_as("alice@example.com", "Alice", email_verified=False)
    again = oauth_app.test_client()
    sign_in_with(again, "google")
    assert signed_in_as(again) == "alice"  # linked subject, not the (now unverified) address


def test_unverified_address_never_matches_an_account(oauth_app, alice, fake_google):
    fake_google.sign_in_as("alice@example.com", "Alice", email_verified=False)
    client = oauth_app.test_client()
    answer = sign_in_with(client, "google")
    assert answer.headers["Location"].startswith("/login")
    assert signed_in_as(client) is None
    assert OAuthIdentity.select().count() == 0


def test_unknown_account_without_self_signup(oauth_app, alice, fake_google):
    fake_google.sign_in_as("stranger@example.com", "Stranger")
    client = oauth_app.test_client()
    answer = client.get(
        through_provider(client.post("/login/google", data={"csrf_token": csrf_token(client)})),
        follow_redirects=True,
    )
    assert "No Kairos account belongs to stranger@example.com" in answer.get_data(as_text=True)
    assert User.select().count() == 1


def test_self_signup_creates_the_account(oauth_app, alice, fake_google):
    AppSetting.write("self_signup", True)
    AppSetting.write("signup_domains", ["example.com"])  # self-signup is per allowed domain
    fake_google.sign_in_as("new.person@example.com", "New Person")
    fake_google.add_calendar(owner="new.person@example.com", calendar_id="new.person@example.com")
    client = oauth_app.test_client()
    answer = sign_in_with(client, "google")
    assert "/oauth/google/offer/" in answer.headers["Location"]
    user = User.get(User.email == "new.person@example.com")
    assert (user.slug, user.name, user.is_admin) == ("new-person", "New Person", False)
    assert signed_in_as(client) == "New Person"


def test_microsoft_sign_in_uses_the_sign_in_name(oauth_app, alice, fake_microsoft):
    client = oauth_app.test_client()
    answer = sign_in_with(client, "microsoft")
    assert "/oauth/microsoft/offer/" in answer.headers["Location"]
    assert signed_in_as(client) == "alice"


def test_microsoft_mail_attribute_alone_does_not_match(oauth_app, alice, fake_microsoft):
    """A tenant admin can set ``mail`` to anything; only a verified sign-in name counts."""
    fake_microsoft.sign_in_as("mallory@evil.example", "Mallory", mail="alice@example.com")
    client = oauth_app.test_client()
    answer = sign_in_with(client, "microsoft")
    assert answer.headers["Location"].startswith("/login") and signed_in_as(client) is None


def test_microsoft_guest_accounts_do_not_match(oauth_app, alice, fake_microsoft):
    fake_microsoft.sign_in_as(
        "alice_example.com#EXT#@evil.onmicrosoft.com", "Guest", mail="alice@example.com"
    )
    client = oauth_app.test_client()
    assert sign_in_with(client, "microsoft").headers["Location"].startswith("/login")


def test_sign_in_before_first_run_goes_to_setup(oauth_app):
    client = oauth_app.test_client()
    answer = client.get("/login/google")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/setup")


def test_inactive_host_cannot_sign_in(oauth_app, alice):
    User.update(is_active=False).execute()
    client = oauth_app.test_client()
    assert sign_in_with(client, "google").headers["Location"].startswith("/login")
