"""Sign-in, sign-out and first run, as a browser sees them (forms with CSRF tokens)."""

from __future__ import annotations

import re

import pytest

from portal.models import AppSetting, User, db


def _text(response) -> str:
    """The page without the per-request CSRF token, so two answers can be compared."""
    html = response.get_data(as_text=True)
    return re.sub(
        r'(type="hidden" value="|csrf_token" value="|"X-CSRFToken": ")[^"]+', r"\1…", html
    )


# ---------------------------------------------------------------- first run


def test_first_run_creates_the_admin_then_setup_is_gone(app, client, auth):
    assert client.get("/login").headers["Location"] == "/setup"
    page = client.get("/setup")
    assert page.status_code == 200
    assert 'list="tz-names"' in page.get_data(as_text=True)
    token = auth.token("/setup")
    response = client.post(
        "/setup",
        data={
            "name": "Alice",
            "email": "Alice@Example.com",
            "slug": "alice",
            "timezone": "Europe/Berlin",
            "password": "long enough",
            "confirm": "long enough",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/settings/hours"
    # Signed in straight away, with the default week.
    assert client.get("/settings/").status_code == 200
    with app.app_context(), db.connection_context():
        user = User.get(User.slug == "alice")
        assert user.is_admin and user.email == "alice@example.com"
        assert user.timezone == "Europe/Berlin" and user.check_password("long enough")
        assert len(user.weekly_hours) == 5
    # From now on the page does not exist, for anyone.
    assert client.get("/setup").status_code == 404
    assert app.test_client().get("/setup").status_code == 404
    assert app.test_client().post("/setup", data={}).status_code in (400, 404)


def test_setup_shows_each_error_next_to_its_field(app, client, auth):
    token = auth.token("/setup")
    response = client.post(
        "/setup",
        data={
            "name": "",
            "email": "not-an-email",
            "slug": "settings",
            "timezone": "Mars/Olympus",
            "password": "short",
            "confirm": "different",
            "csrf_token": token,
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for field in ("name", "email", "slug", "timezone", "password", "confirm"):
        assert f'id="{field}-error"' in html, field
    assert "this word is reserved" in html
    assert "pick a time zone from the list" in html
    assert 'aria-invalid="true"' in html
    with app.app_context(), db.connection_context():
        assert User.select().count() == 0


def test_setup_refuses_a_second_admin_even_when_the_user_table_was_empty(app, client, auth):
    """The marker row written with the first admin makes a racing second first run fail."""
    token = auth.token("/setup")
    with app.app_context(), db.connection_context():
        AppSetting.create(key="setup.admin", value='"someone@example.com"')
    response = client.post(
        "/setup",
        data={
            "name": "Mallory",
            "email": "m@example.com",
            "slug": "mallory",
            "timezone": "UTC",
            "password": "long enough",
            "confirm": "long enough",
            "csrf_token": token,
        },
    )
    assert response.status_code == 404
    with app.app_context(), db.connection_context():
        assert User.select().count() == 0


# ---------------------------------------------------------------- sign in


def test_login_and_logout(hosts, client, auth):
    hosts.create("alice")
    assert client.get("/settings/").status_code == 302
    response = auth.login()
    assert response.status_code == 302 and response.headers["Location"] == "/settings/"
    assert client.get("/settings/").status_code == 200
    assert client.get("/login").headers["Location"] == "/settings/"
    # Logout is POST only, and it needs the CSRF token.
    assert client.get("/logout").status_code in (404, 405)  # /<host> takes other methods
    assert client.post("/logout").status_code == 400
    assert client.get("/settings/").status_code == 200
    assert auth.logout().headers["Location"] == "/login"
    assert client.get("/settings/").status_code == 302


def test_unknown_email_and_wrong_password_get_the_same_answer(hosts, client, auth):
    hosts.create("alice")
    wrong = auth.login(password="not it")
    unknown = auth.login(email="nobody@example.com", password="not it")
    assert wrong.status_code == unknown.status_code == 200
    assert _text(wrong).replace("alice@example.com", "X") == _text(unknown).replace(
        "nobody@example.com", "X"
    )
    assert "do not match an account" in _text(wrong)


def test_inactive_account_cannot_sign_in(app, hosts, client, auth):
    user = hosts.create("alice")
    with app.app_context(), db.connection_context():
        User.update(is_active=False).where(User.id == user.id).execute()
    assert auth.login().status_code == 200
    assert client.get("/settings/").status_code == 302


def test_session_is_rotated_on_login(hosts, client, auth):
    """Whatever a visitor's session held before signing in is gone afterwards."""
    hosts.create("alice")
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    before = auth.token("/login")
    auth.login()
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("_user_id")
    assert auth.token("/settings/") != before


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https:/evil.example",
        "javascript:alert(1)",
        "/settings\r\nLocation: https://evil.example",
        "evil.example",
        "",
    ],
)
def test_next_never_leaves_the_site(hosts, client, auth, target):
    hosts.create("alice")
    response = auth.login(next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/settings/"


def test_next_keeps_a_relative_path(hosts, client, auth):
    hosts.create("alice")
    # A settings page asked for while signed out comes back after signing in.
    bounce = client.get("/settings/types?x=1")
    assert bounce.headers["Location"] == "/login?next=/settings/types?x%3D1"
    response = auth.login(next="/settings/types?x=1")
    assert response.headers["Location"] == "/settings/types?x=1"


def test_htmx_requests_are_sent_to_the_login_page_whole(client):
    response = client.get("/settings/hours", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=/settings/hours")


# ---------------------------------------------------------------- cookies and headers


def test_session_cookie_is_httponly_and_samesite_lax(hosts, client, auth):
    hosts.create("alice")
    response = auth.login()
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    for cookie in cookies:
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie


def _session_cookie(response) -> str:
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))


@pytest.mark.parametrize(
    ("config", "base_url", "secure"),
    [
        ({}, "http://localhost", False),
        ({}, "https://localhost", True),  # served over HTTPS
        ({"BASE_URL": "https://kairos.example"}, "http://localhost", True),  # TLS at a proxy
        ({"SESSION_COOKIE_SECURE": True}, "http://localhost", True),  # forced
    ],
)
def test_session_cookie_is_secure_over_https(tmp_path, redis_url, config, base_url, secure):
    from tests.support.app import AuthActions, Hosts, make_app

    app = make_app(tmp_path, redis_url, **config)
    Hosts(app).create("alice")
    client = app.test_client()
    page = client.get("/login", base_url=base_url)
    token = AuthActions.TOKEN.search(page.get_data(as_text=True)).group(1)
    response = client.post(
        "/login",
        base_url=base_url,
        headers={"Referer": f"{base_url}/login"},  # Flask-WTF checks it over HTTPS
        data={"email": "alice@example.com", "password": "correct horse", "csrf_token": token},
    )
    assert response.status_code == 302
    assert ("Secure" in _session_cookie(response)) is secure


@pytest.mark.parametrize("path", ["/login", "/setup"])
def test_sign_in_pages_refuse_to_be_framed(client, path):
    response = client.get(path)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"].endswith("; frame-ancestors 'none'")


def test_login_without_csrf_token_is_refused(hosts, client):
    hosts.create("alice")
    response = client.post(
        "/login", data={"email": "alice@example.com", "password": "correct horse"}
    )
    assert response.status_code == 400
    assert client.get("/settings/").status_code == 302
