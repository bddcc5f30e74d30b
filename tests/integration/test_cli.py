"""The CLI as SPEC lists it: users create, tokens create, db upgrade."""

from __future__ import annotations

from portal.models import ApiToken, User, WeeklyHours, db, hash_token


def test_users_create_makes_host_with_default_hours(app, runner):
    out = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "A@Example.com",
            "--password",
            "pw",
            "--slug",
            "ann",
            "--admin",
        ]
    )
    assert out.exit_code == 0, out.output
    with app.app_context(), db.connection_context():
        user = User.get(User.slug == "ann")
        assert user.email == "a@example.com" and user.is_admin and user.check_password("pw")
        days = sorted({w.weekday for w in WeeklyHours.select().where(WeeklyHours.user == user)})
        assert days == [0, 1, 2, 3, 4]


def test_users_create_refuses_reserved_slug_and_duplicates(runner):
    bad = runner.invoke(
        args=["users", "create", "--email", "a@x.io", "--password", "p", "--slug", "settings"]
    )
    assert bad.exit_code != 0 and "reserved" in bad.output
    ok = runner.invoke(
        args=["users", "create", "--email", "a@x.io", "--password", "p", "--slug", "ann"]
    )
    assert ok.exit_code == 0
    dup = runner.invoke(
        args=["users", "create", "--email", "a@x.io", "--password", "p", "--slug", "bob"]
    )
    assert dup.exit_code != 0


def test_tokens_create_prints_token_alone_on_last_line(app, runner, hosts):
    hosts.create("ann", email="ann@example.com")
    out = runner.invoke(args=["tokens", "create", "--email", "ann@example.com"])
    assert out.exit_code == 0
    token = out.output.strip().splitlines()[-1]
    with app.app_context(), db.connection_context():
        assert ApiToken.get(ApiToken.token_hash == hash_token(token)).user.slug == "ann"
    client = app.test_client()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_db_upgrade_is_idempotent(runner):
    out = runner.invoke(args=["db", "upgrade"])
    assert out.exit_code == 0 and "applied 0 migration" in out.output
