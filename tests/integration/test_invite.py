"""Invitations (single use, expiring, stored hashed), the accept page, the CLI, and /signup."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest

import jobs  # noqa: F401  (registers the outbox handlers)
from jobs.outbox import run
from portal.models import (
    AppSetting,
    Invite,
    MeetingType,
    Outbox,
    User,
    WeeklyHours,
    db,
    hash_token,
    utcnow,
)
from portal.org import domains, invites, member_defaults, settings
from portal.org.errors import AdminError
from tests.integration.test_settings_security import dump
from tests.support.app import AuthActions

LINK = re.compile(r"(?:https?://[^/\s\"]+)?/invite/([A-Za-z0-9_-]+)")


@pytest.fixture
def ada(hosts):
    return hosts.create("ada", name="Ada Admin", admin=True)


def invite_by_page(client, email_address: str, **extra):
    auth = AuthActions(client)
    auth.login("ada@example.com")
    answer = auth.post("/settings/admin/invites", {"email": email_address, **extra})
    return answer


def mails(app) -> list[email.message.EmailMessage]:
    folder = Path(app.config["OUTBOX_MAIL_DIR"])
    return [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted(folder.glob("*.eml"))
    ]


def run_outbox(app) -> None:
    """What the worker does with each recorded row (the relay's RQ hop left out)."""
    with app.app_context(), db.connection_context():
        ids = [r.id for r in Outbox.select().where(Outbox.status != "done").order_by(Outbox.id)]
    with app.app_context():
        for row_id in ids:
            run(row_id)


def test_invite_is_emailed_with_a_long_random_single_use_link(app, client, ada):
    answer = invite_by_page(client, "Carol@Example.com")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert "Invitation sent to carol@example.com" in page
    token = LINK.search(page).group(1)
    assert len(token) >= 43  # 256 bits, URL-safe base64
    with app.app_context(), db.connection_context():
        row = Invite.get(Invite.email == "carol@example.com")
        assert row.token_hash == hash_token(token) and row.invited_by_id == ada.id
        assert row.accepted_at is None and len(row.salt) == 64
    # Only the hash is stored: the token appears nowhere in the database.
    assert token not in repr(dump(app))
    run_outbox(app)
    [msg] = mails(app)
    assert msg["To"] == "carol@example.com" and "Ada Admin invites you" in msg["Subject"]
    assert msg["Reply-To"].addresses[0].addr_spec == "ada@example.com"
    text = msg.get_body(("plain",)).get_content()
    assert f"/invite/{token}" in text and "works once" in text
    run_outbox(app)
    assert len(mails(app)) == 1  # a rerun sends nothing twice


def test_accepting_creates_the_account_with_defaults_and_spends_the_link(app, client, ada):
    with app.app_context(), db.connection_context():
        member_defaults.save_member_defaults(
            member_defaults.MemberDefaults(
                timezone="Europe/Lisbon",
                weekly={d: ((("08:00", "16:00"),) if d < 4 else ()) for d in range(7)},
                lead_time_minutes=30,
                buffer_after_minutes=10,
            )
        )
        invite = invites.create_invite("carol@example.com", User.get_by_id(ada.id))
        token = invites.invite_token(invite)
    guest = app.test_client()
    form = guest.get(f"/invite/{token}")
    assert form.status_code == 200
    assert form.headers["Referrer-Policy"] == "no-referrer"
    assert form.headers["Cache-Control"] == "no-store"
    page = form.get_data(as_text=True)
    assert "carol@example.com" in page and 'value="carol"' in page  # suggested link name
    csrf = AuthActions.TOKEN.search(page).group(1)
    answer = guest.post(
        f"/invite/{token}",
        data={
            "csrf_token": csrf,
            "name": "Carol Coworker",
            "slug": "carol",
            "password": "a good password",
            "confirm": "a good password",
        },
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/settings/hours"
    assert "Carol Coworker" in guest.get("/settings/").get_data(as_text=True)  # signed in
    with app.app_context(), db.connection_context():
        carol = User.get(User.email == "carol@example.com")
        assert carol.name == "Carol Coworker" and carol.slug == "carol" and not carol.is_admin
        assert carol.check_password("a good password")
        assert carol.timezone == "Europe/Lisbon" and carol.lead_time_minutes == 30
        days = sorted(w.weekday for w in WeeklyHours.select().where(WeeklyHours.user == carol))
        assert days == [0, 1, 2, 3]
        assert MeetingType.get(MeetingType.user == carol).buffer_after_minutes == 10
        row = Invite.get_by_id(invite.id)
        assert row.accepted_at is not None and row.user_id == carol.id
    # Single use: the link is dead, for GET and POST alike.
    again = app.test_client()
    dead = again.get(f"/invite/{token}")
    assert dead.status_code == 404 and "no longer works" in dead.get_data(as_text=True)
    assert again.post(f"/invite/{token}", data={"name": "X"}).status_code in (400, 404)
    with app.app_context(), db.connection_context():
        with pytest.raises(AdminError) as gone:
            invites.accept_invite(token, "Eve", "eve", "another password", "another password")
        assert gone.value.field is None
        assert User.select().count() == 2


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": ""}, "name", "enter your name"),
        ({"slug": "settings"}, "slug", "reserved"),
        ({"slug": "Bad Slug!"}, "slug", "lowercase letters"),
        ({"slug": "ada"}, "slug", "another member has this link name"),
        ({"password": "short", "confirm": "short"}, "password", "at least 8"),
        ({"confirm": "something else"}, "confirm", "the two passwords differ"),
    ],
)
def test_bad_details_are_shown_next_to_the_field(app, ada, data, field, message):
    with app.app_context(), db.connection_context():
        token = invites.invite_token(invites.create_invite("carol@example.com", None))
    guest = app.test_client()
    csrf = AuthActions.TOKEN.search(guest.get(f"/invite/{token}").get_data(as_text=True)).group(1)
    form = {
        "csrf_token": csrf,
        "name": "Carol",
        "slug": "carol",
        "password": "a good password",
        "confirm": "a good password",
    } | data
    answer = guest.post(f"/invite/{token}", data=form)
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert f'id="{field}-error"' in page and message in page
    with app.app_context(), db.connection_context():
        assert User.by_email("carol@example.com") is None
        assert invites.find_invite(token) is not None  # still good for a corrected try


def test_expired_revoked_replaced_and_forged_links_do_not_work(app, client, ada, now):
    with app.app_context(), db.connection_context():
        old = invites.create_invite("old@example.com", None, now=utcnow() - timedelta(days=8))
        expired = invites.invite_token(old)
        first = invites.create_invite("carol@example.com", None)
        replaced = invites.invite_token(first)
        second = invites.create_invite("carol@example.com", None)
        current = invites.invite_token(second)
        dan = invites.create_invite("dan@example.com", None)
        dans = invites.invite_token(dan)
    forged = current[:-1] + ("B" if current.endswith("A") else "A")
    for token in (expired, replaced, "x" * 43, "x" * 500, forged):
        assert client.get(f"/invite/{token}").status_code == 404, token
    assert client.get(f"/invite/{current}").status_code == 200
    # Revoking from the people page kills the link.
    auth = AuthActions(client)
    auth.login("ada@example.com")
    page = client.get("/settings/admin/").get_data(as_text=True)
    assert "dan@example.com" in page and "old@example.com" not in page
    assert auth.post(f"/settings/admin/invites/{dan.id}/revoke").status_code == 302
    assert app.test_client().get(f"/invite/{dans}").status_code == 404
    # A changed secret key turns every outstanding link off.
    app.config["SECRET_KEY"] = "rotated"
    assert app.test_client().get(f"/invite/{current}").status_code == 404


def test_an_expired_or_used_invitation_is_not_emailed(app, ada):
    with app.app_context(), db.connection_context():
        invite = invites.create_invite("carol@example.com", None)
        invites.revoke_invite(invite)
    run_outbox(app)
    assert mails(app) == []


def test_invite_refuses_bad_and_taken_addresses(app, client, ada, hosts):
    hosts.create("bob", name="Bob")
    for address, message in (
        ("not-an-address", "e-mail address like"),
        ("bob@example.com", "already has an account"),
    ):
        answer = invite_by_page(client, address)
        assert answer.status_code == 422
        assert message in answer.get_data(as_text=True)
    with app.app_context(), db.connection_context():
        assert Invite.select().count() == 0 and Outbox.select().count() == 0


def test_invitation_as_admin(app, client, ada):
    answer = invite_by_page(client, "carol@example.com", is_admin="y")
    token = LINK.search(answer.get_data(as_text=True)).group(1)
    with app.app_context(), db.connection_context():
        user = invites.accept_invite(token, "Carol", "carol", "a good password", "a good password")
        assert User.get_by_id(user.id).is_admin


def test_cli_invite_prints_the_link_and_records_the_email(app, runner, ada):
    out = runner.invoke(args=["users", "invite", "--email", "carol@example.com"])
    assert out.exit_code == 0, out.output
    link = out.output.strip().splitlines()[-1]
    token = LINK.search(link).group(1)
    assert link.endswith(f"/invite/{token}")
    with app.app_context(), db.connection_context():
        assert invites.find_invite(token).email == "carol@example.com"
        assert Outbox.select().where(Outbox.kind == "invite_email").count() == 1
    bad = runner.invoke(args=["users", "invite", "--email", "ada@example.com"])
    assert bad.exit_code != 0 and "already has an account" in bad.output


# ---------------------------------------------------------------- self-signup


def signup_form(client, **data):
    page = client.get("/signup").get_data(as_text=True)
    csrf = AuthActions.TOKEN.search(page).group(1)
    form = {
        "csrf_token": csrf,
        "email": "dee@example.com",
        "name": "Dee",
        "slug": "dee",
        "password": "a good password",
        "confirm": "a good password",
    }
    return form | data


def test_signup_page_exists_only_when_switched_on_with_domains(app, client, ada):
    assert client.get("/signup").status_code == 404
    assert client.post("/signup", data={"email": "dee@example.com"}).status_code in (400, 404)
    with app.app_context(), db.connection_context():
        AppSetting.write("self_signup", True)  # on, but no domain named: still nobody
    assert client.get("/signup").status_code == 404
    with app.app_context(), db.connection_context():
        settings.save_signup(True, ["example.com"])
    page = client.get("/signup")
    assert page.status_code == 200 and "example.com" in page.get_data(as_text=True)


def test_signup_only_for_allowed_domains(app, client, ada):
    with app.app_context(), db.connection_context():
        settings.save_signup(True, ["example.com"])
        member_defaults.save_member_defaults(member_defaults.MemberDefaults(timezone="Asia/Tokyo"))
    answer = client.post("/signup", data=signup_form(client, email="eve@evil.example"))
    assert answer.status_code == 422
    assert "sign-up is not open to this e-mail address" in answer.get_data(as_text=True)
    taken = client.post("/signup", data=signup_form(client, email="ada@example.com"))
    assert taken.status_code == 422 and "exists" in taken.get_data(as_text=True)
    with app.app_context(), db.connection_context():
        assert User.select().count() == 1
    answer = client.post("/signup", data=signup_form(client))
    assert answer.status_code == 302 and answer.headers["Location"] == "/settings/hours"
    with app.app_context(), db.connection_context():
        dee = User.get(User.email == "dee@example.com")
        assert dee.timezone == "Asia/Tokyo" and not dee.is_admin
        assert MeetingType.select().where(MeetingType.user == dee).count() == 1
    assert app.test_client().get("/dee").status_code == 200


def test_signup_allowed_checks_the_domain_exactly(app):
    with app.app_context(), db.connection_context():
        settings.save_signup(True, ["example.com"])
        assert settings.signup_allowed("x@example.com") and settings.signup_allowed("X@EXAMPLE.COM")
        assert not settings.signup_allowed("x@evil-example.com")
        assert not settings.signup_allowed("x@example.com.evil.org")
        assert not settings.signup_allowed("x@sub.example.com")
        settings.save_signup(False, ["example.com"])
        assert not settings.signup_allowed("x@example.com")
        with pytest.raises(AdminError):
            settings.save_signup(True, [])


def test_parse_domains():
    assert domains.parse_domains(" Example.com, @staff.Example.org;example.com ") == [
        "example.com",
        "staff.example.org",
    ]
    for bad in ("exa mple", "no_tld", "http://example.com", "a@b.com"):
        with pytest.raises(ValueError):
            domains.parse_domains(bad)
