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

``flask --app wsgi restore PATH`` reads it back (``portal.runtime.restore``).
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

from peewee import Database, SqliteDatabase
from playhouse.migrations import Runner

from portal.database import MIGRATIONS_DIR, is_sqlite
from portal.models import db
from portal.runtime.backup_keys import KEY_FILES, generated_keys

FORMAT = "kairos-backup"
VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "kairos.db"
PG_MEMBER = "kairos.dump"
KNOWN_MEMBERS = {MANIFEST, SQLITE_MEMBER, PG_MEMBER, *KEY_FILES}


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says what to do."""


@dataclass
class Report:
    """What a backup or restore did (``lines``) and what the operator must see (``warnings``)."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def first_row(query, database: Database) -> tuple | None:
    """The first row of a model query, run on ``database`` rather than the app's."""
    rows = list(query.limit(1).tuples().bind(database))
    return rows[0] if rows else None


# --------------------------------------------------------------------------- the database


def database_kind() -> str:
    return "sqlite" if is_sqlite() else "postgresql"


def sqlite_path() -> Path:
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


def pg_tool(name: str, args: list[str]) -> None:
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


def applied_migrations(database: Database) -> list[str]:
    return sorted(Runner(database, MIGRATIONS_DIR).applied())


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def create_backup(path: str, include_keys: bool = True) -> Report:
    """Write the archive to ``path`` (replaced atomically; readable by its owner only)."""
    report = Report()
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    generated = generated_keys() if include_keys else {}
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".kairos-backup-") as work:
        if is_sqlite():
            member, dump = SQLITE_MEMBER, Path(work) / SQLITE_MEMBER
            source = sqlite3.connect(sqlite_path(), timeout=30)
            copy = sqlite3.connect(dump)
            try:
                source.backup(copy)  # a consistent snapshot, writers carry on meanwhile
            finally:
                copy.close()
                source.close()
            snapshot = SqliteDatabase(str(dump))
            migrations = applied_migrations(snapshot)
            snapshot.close()
        else:
            member, dump = PG_MEMBER, Path(work) / PG_MEMBER
            pg_tool(
                "pg_dump", ["--format=custom", "--no-owner", "--no-privileges", "-f", str(dump)]
            )
            with db.obj.connection_context():
                migrations = applied_migrations(db.obj)
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": database_kind(),
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
            add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
            tar.add(dump, arcname=member)
            for name, content in generated.items():
                add_bytes(tar, name, content.encode())
        os.replace(partial, target)
    report.lines.append(f"backed up the {database_kind()} database to {target}")
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
