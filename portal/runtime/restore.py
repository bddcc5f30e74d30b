"""Restore: a backup archive (``portal.runtime.backup``) back into this instance.

``flask --app wsgi restore PATH`` refuses a database that holds data unless
``--force`` (the old file is kept beside it), checks that the keys it will run
with decrypt a stored secret and rebuild a stored manage link before anything
is replaced (PostgreSQL: right after ``pg_restore``), installs the archive's
generated keys into the instance folder, and applies newer migrations.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app
from peewee import SQL, Database, SqliteDatabase
from playhouse.migrations import Runner

from portal import crypto
from portal.database import MIGRATIONS_DIR, upgrade
from portal.models import ALL_MODELS, Booking, User, db, hash_token
from portal.runtime.backup import (
    FORMAT,
    KNOWN_MEMBERS,
    MANIFEST,
    PG_MEMBER,
    SQLITE_MEMBER,
    VERSION,
    BackupError,
    Report,
    database_kind,
    first_row,
    pg_tool,
    sqlite_path,
)
from portal.runtime.backup_keys import KEY_FILES, instance_file, keys_after_restore, overridden
from portal.tokens import derived_token


def check_keys(database: Database, secret_key: str, encryption_keys: list[str]) -> list[str]:
    """Prove the keys fit ``database``: decrypt one stored secret of each kind and
    rebuild one stored link hash. Returns what was checked; raises :class:`BackupError`.
    """
    checked: list[str] = []
    for model, name in crypto.SECRET_FIELDS:
        column = getattr(model, name)
        row = first_row(model.select(model._meta.primary_key, column).where(column != ""), database)
        if row is None:
            continue
        table = model._meta.table_name
        try:
            crypto.decrypt(f"{table}:{row[0]}", row[1], keys=encryption_keys)
        except crypto.SecretError as exc:
            raise BackupError(
                f"the encryption keys cannot decrypt the stored {table} secrets ({exc}): "
                "restore with the KAIROS_ENCRYPTION_KEYS that were in use when the backup "
                "was made (in the archive when they were generated, else from where you "
                "keep them)"
            ) from exc
        checked.append(f"{table} secrets decrypt")
    # Manage links are HMACs of SECRET_KEY (portal.booking.links.manage_token), feed links too
    # (portal.notify.feeds.feed_token); the database keeps their hashes.
    samples = [
        (
            "manage links",
            Booking.select(Booking.uid, Booking.manage_salt, Booking.manage_token_hash).where(
                Booking.manage_salt != ""
            ),
            "manage",
        ),
        (
            "calendar feed links",
            User.select(User.id, User.feed_salt, User.feed_token_hash).where(User.feed_salt != ""),
            "feed",
        ),
    ]
    for what, query, purpose in samples:
        row = first_row(query, database)
        if row is None:
            continue
        if hash_token(derived_token(purpose, row[0], row[1], secret_key=secret_key)) != row[2]:
            raise BackupError(
                f"SECRET_KEY does not match the backup: its {what} would stop working. "
                "Restore with the SECRET_KEY that was in use when the backup was made"
            )
        checked.append(f"{what} open")
    return checked


def read_archive(path: str) -> tuple[dict, tarfile.TarFile]:
    try:
        tar = tarfile.open(path, mode="r:gz")  # noqa: SIM115 (the caller closes it)
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{path} is not a Kairos backup archive: {exc}") from exc
    names = tar.getnames()
    unknown = [n for n in names if n not in KNOWN_MEMBERS]
    if unknown or MANIFEST not in names:
        tar.close()
        raise BackupError(f"{path} is not a Kairos backup archive (unexpected: {unknown})")
    manifest = json.loads(member(tar, MANIFEST))
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        tar.close()
        raise BackupError(f"{path}: unsupported backup format {manifest.get('version')!r}")
    return manifest, tar


def member(tar: tarfile.TarFile, name: str) -> bytes:
    info = tar.getmember(name)
    handle = tar.extractfile(info) if info.isfile() else None
    if handle is None:
        raise BackupError(f"the archive's {name} is not a regular file")
    return handle.read()


def has_data(database: Database) -> bool:
    """Whether any Kairos table holds a row (a freshly migrated database holds none)."""
    tables = set(database.get_tables())
    return any(
        model._meta.table_name in tables and first_row(model.select(SQL("1")), database)
        for model in ALL_MODELS
    )


def set_aside(path: Path, stamp: str | None) -> Path | None:
    """Move ``path`` out of the way, kept as ``<name>.before-restore-<stamp>``; with no
    stamp (nothing worth keeping: an empty database and its unused keys) delete it."""
    if not path.exists():
        return None
    if stamp is None:
        path.unlink()
        return None
    aside = path.with_name(f"{path.name}.before-restore-{stamp}")
    os.replace(path, aside)
    return aside


def restore_backup(path: str, force: bool = False) -> Report:
    """Restore the archive at ``path`` into this instance's database (see the module doc)."""
    report = Report()
    manifest, tar = read_archive(path)
    with tar:
        if manifest["database"] != database_kind():
            raise BackupError(
                f"the archive holds a {manifest['database']} database but DATABASE_URL "
                f"is {database_kind()}: restore into the same kind (or move the data with that "
                "database's own tools)"
            )
        known = {m.name for m in Runner(db.obj, MIGRATIONS_DIR).migrations()}
        newer = sorted(set(manifest["migrations"]) - known)
        if newer:
            raise BackupError(
                f"the backup was made by a newer Kairos (migrations {', '.join(newer)}): "
                "upgrade this installation first"
            )
        with db.obj.connection_context():
            occupied = has_data(db.obj)
        if occupied and not force:
            raise BackupError(
                "the database already holds data; restore replaces all of it. "
                "Run again with --force to go ahead (SQLite keeps the old file beside it)"
            )
        archived = {
            name: member(tar, name).decode().strip() for name in KEY_FILES if name in tar.getnames()
        }
        secret, enc, install = keys_after_restore(archived)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") if occupied else None
        try:
            if manifest["database"] == "sqlite":
                report.lines += _restore_sqlite(tar, secret, enc, stamp)
            else:
                report.lines += _restore_postgresql(tar, secret, enc)
        except BackupError as exc:
            raise BackupError(str(exc) + overridden(archived, install)) from exc.__cause__
    for name, content in install.items():
        key_file = instance_file(KEY_FILES[name])
        if key_file.is_file() and key_file.read_text().strip() != content:
            set_aside(key_file, stamp)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
        report.lines.append(f"installed the archive's {KEY_FILES[name]} in {key_file.parent}")
    # This process runs on with the restored keys too, as the restarted portal will.
    if "keys/secret_key" in install:
        current_app.config["SECRET_KEY"] = install["keys/secret_key"]
    if "keys/encryption_key" in install:
        current_app.config["ENCRYPTION_KEYS"] = install["keys/encryption_key"].split(",")
    for key, env in (("secret_key", "SECRET_KEY"), ("encryption_keys", "KAIROS_ENCRYPTION_KEYS")):
        if manifest["keys"][key] != "included":
            report.warnings.append(f"{env} was not in the archive: the portal keeps using its own")
    applied = upgrade()
    if applied:
        report.lines.append(f"applied {len(applied)} newer migration(s): {', '.join(applied)}")
    report.warnings.append(
        "restart the web server and workers now, so they run with the restored database and keys"
    )
    return report


def _restore_sqlite(
    tar: tarfile.TarFile, secret: str, enc: list[str], stamp: str | None
) -> list[str]:
    target = sqlite_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".kairos-restore-", suffix=".db")
    staged = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(member(tar, SQLITE_MEMBER))
        candidate = SqliteDatabase(str(staged))
        try:
            if candidate.execute_sql("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError("the archive's database fails SQLite's integrity check")
            checked = check_keys(candidate, secret, enc)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"the archive's database cannot be read: {exc}") from exc
        finally:
            candidate.close()
        # Nothing of the old database may stay open or beside the new file: SQLite
        # would replay an old -wal journal into the restored database.
        db.obj.close_all()
        kept = set_aside(target, stamp)
        for suffix in ("-wal", "-shm"):
            set_aside(target.with_name(target.name + suffix), stamp)
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    lines = [f"restored the database into {target}"]
    if kept is not None:
        lines.append(f"the previous database file is kept as {kept}")
    return lines + [", ".join(checked) if checked else "no stored secrets or links to check"]


def _restore_postgresql(tar: tarfile.TarFile, secret: str, enc: list[str]) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="kairos-restore-") as work:
        dump = Path(work) / PG_MEMBER
        dump.write_bytes(member(tar, PG_MEMBER))
        db.obj.close_all()  # pg_restore --clean drops tables; no open transaction may hold them
        pg_tool(
            "pg_restore",
            [
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                str(dump),
            ],
        )
    with db.obj.connection_context():
        # pg_restore cannot be inspected beforehand; a mismatch is reported at once.
        checked = check_keys(db.obj, secret, enc)
    lines = [f"restored the database {db.obj.database} with pg_restore"]
    return lines + [", ".join(checked) if checked else "no stored secrets or links to check"]
