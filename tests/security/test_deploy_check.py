"""Security gate 11 (issue #9): Django's deployment checklist passes with the production settings."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

from tests.testapp.support import ROOT, subprocess_env


def _manage(args: list[str], tmp_path: Path, **env: str | None) -> subprocess.CompletedProcess[str]:
    environment = subprocess_env(DJANGO_SETTINGS_MODULE=None, DATABASE_URL=None, REFAIRN_DATA_DIR=str(tmp_path),
                                 DEBUG=None, **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=120)


def test_check_deploy_passes_with_production_settings(tmp_path: Path) -> None:
    """``manage.py check --deploy --fail-level WARNING --settings=refairn.settings.production`` with
    a long random SECRET_KEY reports no issue at all (DEBUG is off in production)."""
    result = _manage(["check", "--deploy", "--fail-level", "WARNING", "--settings=refairn.settings.production"],
                     tmp_path, SECRET_KEY=secrets.token_urlsafe(64))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path: Path) -> None:
    """Without SECRET_KEY the production settings stop with a clear error instead of inventing one."""
    result = _manage(["check", "--settings=refairn.settings.production"], tmp_path, SECRET_KEY=None)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
