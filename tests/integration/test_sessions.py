"""A password change ends the host's other sessions; the session that changed it goes on."""

from __future__ import annotations

from tests.conftest import AuthActions


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
