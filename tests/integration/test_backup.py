"""``flask backup`` / ``flask restore``: the database and its keys travel together.

Each instance here is built as ``manage.py run`` builds one: SQLite and generated
keys in its own instance folder, nothing from the environment — except where a
test sets the keys in the environment on purpose.
"""

from __future__ import annotations

import sqlite3
import stat
import tarfile

import pytest

from portal import create_app, crypto
from portal.calendars import sync
from portal.database import upgrade
from portal.models import AppSetting, Booking, Connection, db
from tests.support.api import BERLIN, at, bookable_monday
from tests.support.app import Hosts
from tests.support.clock import NOW, Clock

KEY_VARS = ("SECRET_KEY", "KAIROS_ENCRYPTION_KEYS", "DATABASE_URL", "KAIROS_INSTANCE_PATH")


@pytest.fixture(autouse=True)
def no_keys_in_env(monkeypatch):
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)


def instance_app(folder, redis_url):
    """A portal on ``folder``: its SQLite file and keys are generated there on first start."""
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(folder),
            "REDIS_URL": redis_url,
            "RATELIMIT_ENABLED": False,
            "PUBLIC_SLOTS_CACHE_SECONDS": 0,
            "ALLOW_PRIVATE_URLS": True,
            "CLOCK": Clock(NOW),  # the tests' clock, like every test app
        }
    )
    with app.app_context():
        upgrade()
    return app


def _book(app, start: str, email: str = "carol@example.com"):
    body = {"start": start, "name": "Carol", "email": email, "timezone": BERLIN}
    return app.test_client().post("/api/v1/hosts/alice/intro/bookings", json=body)


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def _host_with_secret(app, password: str = "feed-password"):
    """Alice with a meeting type, an ICS feed behind a password, and one booking."""
    hosts = Hosts(app)
    alice = hosts.create("alice", tz=BERLIN)
    hosts.meeting_type(alice, "intro", duration_minutes=30)
    with app.app_context(), db.connection_context():
        conn = Connection.create(user=alice, provider="ics", label="https://feeds.example/x.ics")
        crypto.seal(conn, "secret", {"password": password})
        conn.save()
    booked = _book(app, at(bookable_monday(), "10:00"))
    assert booked.status_code == 201, booked.json
    return conn.id, booked.json["manage_url"]


def test_backup_of_a_running_portal_restores_into_a_fresh_instance_that_books(
    tmp_path, redis_url, radicale
):
    a = instance_app(tmp_path / "a", redis_url)
    hosts = Hosts(a)
    alice = hosts.create("alice", tz=BERLIN, password="correct horse")
    hosts.meeting_type(alice, "intro", duration_minutes=30)
    user, password = radicale.add_user()
    radicale.make_calendar(user, "Work")
    api = {"Authorization": f"Bearer {hosts.token(alice)}"}
    connected = a.test_client().post(
        "/api/v1/connections",
        json={"provider": "caldav", "url": radicale.url, "username": user, "password": password},
        headers=api,
    )
    assert connected.status_code == 201, connected.json
    conn_id = connected.json["id"]
    monday = bookable_monday()
    booked = _book(a, at(monday, "10:00"))
    assert booked.status_code == 201, booked.json
    manage_url = booked.json["manage_url"]
    secret_key = a.config["SECRET_KEY"]

    # The portal is busy meanwhile: another connection is in the middle of a write.
    writer = sqlite3.connect(tmp_path / "a" / "kairos.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO app_setting (key, value) VALUES ('uncommitted', '1')")
    archive = tmp_path / "backups" / "kairos.tar.gz"
    result = _cli(a, "backup", str(archive))
    writer.execute("ROLLBACK")
    writer.close()
    assert result.exit_code == 0, result.output
    assert "SECRET_KEY: the generated key is in the archive" in result.stdout
    assert "KAIROS_ENCRYPTION_KEYS: the generated key is in the archive" in result.stdout
    assert "store it as carefully as the keys" in result.stderr
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == [
            "kairos.db",
            "keys/encryption_key",
            "keys/secret_key",
            "manifest.json",
        ]

    b_folder = tmp_path / "b"
    b = instance_app(b_folder, redis_url)  # a fresh instance: its own, different keys
    assert b.config["SECRET_KEY"] != secret_key
    result = _cli(b, "restore", str(archive))
    assert result.exit_code == 0, result.output
    assert "connection secrets decrypt" in result.stdout and "manage links open" in result.stdout
    assert "restart the web server" in result.stderr
    assert not list(b_folder.glob("*before-restore*"))  # an empty instance has nothing to keep
    # Once restored, the database is not overwritten by accident.
    again = _cli(b, "restore", str(archive))
    assert again.exit_code != 0 and "already holds data" in again.output
    forced = _cli(b, "restore", "--force", str(archive))
    assert forced.exit_code == 0, forced.output
    assert list(b_folder.glob("kairos.db.before-restore-*"))

    # The restored portal starts (reading the installed keys) and works as before.
    c = instance_app(b_folder, redis_url)
    assert c.config["SECRET_KEY"] == secret_key
    client = c.test_client()
    page = client.get(manage_url)
    assert page.status_code == 200 and "Carol" in page.text
    with c.app_context(), db.connection_context():
        conn = Connection.get_by_id(conn_id)
        assert crypto.unseal(conn, "secret")["password"] == password
        assert sync.refresh_connection(conn_id) == "ok"  # the real server accepts it
        assert AppSetting.get_or_none(AppSetting.key == "uncommitted") is None
        assert Booking.select().count() == 1
    rebooked = _book(c, at(monday, "11:00"), email="dave@example.com")
    assert rebooked.status_code == 201, rebooked.json
    assert client.get("/alice/intro").status_code == 200


def test_keys_from_the_environment_are_named_and_checked(tmp_path, redis_url, monkeypatch):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    monkeypatch.setenv("SECRET_KEY", "the-secret-key-of-a")
    monkeypatch.setenv("KAIROS_ENCRYPTION_KEYS", key)
    a = instance_app(tmp_path / "a", redis_url)
    _conn_id, manage_url = _host_with_secret(a)
    archive = tmp_path / "a.tar.gz"
    result = _cli(a, "backup", str(archive))
    assert result.exit_code == 0, result.output
    assert "SECRET_KEY is not in the archive" in result.stderr
    assert "KAIROS_ENCRYPTION_KEYS is not in the archive" in result.stderr
    with tarfile.open(archive) as tar:
        assert not [n for n in tar.getnames() if n.startswith("keys/")]

    fresh = tmp_path / "b"
    monkeypatch.setenv("KAIROS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    wrong_key = _cli(instance_app(fresh, redis_url), "restore", str(archive))
    assert wrong_key.exit_code != 0
    assert "cannot decrypt the stored connection secrets" in wrong_key.output
    # Refused before anything was replaced, and nothing staged is left behind.
    assert not [p.name for p in fresh.iterdir() if "restore" in p.name]

    monkeypatch.setenv("KAIROS_ENCRYPTION_KEYS", key)
    monkeypatch.setenv("SECRET_KEY", "another-secret-key")
    wrong_secret = _cli(instance_app(fresh, redis_url), "restore", str(archive))
    assert wrong_secret.exit_code != 0
    assert "SECRET_KEY does not match the backup" in wrong_secret.output

    monkeypatch.setenv("SECRET_KEY", "the-secret-key-of-a")
    ok = _cli(instance_app(fresh, redis_url), "restore", str(archive))
    assert ok.exit_code == 0, ok.output
    assert "SECRET_KEY was not in the archive" in ok.stderr
    c = instance_app(fresh, redis_url)
    assert c.test_client().get(manage_url).status_code == 200


def test_generated_keys_overridden_by_the_environment_say_so(tmp_path, redis_url, monkeypatch):
    a = instance_app(tmp_path / "a", redis_url)
    _host_with_secret(a)
    archive = tmp_path / "a.tar.gz"
    assert _cli(a, "backup", str(archive)).exit_code == 0
    from cryptography.fernet import Fernet

    monkeypatch.setenv("KAIROS_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    result = _cli(instance_app(tmp_path / "b", redis_url), "restore", str(archive))
    assert result.exit_code != 0
    assert "cannot decrypt" in result.output
    assert "sets them in the environment, which wins" in result.output


def test_restore_refuses_what_is_not_a_backup(tmp_path, redis_url):
    app = instance_app(tmp_path / "a", redis_url)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    result = _cli(app, "restore", str(junk))
    assert result.exit_code != 0 and "not a Kairos backup archive" in result.output
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        tar.add(junk, arcname="../../etc/passwd")
    result = _cli(app, "restore", str(other))
    assert result.exit_code != 0 and "not a Kairos backup archive" in result.output


def test_postgresql_backup_restores_into_another_database(tmp_path, redis_url):
    """pg_dump / pg_restore through the same two commands; the keys come from the config."""
    from urllib.parse import urlsplit

    import psycopg2

    from tests.support.app import TEST_DATABASE_URL, make_app

    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL not set: the PostgreSQL backup needs a PostgreSQL")
    a = make_app(tmp_path / "a", redis_url, TEST_DATABASE_URL)
    conn_id, manage_url = _host_with_secret(a)
    archive = tmp_path / "pg.tar.gz"
    result = _cli(a, "backup", str(archive))
    assert result.exit_code == 0, result.output
    with tarfile.open(archive) as tar:
        assert "kairos.dump" in tar.getnames()

    parts = urlsplit(TEST_DATABASE_URL)
    target = parts.path.lstrip("/") + "_restore"
    admin = psycopg2.connect(TEST_DATABASE_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{target}"')
        cur.execute(f'CREATE DATABASE "{target}"')
    admin.close()
    b = create_app(a.config | {"DATABASE_URL": parts._replace(path=f"/{target}").geturl()})
    with b.app_context():
        upgrade()  # an empty, migrated database: restore goes ahead without --force
    result = _cli(b, "restore", str(archive))
    assert result.exit_code == 0, result.output
    assert "connection secrets decrypt" in result.stdout and "manage links open" in result.stdout
    assert "already holds data" in _cli(b, "restore", str(archive)).output
    assert b.test_client().get(manage_url).status_code == 200
    with b.app_context(), db.connection_context():
        secret = crypto.unseal(Connection.get_by_id(conn_id), "secret")
        assert secret == {"password": "feed-password"}
    assert _book(b, at(bookable_monday(), "11:00"), email="dave@example.com").status_code == 201
    db.obj.close_all()
