"""Flask CLI: ``users create|invite``, ``tokens create``, ``db upgrade``, ``worker``,
``keys rotate``, ``backup`` / ``restore``."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from portal.models import ApiToken, User, db
from portal.org.users import create_user


def register_cli(app: Flask) -> None:
    users = click.Group("users", help="Manage hosts.")
    tokens = click.Group("tokens", help="Manage API tokens.")
    dbg = click.Group("db", help="Database schema.")

    @users.command("create")
    @click.option("--email", required=True)
    @click.option("--password", required=True)
    @click.option("--slug", required=True)
    @click.option("--name", default="")
    @click.option("--timezone", default=None, help="Default: the organisation's default zone.")
    @click.option("--admin", is_flag=True, default=False)
    def users_create(email, password, slug, name, timezone, admin):
        """Create a host (add --admin for an administrator) with the organisation's defaults."""
        from portal.org.member_defaults import member_defaults

        with db.connection_context():
            if User.by_email(email) or User.get_or_none(User.slug == slug):
                raise click.ClickException("a user with this e-mail or slug exists")
            try:
                user = create_user(
                    email, password, slug, admin, name, timezone, defaults=member_defaults()
                )
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(f"created {user.email} ({user.slug}){' admin' if admin else ''}")

    @users.command("invite")
    @with_appcontext
    @click.option("--email", required=True)
    @click.option("--admin", is_flag=True, default=False, help="The new member becomes an admin.")
    def users_invite(email, admin):
        """Invite a co-worker: e-mail a single-use link (also printed on the last line)."""
        from portal.org.errors import AdminError
        from portal.org.invites import INVITE_VALID_FOR, create_invite, invite_path
        from portal.runtime.appconfig import external_url
        from portal.runtime.outbox import relay_quietly

        with db.connection_context():
            try:
                invite = create_invite(email, None, is_admin=admin)
            except AdminError as exc:
                raise click.ClickException(exc.message) from exc
            relay_quietly()
            link = external_url(invite_path(invite))
        days = INVITE_VALID_FOR.days
        click.echo(f"invited {invite.email} (the link works once, for {days} days):")
        click.echo(link)

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
        from portal.database import upgrade

        applied = upgrade()
        click.echo(
            f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "")
        )

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
    def worker(burst):
        """Run an RQ worker with its scheduler and the periodic ticker."""
        from portal.runtime.worker import run_worker

        run_worker(current_app._get_current_object(), burst=burst)  # type: ignore[attr-defined]

    from flask.cli import AppGroup

    keys = AppGroup("keys", help="Encryption keys for stored secrets.")

    @keys.command("rotate")
    def keys_rotate():
        """Re-encrypt every stored secret under the newest KAIROS_ENCRYPTION_KEYS key."""
        from portal.crypto import SecretError, rotate

        with db.connection_context():
            try:
                count = rotate()
            except SecretError as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(f"re-encrypted {count} secret(s) under the newest key")

    @app.cli.command("backup")
    @click.argument("path", type=click.Path(dir_okay=False))
    @click.option(
        "--without-keys",
        is_flag=True,
        help="Leave the generated keys out (then back them up separately).",
    )
    def backup(path, without_keys):
        """Write the database and the keys it needs into one archive (README: Backup)."""
        from portal.runtime.backup import BackupError, create_backup

        try:
            report = create_backup(path, include_keys=not without_keys)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        _print_report(report)

    @app.cli.command("restore")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @click.option("--force", is_flag=True, help="Replace a database that already holds data.")
    def restore(path, force):
        """Restore an archive made by `backup` into this instance (stop the portal first)."""
        from portal.runtime.backup import BackupError
        from portal.runtime.restore import restore_backup

        try:
            report = restore_backup(path, force=force)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        _print_report(report)

    app.cli.add_command(users)
    app.cli.add_command(tokens)
    app.cli.add_command(dbg)
    app.cli.add_command(keys)

    messages = click.Group("messages", help="Translations (portal/runtime/catalogs.py).")

    @messages.command("update")
    def messages_update():
        """Re-extract every domain, merge into each language's .po, compile the .mo."""
        from portal.runtime import catalogs

        catalogs.update()
        click.echo("catalogues updated: " + ", ".join(catalogs.DOMAINS))

    @messages.command("check")
    def messages_check():
        """Exit 1 when a catalogue misses, leaves untranslated or keeps stale messages."""
        from portal.runtime import catalogs

        bad = False
        for domain in catalogs.DOMAINS:
            problems = catalogs.check(domain)
            if problems:
                bad = True
                click.echo(f"{domain}: {problems}")
        if bad:
            raise SystemExit(1)
        click.echo("catalogues complete")

    @messages.command("fill")
    @click.argument("domain")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    def messages_fill(domain, path):
        """Set translations from a JSON file {"de": {"msgid": "msgstr", …}, "fr": …}."""
        import json

        from portal.runtime import catalogs

        with open(path, encoding="utf-8") as fh:
            by_lang = json.load(fh)
        for lang, strings in by_lang.items():
            n = catalogs.fill(domain, lang, strings)
            click.echo(f"{domain} {lang}: {n} entries set")

    app.cli.add_command(messages)


def _print_report(report) -> None:
    for line in report.lines:
        click.echo(line)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
