"""Hardening found from outside (issue 16): caching, file modes, headers, form input."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import stat
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.calendars.providers import net
from portal.models import User, WeeklyHours, db
from tests.integration.test_public_pages import freeze_clock, open_form, submit
from tests.support.app import AuthActions, Hosts, make_app
from tests.support.i18n import visible_text

HX = {"HX-Request": "true"}


@pytest.fixture
def booked(app, hosts, client, now, monkeypatch):
    """Alice's booking made through the public form; its manage page path."""
    freeze_clock(monkeypatch, now)
    alice = hosts.create("alice", tz="Europe/Berlin")
    hosts.meeting_type(alice, "intro")
    berlin = ZoneInfo("Europe/Berlin")
    tomorrow = now.astimezone(berlin).date() + timedelta(days=1)  # ``now`` is a Monday
    start = datetime.combine(tomorrow, time(10), tzinfo=berlin).astimezone(UTC)
    answer = submit(client, open_form(client, start=start.strftime("%Y-%m-%dT%H:%M:%SZ")))
    assert answer.status_code == 303
    return answer.headers["Location"]


# ---------------------------------------------------------------- manage page caching


def test_the_manage_page_and_its_ics_are_never_stored(client, booked):
    """They hold the invitee's details and the manage token: no shared or back-button cache."""
    page = client.get(booked)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    ics_path = re.search(r'href="(/booking/[^"]+/invite\.ics\?[^"]+)"', page.text)[1]
    ics = client.get(ics_path.replace("&amp;", "&"))
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    assert ics.headers["Cache-Control"] == "no-store"
    embedded = client.get(booked.replace("/booking/", "/embed/booking/", 1))
    assert embedded.status_code == 200 and embedded.headers["Cache-Control"] == "no-store"


# ---------------------------------------------------------------- weekly hours form


def _week(app, user_id):
    with app.app_context(), db.connection_context():
        rows = WeeklyHours.select().where(WeeklyHours.user == user_id)
        return sorted((r.weekday, r.start, r.end) for r in rows), User.get_by_id(user_id).timezone


@pytest.mark.parametrize("htmx", [True, False])
def test_an_unknown_time_zone_is_refused_and_the_week_kept(app, hosts, auth, htmx):
    alice = hosts.create("alice", tz="Europe/Berlin")
    auth.login()
    before = _week(app, alice.id)
    assert len(before[0]) == 5
    answer = auth.post(
        "/settings/hours",
        {"timezone": "Mars/X", "cell": ["0-20"]},
        headers=HX if htmx else {},
    )
    assert answer.status_code == 422
    assert "Time zone: “Mars/X” is not one we know" in answer.text
    assert "nothing was saved" in answer.text and "Saved at" not in answer.text
    if not htmx:  # the whole form again, with the field marked and the posted cells kept
        assert re.search(r'name="timezone" value="Mars/X"[^>]*aria-invalid="true"', answer.text)
        assert 'value="0-20" checked' in answer.text and 'value="0-18" checked' not in answer.text
    assert _week(app, alice.id) == before


def test_the_hours_form_saves_the_zone_with_the_week(app, hosts, auth):
    alice = hosts.create("alice", tz="Europe/Berlin")
    auth.login()
    page = auth.client.get("/settings/hours").text
    assert 'name="timezone" value="Europe/Berlin"' in page
    moved = auth.post(
        "/settings/hours", {"timezone": "America/New_York", "cell": ["0-18"]}, headers=HX
    )
    assert moved.status_code == 200 and moved.headers["HX-Refresh"] == "true"
    assert _week(app, alice.id) == ([(0, "09:00", "09:30")], "America/New_York")
    # Without the field the zone stays as it is.
    kept = auth.post("/settings/hours", {"cell": ["1-18"]}, headers=HX)
    assert kept.status_code == 200 and "Saved at" in kept.text
    assert _week(app, alice.id) == ([(1, "09:00", "09:30")], "America/New_York")


# ---------------------------------------------------------------- file modes


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_umask():
    """The usual 022 umask, under which files come out world-readable unless we say otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_instance_folder_database_and_keys_are_the_owners_only(tmp_path, redis_url, loose_umask):
    instance = tmp_path / "instance"
    database = instance / "kairos.db"
    app = make_app(tmp_path, redis_url, f"sqlite:///{database}")
    hosts = Hosts(app)
    hosts.create("alice")  # a write, so the WAL and its index exist
    assert _mode(instance) == 0o700
    assert _mode(database) == 0o600
    assert _mode(f"{database}-wal") == 0o600 and _mode(f"{database}-shm") == 0o600
    for key in ("secret_key", "encryption_key"):
        assert _mode(instance / key) == 0o600
    db.close()


def test_an_older_install_is_tightened_on_start(tmp_path, redis_url, loose_umask):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    database = instance / "kairos.db"
    sqlite3.connect(database).execute("PRAGMA journal_mode=wal").fetchall()
    for path in (database, f"{database}-wal", f"{database}-shm"):
        open(path, "a").close()
        os.chmod(path, 0o644)
    os.chmod(instance, 0o755)
    make_app(tmp_path, redis_url, f"sqlite:///{database}")
    assert _mode(instance) == 0o700
    assert {_mode(p) for p in (database, f"{database}-wal", f"{database}-shm")} == {0o600}
    db.close()


# ---------------------------------------------------------------- calendar URL errors


@pytest.fixture
def ports():
    """An open port (a listener that says nothing) and a closed one, both on loopback."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    yield listener.getsockname()[1], closed_port
    listener.close()


LEAKS = ("Errno", "urllib3", "HTTPConnection", "Max retries", "refused", "Remote end", "private")


@pytest.mark.parametrize("allow_private", [False, True])
def test_unreachable_calendar_addresses_all_get_one_message(
    tmp_path, redis_url, ports, caplog, allow_private
):
    """Open or closed internal port, unknown name: the host cannot tell them apart."""
    app = make_app(tmp_path, redis_url, ALLOW_PRIVATE_URLS=allow_private, HTTP_TIMEOUT=1)
    Hosts(app).create("alice")
    auth = AuthActions(app.test_client())
    auth.login()
    open_port, closed_port = ports
    targets = [f"127.0.0.1:{open_port}", f"127.0.0.1:{closed_port}", "nowhere.invalid"]
    if not allow_private:
        targets.append(f"localhost:{open_port}")
    answers = {}
    for target in targets:
        ics = auth.post("/settings/connections/add/ics", {"ics-url": f"http://{target}/a.ics"})
        dav = auth.post(
            "/settings/connections/add/caldav",
            {
                "caldav-url": f"http://{target}/dav/",
                "caldav-username": "alice",
                "caldav-password": "secret",
            },
        )
        answers[target] = [
            re.search(r'id="(?:ics|caldav)-url-error"[^>]*>([^<]*)<', r.text)[1] for r in (ics, dav)
        ]
        for response in (ics, dav):
            assert response.status_code in (200, 422)
            shown = visible_text(response.text)  # what the host reads
            assert not any(leak in shown for leak in LEAKS), target
    assert len({tuple(a) for a in answers.values()}) == 1, answers
    assert net.UNREACHABLE in answers[targets[0]][1]
    # What really happened is in the server's log, for the admin.
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"127.0.0.1:{closed_port}" in logged
    db.close()


# ---------------------------------------------------------------- security headers

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors "
)


def test_every_page_has_a_real_content_security_policy(app, hosts, auth, client):
    alice = hosts.create("alice")
    hosts.meeting_type(alice, "intro")
    auth.login()
    assert client.get("/settings/").headers["Content-Security-Policy"] == POLICY + "'none'"
    assert client.get("/login").headers["Content-Security-Policy"] == POLICY + "'none'"
    embed = client.get("/embed/alice/intro")
    assert embed.headers["Content-Security-Policy"] == POLICY + "'self'"
    assert "X-Frame-Options" not in embed.headers


def test_hsts_only_over_https(tmp_path, redis_url):
    app = make_app(tmp_path, redis_url)
    client = app.test_client()
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = client.get("/login", base_url="https://kairos.example")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    # TLS ended at a proxy: the https:// base URL says so.
    app.config["BASE_URL"] = "https://kairos.example"
    assert "max-age=" in client.get("/login").headers["Strict-Transport-Security"]
    app.config["HSTS_SECONDS"] = 0
    assert "Strict-Transport-Security" not in client.get("/login").headers
    db.close()


TEMPLATES = os.path.join(os.path.dirname(__file__), "..", "..", "templates")
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\sstyle=|\son[a-z]+=|\shx-on|javascript:", re.I)


def test_page_templates_carry_no_inline_script_style_or_handler():
    """What the policy would block (e-mail templates are not pages: mail clients need style="")."""
    found = []
    for folder, _dirs, files in os.walk(TEMPLATES):
        if os.path.basename(folder) == "email":
            continue
        for name in files:
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                found += [f"{name}: {m.group(0)}" for m in INLINE.finditer(fh.read())]
    assert found == []
