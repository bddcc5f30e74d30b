"""Flask CLI: ``users create``, ``tokens create``, ``db upgrade``, ``worker``."""

from __future__ import annotations

import click
from flask import Flask, current_app

from .models import DEFAULT_WEEKLY, ApiToken, User, WeeklyHours, db, validate_slug


def create_user(
    email: str, password: str, slug: str, admin: bool = False, name: str = "", timezone: str = "UTC"
) -> User:
    """Create a host with the default weekly hours (Mon–Fri 09:00–17:00)."""
    email = email.strip().lower()
    problem = validate_slug(slug)
    if problem:
        raise ValueError(f"slug: {problem}")
    with db.atomic():
        user = User(email=email, slug=slug, name=name or slug, is_admin=admin, timezone=timezone)
        user.set_password(password)
        user.save()
        for weekday, windows in DEFAULT_WEEKLY.items():
            for start, end in windows:
                WeeklyHours.create(user=user, weekday=weekday, start=start, end=end)
    return user


def register_cli(app: Flask) -> None:
    users = click.Group("users", help="Manage hosts.")
    tokens = click.Group("tokens", help="Manage API tokens.")
    dbg = click.Group("db", help="Database schema.")

    @users.command("create")
    @click.option("--email", required=True)
    @click.option("--password", required=True)
    @click.option("--slug", required=True)
    @click.option("--name", default="")
    @click.option("--timezone", default="UTC")
    @click.option("--admin", is_flag=True, default=False)
    def users_create(email, password, slug, name, timezone, admin):
        """Create a host (add --admin for an administrator)."""
        with db.connection_context():
            if User.by_email(email) or User.get_or_none(User.slug == slug):
                raise click.ClickException("a user with this e-mail or slug exists")
            try:
                user = create_user(email, password, slug, admin, name, timezone)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(f"created {user.email} ({user.slug}){' admin' if admin else ''}")

    @tokens.command("create")
    @click.option("--email", required=True)
    @click.option("--name", default="cli")
    def tokens_create(email, name):
        """Create an API token; the token alone is printed on the last line."""
        with db.connection_context():
            user = User.by_email(email)
            if user is None:
                raise click.ClickException("no such user")
            _, plain = ApiToken.issue(user, name)
        click.echo(f"token for {user.email} (shown once):")
        click.echo(plain)

    @dbg.command("upgrade")
    def db_upgrade():
        """Apply pending migrations."""
        from .database import upgrade

        applied = upgrade()
        click.echo(
            f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "")
        )

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
    def worker(burst):
        """Run an RQ worker with its scheduler and the periodic ticker."""
        from .worker import run_worker

        run_worker(current_app._get_current_object(), burst=burst)

    from flask.cli import AppGroup

    keys = AppGroup("keys", help="Encryption keys for stored secrets.")

    @keys.command("rotate")
    def keys_rotate():
        """Re-encrypt every stored secret under the newest KAIROS_ENCRYPTION_KEYS key."""
        from .crypto import SecretError, rotate

        with db.connection_context():
            try:
                count = rotate()
            except SecretError as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(f"re-encrypted {count} secret(s) under the newest key")

    app.cli.add_command(users)
    app.cli.add_command(tokens)
    app.cli.add_command(dbg)
    app.cli.add_command(keys)
