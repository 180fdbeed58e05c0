"""``manage.py import_csv --business BIZ FILE [--dry-run]``."""

from __future__ import annotations

import io
import json
from pathlib import Path

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


def test_the_shipped_example_imports_cleanly(tenant: CreatedWorkspace) -> None:
    """examples/customers.csv imports without a row error once its agent codes exist."""
    from tests.factories import AgentFactory, ProgramFactory, approved_enrollment

    program = ProgramFactory(workspace=tenant.workspace, product=tenant.product)
    for code in ("DEMOANNA", "DEMOBEN"):
        approved_enrollment(program=program, code=code, agent=AgentFactory(workspace=tenant.workspace))
    out, _ = _call("--business", tenant.workspace.id, str(ROOT / "examples" / "customers.csv"))
    assert "0 invalid" in out
    assert ImportJob.objects.get().rows_invalid == 0
