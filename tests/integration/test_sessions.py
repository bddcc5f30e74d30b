"""Sessions end on the server: a password change ends the others, sign-out ends its own."""

from __future__ import annotations

from tests.support.app import AuthActions


def test_password_change_signs_out_other_sessions(app, hosts):
    hosts.create("alice", email="alice@example.com")
    laptop, phone = AuthActions(app.test_client()), AuthActions(app.test_client())
    assert laptop.login().status_code == 302
    assert phone.login().status_code == 302
    assert phone.client.get("/settings/").status_code == 200

    changed = laptop.post(
        "/settings/password",
        {
            "current_password": "correct horse",
            "new_password": "a much better one",
            "confirm": "a much better one",
        },
    )
    assert changed.status_code in (200, 302)

    assert laptop.client.get("/settings/").status_code == 200
    assert phone.client.get("/settings/").status_code == 302  # back to sign-in
    assert phone.login(password="a much better one").status_code == 302
    assert phone.client.get("/settings/").status_code == 200


def test_deactivation_ends_a_session_at_once(app, hosts):
    from portal.models import User, db

    user = hosts.create("alice", email="alice@example.com")
    auth = AuthActions(app.test_client())
    auth.login()
    with app.app_context(), db.connection_context():
        User.update(is_active=False).where(User.id == user.id).execute()
    assert auth.client.get("/settings/").status_code == 302


def test_a_replayed_cookie_is_dead_after_sign_out(app, hosts):
    """Signing out ends the session on the server: a copy of its cookie signs nobody in."""
    hosts.create("alice", email="alice@example.com")
    browser = AuthActions(app.test_client())
    assert browser.login().status_code == 302
    copied = browser.client.get_cookie("session").value
    assert browser.logout().status_code == 302

    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/settings/").status_code == 302  # back to sign-in
    assert thief.get("/settings/", headers={"HX-Request": "true"}).status_code == 401


def test_sign_out_ends_only_its_own_session(app, hosts):
    from portal.models import UserSession, db

    user = hosts.create("alice", email="alice@example.com")
    laptop, phone = AuthActions(app.test_client()), AuthActions(app.test_client())
    laptop.login()
    phone.login()
    with app.app_context(), db.connection_context():
        assert UserSession.select().where(UserSession.user == user.id).count() == 2
    laptop.logout()
    assert laptop.client.get("/settings/").status_code == 302
    assert phone.client.get("/settings/").status_code == 200
    with app.app_context(), db.connection_context():
        assert UserSession.select().where(UserSession.user == user.id).count() == 1


def test_a_session_row_holds_no_usable_secret(app, hosts):
    """The table keeps a hash; the id in the cookie is what makes a session."""
    from portal.models import UserSession, db

    hosts.create("alice", email="alice@example.com")
    browser = AuthActions(app.test_client())
    browser.login()
    with browser.client.session_transaction() as session:
        sid = session["sid"]
    with app.app_context(), db.connection_context():
        stored = [row.token_hash for row in UserSession.select()]
    assert len(stored) == 1 and sid not in stored[0]
    with browser.client.session_transaction() as session:
        session["sid"] = stored[0]  # a stolen table row, put in a forged cookie
    assert browser.client.get("/settings/").status_code == 302
