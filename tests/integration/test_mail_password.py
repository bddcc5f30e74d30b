"""Password reset by e-mail: same answer for every address, single-use expiring links.

Messages go to the outbox folder (no SMTP_URL), as in the embedded default.
"""

from __future__ import annotations

import email
import os
import re
from datetime import timedelta
from email import policy

import pytest

import jobs  # noqa: F401  (registers the outbox handlers)
from jobs import mail as mail_jobs
from portal.models import Outbox, PasswordReset, User, db, to_db, utcnow
from portal.org import passwords
from portal.runtime.outbox import relay
from portal.runtime.worker import run_worker
from tests.support.app import Hosts, make_app

NEW = "a brand new passphrase"


@pytest.fixture
def app(tmp_path, redis_url):
    app = make_app(
        tmp_path,
        redis_url,
        SMTP_URL="",
        BASE_URL="https://book.example.org",
        OUTBOX_RELAY_ON_COMMIT=False,
    )
    yield app
    if not db.is_closed():
        db.close()


@pytest.fixture
def host(app):
    return Hosts(app).create("alice", email="alice@example.com", tz="Europe/Berlin")


def csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def ask(client, address: str):
    token = csrf(client, "/password/forgot")
    return client.post("/password/forgot", data={"email": address, "csrf_token": token})


def deliver(app) -> list:
    """Run the due outbox rows and return every message in the outbox folder."""
    with app.app_context(), db.connection_context():
        n = relay()
    if n:
        run_worker(app, burst=True)
    folder = app.config["OUTBOX_MAIL_DIR"]
    if not os.path.isdir(folder):
        return []
    out = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as fh:
            out.append(email.message_from_binary_file(fh, policy=policy.default))
    return out


def link_in(msg) -> str:
    text = msg.get_body(("plain",)).get_content()
    return re.search(r"https://book\.example\.org(/password/reset/\S+)", text).group(1)


def test_same_answer_whether_or_not_the_account_exists(app, client, host):
    known = ask(client, "Alice@Example.com")
    unknown = ask(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    assert "If an account exists for that address" in known.get_data(as_text=True)
    assert known.headers["Cache-Control"] == "no-store"

    (msg,) = deliver(app)
    assert str(msg["To"]) == "alice <alice@example.com>"
    assert str(msg["Subject"]) == "Reset your password"
    text, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
    path = link_in(msg)
    assert f'href="https://book.example.org{path}"' in html
    assert "(Europe/Berlin)" in text  # the expiry, in the host's zone
    token = path.rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 bits, URL-safe
    with app.app_context(), db.connection_context():
        (reset,) = PasswordReset.select()
        assert reset.token_hash != token and token not in reset.salt


def test_invalid_address_is_shown_next_to_the_field(app, client, host):
    page = ask(client, "not-an-address")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'id="email-error"' in body and "name@example.com" in body
    with app.app_context(), db.connection_context():
        assert Outbox.select().count() == 0


def test_forms_need_the_csrf_token(client, host):
    assert client.post("/password/forgot", data={"email": "alice@example.com"}).status_code == 400


def test_link_sets_a_new_password_once(app, client, host):
    ask(client, "alice@example.com")
    path = link_in(deliver(app)[0])

    form = client.get(path)
    assert form.status_code == 200 and 'name="password"' in form.get_data(as_text=True)
    assert form.headers["Referrer-Policy"] == "no-referrer"
    assert client.get(path).status_code == 200  # looking does not use it up

    token = csrf(client, path)
    short = client.post(path, data={"password": "short", "confirm": "short", "csrf_token": token})
    assert 'id="password-error"' in short.get_data(as_text=True)
    differ = client.post(path, data={"password": NEW, "confirm": NEW + "!", "csrf_token": token})
    assert 'id="confirm-error"' in differ.get_data(as_text=True)

    done = client.post(path, data={"password": NEW, "confirm": NEW, "csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    with app.app_context(), db.connection_context():
        user = User.by_email("alice@example.com")
        assert user.check_password(NEW) and not user.check_password("correct horse")

    again = client.post(path, data={"password": "x" * 12, "confirm": "x" * 12, "csrf_token": token})
    assert again.status_code == 404
    assert client.get(path).status_code == 404


def test_redeeming_one_link_kills_the_others(app, client, host):
    ask(client, "alice@example.com")
    ask(client, "alice@example.com")
    first, second = (link_in(m) for m in deliver(app))
    assert first != second
    token = csrf(client, first)
    client.post(first, data={"password": NEW, "confirm": NEW, "csrf_token": token})
    assert client.get(second).status_code == 404


def test_expired_and_unknown_links_are_refused(app, client, host):
    with app.app_context(), db.connection_context():
        reset = passwords.request_reset("alice@example.com", now=utcnow() - timedelta(hours=2))
        token = passwords.reset_token(reset, User.get_by_id(host.id))
        # The e-mail job does not send a link that has already expired.
        assert mail_jobs.password_reset(reset.id) == 0
    assert client.get(f"/password/reset/{token}").status_code == 404
    assert client.get("/password/reset/" + "A" * 43).status_code == 404
    assert client.get("/password/reset/" + "A" * 500).status_code == 404


def test_a_password_change_kills_outstanding_links(app, client, host):
    ask(client, "alice@example.com")
    with app.app_context(), db.connection_context():
        user = User.get_by_id(host.id)
        user.set_password("changed elsewhere")
        user.save()
    assert deliver(app) == []  # the job finds the link dead and sends nothing
    with app.app_context(), db.connection_context():
        reset = PasswordReset.get()
        old = passwords.reset_token(reset, User(password_hash="x", id=host.id))
        assert passwords.find_reset(old) is None


def test_at_most_three_mails_an_hour(app, client, host):
    for _ in range(5):
        assert ask(client, "alice@example.com").status_code == 200
    assert len(deliver(app)) == 3
    with app.app_context(), db.connection_context():
        PasswordReset.update(created_at=to_db(utcnow() - timedelta(hours=2))).execute()
    ask(client, "alice@example.com")
    assert len(deliver(app)) == 4


def test_inactive_hosts_get_nothing(app, client, host):
    with app.app_context(), db.connection_context():
        User.update(is_active=False).where(User.id == host.id).execute()
    ask(client, "alice@example.com")
    assert deliver(app) == []


def test_the_form_is_rate_limited_per_address(tmp_path, redis_url):
    limited = make_app(tmp_path / "limited", redis_url, RATELIMIT_ENABLED=True, SMTP_URL="")
    client = limited.test_client()
    codes = [ask(client, f"someone{i}@example.com").status_code for i in range(6)]
    assert codes == [200] * 5 + [429]
    assert client.get("/password/forgot").status_code == 200  # reading the form is not limited
