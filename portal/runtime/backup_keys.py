"""The keys a backup carries: the generated ones in the instance folder, and which
keys a restored portal will run with (a key from the environment always wins).
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app

# Archive member → the file Config generates in the instance folder (portal.config).
KEY_FILES = {"keys/secret_key": "secret_key", "keys/encryption_key": "encryption_key"}


def instance_file(name: str) -> Path:
    return Path(current_app.instance_path) / name


def generated_keys() -> dict[str, str]:
    """The instance-folder key files that hold the keys in use: archive member → content.

    A key is "generated" when its file matches the running config; a key from
    the environment overrides the file (``Config``), so that file is left out.
    """
    found: dict[str, str] = {}
    secret = instance_file("secret_key")
    if secret.is_file() and secret.read_text().strip() == current_app.config["SECRET_KEY"]:
        found["keys/secret_key"] = secret.read_text().strip()
    enc = instance_file("encryption_key")
    if enc.is_file():
        keys = [k.strip() for k in enc.read_text().split(",") if k.strip()]
        if keys == list(current_app.config["ENCRYPTION_KEYS"]):
            found["keys/encryption_key"] = ",".join(keys)
    return found


def keys_after_restore(archived: dict[str, str]) -> tuple[str, list[str], dict[str, str]]:
    """The keys the restored portal will run with, and the key files to install.

    A key from the environment wins at start-up (``Config``), so it is the one
    checked and the archive's copy is not installed; otherwise the archive's
    generated key replaces this instance's.
    """
    generated = generated_keys()
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


def overridden(archived: dict[str, str], install: dict[str, str]) -> str:
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
