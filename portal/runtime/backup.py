"""Backup and restore: the database and the keys it cannot be read without, kept together.

Stored calendar passwords and OAuth tokens are encrypted with
``KAIROS_ENCRYPTION_KEYS``; manage, invite, password-reset and feed links are
HMACs of ``SECRET_KEY`` (``portal.tokens``). A database restored without the
keys that were in use has secrets nobody can decrypt and links that no longer
open. So ``flask --app wsgi backup PATH`` writes one archive (``.tar.gz``):

``manifest.json``
    format and version, when, the database kind, the applied migrations, and
    for each key whether it is in the archive or must come from the environment;
``kairos.db`` (SQLite)
    a consistent copy made with SQLite's online backup API, so a running
    portal can be backed up without stopping it;
``kairos.dump`` (PostgreSQL)
    ``pg_dump --format=custom`` of the database (``pg_dump`` must be on PATH);
``keys/secret_key``, ``keys/encryption_key``
    the keys Kairos generated in its instance folder, when those are the ones in
    use. Keys given in the environment are never written: they are named in a
    warning, to be backed up separately (``--without-keys`` leaves out the
    generated ones too, for keeping them apart).

``flask --app wsgi restore PATH`` refuses a database that holds data unless
``--force`` (the old file is kept beside it), checks that the keys it will run
with decrypt a stored secret and rebuild a stored manage link before anything
is replaced (PostgreSQL: right after ``pg_restore``), installs the archive's
generated keys into the instance folder, and applies newer migrations.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import current_app
from peewee import SQL, Database, SqliteDatabase
from playhouse.migrations import Runner

from portal import crypto
from portal.database import MIGRATIONS_DIR, is_sqlite, upgrade
from portal.models import ALL_MODELS, Booking, User, db, hash_token
from portal.tokens import derived_token

FORMAT = "kairos-backup"
VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "kairos.db"
PG_MEMBER = "kairos.dump"
# Archive member → the file Config generates in the instance folder (portal.config).
KEY_FILES = {"keys/secret_key": "secret_key", "keys/encryption_key": "encryption_key"}
KNOWN_MEMBERS = {MANIFEST, SQLITE_MEMBER, PG_MEMBER, *KEY_FILES}


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says what to do."""


@dataclass
class Report:
    """What a backup or restore did (``lines``) and what the operator must see (``warnings``)."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- keys


def _instance_file(name: str) -> Path:
    return Path(current_app.instance_path) / name


def _generated_keys() -> dict[str, str]:
    """The instance-folder key files that hold the keys in use: archive member → content.

    A key is "generated" when its file matches the running config; a key from
    the environment overrides the file (``Config``), so that file is left out.
    """
    found: dict[str, str] = {}
    secret = _instance_file("secret_key")
    if secret.is_file() and secret.read_text().strip() == current_app.config["SECRET_KEY"]:
        found["keys/secret_key"] = secret.read_text().strip()
    enc = _instance_file("encryption_key")
    if enc.is_file():
        keys = [k.strip() for k in enc.read_text().split(",") if k.strip()]
        if keys == list(current_app.config["ENCRYPTION_KEYS"]):
            found["keys/encryption_key"] = ",".join(keys)
    return found


def _first(query, database: Database) -> tuple | None:
    """The first row of a model query, run on ``database`` rather than the app's."""
    rows = list(query.limit(1).tuples().bind(database))
    return rows[0] if rows else None


def check_keys(database: Database, secret_key: str, encryption_keys: list[str]) -> list[str]:
    """Prove the keys fit ``database``: decrypt one stored secret of each kind and
    rebuild one stored link hash. Returns what was checked; raises :class:`BackupError`.
    """
    checked: list[str] = []
    for model, name in crypto.SECRET_FIELDS:
        column = getattr(model, name)
        row = _first(model.select(model._meta.primary_key, column).where(column != ""), database)
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
        row = _first(query, database)
        if row is None:
            continue
        if hash_token(derived_token(purpose, row[0], row[1], secret_key=secret_key)) != row[2]:
            raise BackupError(
                f"SECRET_KEY does not match the backup: its {what} would stop working. "
                "Restore with the SECRET_KEY that was in use when the backup was made"
            )
        checked.append(f"{what} open")
    return checked


def _keys_after_restore(archived: dict[str, str]) -> tuple[str, list[str], dict[str, str]]:
    """The keys the restored portal will run with, and the key files to install.

    A key from the environment wins at start-up (``Config``), so it is the one
    checked and the archive's copy is not installed; otherwise the archive's
    generated key replaces this instance's.
    """
    generated = _generated_keys()
    install: dict[str, str] = {}
    secret = current_app.config["SECRET_KEY"]
    if "keys/secret_key" in archived and "keys/secret_key" in generated:
        secret = archived["keys/secret_key"]
        install["keys/secret_key"] = secret
    enc = list(current_app.config["ENCRYPTION_KEYS"])
    if "keys/encryption_key" in archived and "keys/encryption_key" in generated:
        enc = [k.strip() for k in archived["keys/encryption_key"].split(",") if k.strip()]
        install["keys/encryption_key"] = ",".join(enc)
    return secret, enc, install


def _overridden(archived: dict[str, str], install: dict[str, str]) -> str:
    """Why an archived key was not used: the environment sets that key here."""
    names = {"keys/secret_key": "SECRET_KEY", "keys/encryption_key": "KAIROS_ENCRYPTION_KEYS"}
    unused = [names[n] for n in archived if n not in install]
    if not unused:
        return ""
    return (
        f". The archive carries the generated {' and '.join(unused)}, but this "
        "installation sets them in the environment, which wins: unset them to use the "
        "archive's, or set them to the archive's values (keys/ in the archive)"
    )


# --------------------------------------------------------------------------- archive


def _kind() -> str:
    return "sqlite" if is_sqlite() else "postgresql"


def _sqlite_path() -> Path:
    path = db.obj.database
    if path in ("", ":memory:"):
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(path)


def _pg_conninfo() -> tuple[str, dict[str, str]]:
    """libpq's connection string for the app's PostgreSQL (every URL parameter, such as
    ``sslmode``, included) and an environment carrying the password, so it never shows
    in ``ps``."""
    params = {"dbname": db.obj.database, **db.obj.connect_params}
    password = params.pop("password", None)
    parts = []
    for key, value in params.items():
        if value is None:
            continue
        quoted = str(value).replace("\\", "\\\\").replace("'", "\\'")
        parts.append(f"{key}='{quoted}'")
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return " ".join(parts), env


def _pg_tool(name: str, args: list[str]) -> None:
    tool = shutil.which(name)
    if tool is None:
        raise BackupError(
            f"{name} is not on PATH. Install the PostgreSQL client tools (Debian: "
            f"postgresql-client, the server's major version or newer), or run {name} "
            "yourself — see README, 'Backup and restore'"
        )
    conninfo, env = _pg_conninfo()
    done = subprocess.run(
        [tool, f"--dbname={conninfo}", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BackupError(f"{name} failed: {done.stderr.strip() or done.returncode}")


def _applied_migrations(database: Database) -> list[str]:
    return sorted(Runner(database, MIGRATIONS_DIR).applied())


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def create_backup(path: str, include_keys: bool = True) -> Report:
    """Write the archive to ``path`` (replaced atomically; readable by its owner only)."""
    report = Report()
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    generated = _generated_keys() if include_keys else {}
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".kairos-backup-") as work:
        if is_sqlite():
            member, dump = SQLITE_MEMBER, Path(work) / SQLITE_MEMBER
            source = sqlite3.connect(_sqlite_path(), timeout=30)
            copy = sqlite3.connect(dump)
            try:
                source.backup(copy)  # a consistent snapshot, writers carry on meanwhile
            finally:
                copy.close()
                source.close()
            snapshot = SqliteDatabase(str(dump))
            migrations = _applied_migrations(snapshot)
            snapshot.close()
        else:
            member, dump = PG_MEMBER, Path(work) / PG_MEMBER
            _pg_tool(
                "pg_dump", ["--format=custom", "--no-owner", "--no-privileges", "-f", str(dump)]
            )
            with db.obj.connection_context():
                migrations = _applied_migrations(db.obj)
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": _kind(),
            "migrations": migrations,
            "keys": {
                "secret_key": "included" if "keys/secret_key" in generated else "environment",
                "encryption_keys": (
                    "included" if "keys/encryption_key" in generated else "environment"
                ),
            },
        }
        partial = Path(work) / "archive.tar.gz"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
            tar.add(dump, arcname=member)
            for name, content in generated.items():
                _add_bytes(tar, name, content.encode())
        os.replace(partial, target)
    report.lines.append(f"backed up the {_kind()} database to {target}")
    for key, env in (("secret_key", "SECRET_KEY"), ("encryption_keys", "KAIROS_ENCRYPTION_KEYS")):
        if manifest["keys"][key] == "included":
            report.lines.append(f"{env}: the generated key is in the archive")
        else:
            report.warnings.append(
                f"{env} is not in the archive{' (--without-keys)' if not include_keys else ''}:"
                " back it up separately; without it a restore cannot "
                + ("decrypt calendar passwords" if key == "encryption_keys" else "open old links")
            )
    if generated:
        report.warnings.append(
            "the archive holds the keys that decrypt its calendar passwords: "
            "store it as carefully as the keys themselves"
        )
    return report


def _read_archive(path: str) -> tuple[dict, tarfile.TarFile]:
    try:
        tar = tarfile.open(path, mode="r:gz")  # noqa: SIM115 (the caller closes it)
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{path} is not a Kairos backup archive: {exc}") from exc
    names = tar.getnames()
    unknown = [n for n in names if n not in KNOWN_MEMBERS]
    if unknown or MANIFEST not in names:
        tar.close()
        raise BackupError(f"{path} is not a Kairos backup archive (unexpected: {unknown})")
    manifest = json.loads(_member(tar, MANIFEST))
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        tar.close()
        raise BackupError(f"{path}: unsupported backup format {manifest.get('version')!r}")
    return manifest, tar


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    info = tar.getmember(name)
    handle = tar.extractfile(info) if info.isfile() else None
    if handle is None:
        raise BackupError(f"the archive's {name} is not a regular file")
    return handle.read()


def _has_data(database: Database) -> bool:
    """Whether any Kairos table holds a row (a freshly migrated database holds none)."""
    tables = set(database.get_tables())
    return any(
        model._meta.table_name in tables and _first(model.select(SQL("1")), database)
        for model in ALL_MODELS
    )


def _set_aside(path: Path, stamp: str | None) -> Path | None:
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
    manifest, tar = _read_archive(path)
    with tar:
        if manifest["database"] != _kind():
            raise BackupError(
                f"the archive holds a {manifest['database']} database but DATABASE_URL "
                f"is {_kind()}: restore into the same kind (or move the data with that "
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
            occupied = _has_data(db.obj)
        if occupied and not force:
            raise BackupError(
                "the database already holds data; restore replaces all of it. "
                "Run again with --force to go ahead (SQLite keeps the old file beside it)"
            )
        archived = {
            name: _member(tar, name).decode().strip()
            for name in KEY_FILES
            if name in tar.getnames()
        }
        secret, enc, install = _keys_after_restore(archived)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") if occupied else None
        try:
            if manifest["database"] == "sqlite":
                report.lines += _restore_sqlite(tar, secret, enc, stamp)
            else:
                report.lines += _restore_postgresql(tar, secret, enc)
        except BackupError as exc:
            raise BackupError(str(exc) + _overridden(archived, install)) from exc.__cause__
    for name, content in install.items():
        key_file = _instance_file(KEY_FILES[name])
        if key_file.is_file() and key_file.read_text().strip() != content:
            _set_aside(key_file, stamp)
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
    target = _sqlite_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".kairos-restore-", suffix=".db")
    staged = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_member(tar, SQLITE_MEMBER))
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
        kept = _set_aside(target, stamp)
        for suffix in ("-wal", "-shm"):
            _set_aside(target.with_name(target.name + suffix), stamp)
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
        dump.write_bytes(_member(tar, PG_MEMBER))
        db.obj.close_all()  # pg_restore --clean drops tables; no open transaction may hold them
        _pg_tool(
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
