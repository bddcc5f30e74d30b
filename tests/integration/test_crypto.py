"""Secrets at rest: row-bound MultiFernet ciphertexts and key rotation from the CLI."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from portal import crypto
from portal.calendars import sync
from portal.models import Connection, db


@pytest.fixture
def ctx(app):
    with app.app_context(), db.connection_context():
        yield app


def test_ciphertext_is_bound_to_its_row(ctx):
    token = crypto.encrypt("connection:1", {"password": "s3cret"})
    assert "s3cret" not in token
    assert crypto.decrypt("connection:1", token) == {"password": "s3cret"}
    with pytest.raises(crypto.SecretError, match="another row"):
        crypto.decrypt("connection:2", token)
    with pytest.raises(crypto.SecretError):
        crypto.decrypt("connection:1", token[:-4] + "AAAA")


def test_unknown_key_cannot_decrypt(ctx):
    token = crypto.encrypt("connection:1", {"a": 1})
    ctx.config["ENCRYPTION_KEYS"] = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.SecretError, match="configured keys"):
        crypto.decrypt("connection:1", token)


def test_rotate_re_encrypts_everything_under_the_newest_key(app, hosts, feed_server, runner):
    host = hosts.create("alice")
    old = app.config["ENCRYPTION_KEYS"][0]
    with app.app_context(), db.connection_context():
        url = feed_server.publish("/a.ics", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
        conn = sync.connect(host, "ics", {"url": url})
        before = Connection.get_by_id(conn.id).secret

    new = Fernet.generate_key().decode()
    app.config["ENCRYPTION_KEYS"] = [new, old]
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 secret(s)" in result.output

    with app.app_context(), db.connection_context():
        after = Connection.get_by_id(conn.id)
        assert after.secret != before
        app.config["ENCRYPTION_KEYS"] = [new]  # the old key can now be dropped
        assert sync.credentials(after) == {"url": url}
        app.config["ENCRYPTION_KEYS"] = [old]
        with pytest.raises(crypto.SecretError):
            sync.credentials(after)


def test_rotate_reports_a_secret_it_cannot_read(app, hosts, feed_server, runner):
    host = hosts.create("alice")
    with app.app_context(), db.connection_context():
        url = feed_server.publish("/a.ics", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
        sync.connect(host, "ics", {"url": url})
    app.config["ENCRYPTION_KEYS"] = [Fernet.generate_key().decode()]
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code != 0 and "cannot be decrypted" in result.output


def test_disconnect_deletes_the_secret(ctx, hosts, feed_server):
    host = hosts.create("alice")
    url = feed_server.publish("/a.ics", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
    conn = sync.connect(host, "ics", {"url": url})
    sync.disconnect(conn)
    assert Connection.select().where(Connection.secret != "").count() == 0
    assert Connection.get_or_none(Connection.id == conn.id) is None
