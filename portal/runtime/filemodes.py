"""The instance folder and the SQLite database are readable by their owner only.

They hold the secret key, the encryption key, every host's calendar credentials
(encrypted) and the invitees' personal data, so nobody else on the machine may
read them — whatever the process umask says. Installs made before this was in
place are tightened on start-up.
"""

from __future__ import annotations

import contextlib
import os
import stat
from urllib.parse import unquote, urlparse

DIR_MODE = 0o700
FILE_MODE = 0o600


def _tighten(path: str, mode: int) -> None:
    """Drop group and other bits from a path this process owns (leave others' alone)."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        info = os.stat(path)
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(info.st_mode) & mode)


def private_dir(path: str | os.PathLike[str]) -> None:
    """Create ``path`` (and missing parents) as 0700, or tighten it if it exists."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        os.makedirs(path, mode=DIR_MODE, exist_ok=True)
    _tighten(path, DIR_MODE)


def sqlite_path(url: str) -> str | None:
    """The file behind a ``sqlite:///…`` URL, or None (in memory, or not SQLite)."""
    parsed = urlparse(url)
    if parsed.scheme != "sqlite":
        return None
    path = unquote(parsed.path)[1:]
    return None if path in ("", ":memory:") else os.path.abspath(path)


def private_sqlite(url: str) -> None:
    """Create the SQLite file as 0600 before SQLite does (it would follow the umask).

    SQLite gives the ``-wal`` and ``-shm`` files the main file's mode, so they
    follow; ones left from before are tightened here too.
    """
    path = sqlite_path(url)
    if path is None:
        return
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        private_dir(folder)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        _tighten(name, FILE_MODE)
