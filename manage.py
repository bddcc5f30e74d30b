#!/usr/bin/env python3
"""Kairos in two commands: ``python3 manage.py run`` and ``python3 manage.py test``.

Standard library only, so it works on a fresh machine with nothing but Python:
it creates ``.venv`` from requirements.txt when missing (or when
requirements.txt changed), then re-runs itself inside that environment.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".requirements.sha256"
# requirements.txt includes the runtime list; a change to either reinstalls.
REQUIREMENTS = ("requirements.txt", "requirements-runtime.txt")


def ensure_venv() -> None:
    """Create or refresh the virtual environment from requirements.txt."""
    wanted = hashlib.sha256(
        b"".join((ROOT / name).read_bytes() for name in REQUIREMENTS)
    ).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not PY.exists():
        print("kairos: creating .venv …", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    print("kairos: installing requirements.txt …", flush=True)
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    subprocess.check_call(
        [str(PY), "-m", "pip", "install", "-q", "-r", str(ROOT / "requirements.txt")]
    )
    STAMP.write_text(wanted)


def run(argv: list[str]) -> int:
    """Migrate, then run the web server and a worker (see portal/runtime/serve.py)."""
    return subprocess.call([str(PY), "-m", "portal.runtime.serve", *argv], cwd=ROOT)


def test(argv: list[str]) -> int:
    """Run the whole test suite (pass pytest options through)."""
    return subprocess.call([str(PY), "-m", "pytest", *argv], cwd=ROOT)


COMMANDS = {"run": run, "test": test}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__.strip())
        print("\nusage: python3 manage.py {run|test} [options…]")
        return 2
    ensure_venv()
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
