"""``manage.py import_csv --business BIZ FILE [--dry-run]``."""

from __future__ import annotations

import io
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from agents.models import Enrollment
from ingestion.models import ImportJob
from ingestion.workspaces import CreatedWorkspace

from .conftest import csv_events, make_csv, row

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_bytes(make_csv([row(), row("bob@example.com", code="BEN"), row("cy@example.com", amount="$5")]))
    return path


def _call(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_csv", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.smoke
def test_the_command_imports_a_file_and_reports_counts_and_bad_rows(
        tenant: CreatedWorkspace, codes: dict[str, Enrollment], sample: Path) -> None:
    """The command appends the good rows, prints the summary and each bad row's line, column, reason."""
    out, err = _call("--business", tenant.workspace.id, str(sample))
    assert len(csv_events(tenant.workspace.id)) == 4
    assert "appended 4 events" in out
    assert "line 4 [Amount Paid]: '$5' is not a plain number" in out
    assert "3/3" in err  # the progress bar reached every row
    job = ImportJob.objects.get()
    assert (job.status, job.created_by, job.filename) == ("done", "cli:import_csv", "customers.csv")


def test_the_command_dry_run_prints_the_plan_and_appends_nothing(
        tenant: CreatedWorkspace, codes: dict[str, Enrollment], sample: Path, tmp_path: Path) -> None:
    """--dry-run prints what each row would append and writes the full plan with --plan-out."""
    plan = tmp_path / "plan.jsonl"
    out, _ = _call("--business", tenant.workspace.id, str(sample), "--dry-run", "--plan-out", str(plan))
    assert csv_events(tenant.workspace.id) == []
    assert "would append 4 events" in out
    assert "line 2: customer.created code ANNA → append; payment.succeeded 4900 USD (minor units) → append" in out
    assert [json.loads(line)["line"] for line in plan.read_text().splitlines()] == [2, 3]


def test_the_command_json_output_is_one_object(tenant: CreatedWorkspace, codes: dict[str, Enrollment],
                                               sample: Path) -> None:
    """--json prints one JSON object with the counts and errors."""
    out, _ = _call("--business", tenant.workspace.id, str(sample), "--json")
    result = json.loads(out)
    assert result["events"]["appended"] == 4
    assert result["rows"] == {"total": 3, "done": 3, "new": 2, "duplicate": 0, "invalid": 1}
    assert result["errors"][0]["line"] == 4


def test_the_command_refuses_an_unknown_business_and_a_file_that_is_not_csv(
        tenant: CreatedWorkspace, tmp_path: Path, sample: Path) -> None:
    """An unknown businessId, a missing file and a binary file are command errors."""
    with pytest.raises(CommandError, match="no workspace"):
        _call("--business", "biz_nope", str(sample))
    with pytest.raises(CommandError, match="no such file"):
        _call("--business", tenant.workspace.id, str(tmp_path / "missing.csv"))
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\x00\x00")
    with pytest.raises(CommandError, match="not a CSV file"):
        _call("--business", tenant.workspace.id, str(binary))
    assert ImportJob.objects.get().status == "failed"


def _readme_commands() -> list[list[str]]:
    """The ``manage.py import_csv`` lines of the README's CSV section, as argument lists."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("<!-- csv:start -->"):readme.index("<!-- csv:end -->")]
    commands = []
    for line in section.splitlines():
        if "manage.py import_csv" in line:
            words = shlex.split(line.split("#", 1)[0])
            commands.append(words[words.index("import_csv") + 1:])
    return commands


def test_the_readme_commands_import_the_shipped_example_into_the_demo_workspace(
        settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project: Callable[[], Any]) -> None:
    """After the demo seeding, the README's dry run then real run import examples/customers.csv cleanly."""
    from commissions.models import LedgerEntry
    from refairn.demo import seed_demo

    settings.DATA_DIR = tmp_path
    info = seed_demo()
    project()
    monkeypatch.chdir(ROOT)
    dry, real = _readme_commands()
    assert dry[-1] == "--dry-run"
    out, _ = _call(*dry)
    assert "0 invalid" in out
    assert "would append 15 events" in out
    assert csv_events(info.business_id) == []
    out, _ = _call(*real)
    assert "8 rows read: 8 new, 0 already in, 0 invalid; appended 15 events" in out
    assert len(csv_events(info.business_id)) == 15
    project()
    referred = {"kofi@example.com", "maya@example.com", "tomas@example.com", "haruto@example.jp"}
    entries = LedgerEntry.objects.filter(workspace_id=info.business_id, payment_ref__startswith="nk:")
    assert {entry.payment_ref.split("|")[0].removeprefix("nk:") for entry in entries} == referred
    out, _ = _call(*real)
    assert "appended 0 events, 15 already in the store" in out


def test_business_demo_without_a_seeded_demo_is_a_clear_error(settings: Any, tmp_path: Path) -> None:
    """--business demo before the demo exists says how to create it."""
    settings.DATA_DIR = tmp_path
    with pytest.raises(CommandError, match="dev.py run"):
        _call("--business", "demo", str(ROOT / "examples" / "customers.csv"))
