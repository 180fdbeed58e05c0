#!/usr/bin/env python3
"""Set up and run Refairn with nothing but Python installed.

    python3 dev.py run     install into .venv, migrate, seed the demo workspace, serve 127.0.0.1:8000
    python3 dev.py test    install into .venv (with test tools) and run the whole test suite

Extra arguments after ``test`` go to pytest (``python3 dev.py test -m smoke``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


def sh(*args: str | Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)  # noqa: S603
    if result.returncode:
        sys.exit(result.returncode)


def install(extras: str) -> None:
    """Create .venv and install the project, skipping pip when nothing changed since last time."""
    if not PYTHON.exists():
        print("creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"installing Refairn{f'[{extras}]' if extras else ''} into .venv …", flush=True)
    sh(PYTHON, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--upgrade", "pip")
    target = f".[{extras}]" if extras else "."
    sh(PYTHON, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", target)
    stamp.write_text(digest)


def run() -> None:
    install("")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "refairn.settings.base"}
    sh(PYTHON, "manage.py", "migrate", "--no-input", "-v", "0", env=env)
    sh(PYTHON, "manage.py", "demo", env=env)
    address = os.environ.get("REFAIRN_ADDRESS", "127.0.0.1:8000")
    os.execve(str(PYTHON), [str(PYTHON), "manage.py", "runserver", address, "--noreload"], env)


def test(args: list[str]) -> None:
    install("dev")
    os.execve(str(PYTHON), [str(PYTHON), "-m", "pytest", *args], {**os.environ})


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "run":
        run()
    elif command == "test":
        test(sys.argv[2:])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
