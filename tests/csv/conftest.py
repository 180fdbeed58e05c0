"""Fixtures for the CSV import: agent codes, CSV builders and a one-call importer."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from agents.models import Enrollment
from agents.services import enrollment_remove
from ingestion.csv_import import ImportResult, import_csv
from ingestion.models import Event
from ingestion.workspaces import CreatedWorkspace
from tests.factories import AgentFactory, ProgramFactory, approved_enrollment

HEADER = ("Customer Name", "Customer Email", "Plan", "Amount Paid", "Subscription Status", "Agent Code",
          "Payment Date", "Renewal Date", "Currency")


def row(email: str = "ada@example.com", *, name: str = "Ada Lovelace", plan: str = "Pro", amount: str = "49.00",
        status: str = "active", code: str = "ANNA", date: str = "2024-05-03", renewal: str = "",
        currency: str = "USD") -> tuple[str, ...]:
    """One row in HEADER's order."""
    return (name, email, plan, amount, status, code, date, renewal, currency)


def make_csv(rows: Sequence[Sequence[str]], *, header: Sequence[str] = HEADER, bom: bool = False,
             newline: str = "\r\n") -> bytes:
    """Write rows the way a spreadsheet exports them (quoting as needed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8")
    return b"\xef\xbb\xbf" + data if bom else data


def csv_events(workspace_id: str) -> list[Event]:
    return list(Event.objects.filter(workspace_id=workspace_id, source="csv").order_by("position"))


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Any) -> Any:
    """Uploaded files and dry-run plans go to a temporary folder, not var/."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def codes(tenant: CreatedWorkspace) -> dict[str, Enrollment]:
    """Approved codes ANNA and BEN, and GONE whose enrollment was removed."""
    program = ProgramFactory(workspace=tenant.workspace, product=tenant.product)
    anna = approved_enrollment(program=program, code="ANNA",
                               agent=AgentFactory(workspace=tenant.workspace, email="anna@partners.test"))
    ben = approved_enrollment(program=program, code="BEN",
                              agent=AgentFactory(workspace=tenant.workspace, email="ben@partners.test"))
    gone = approved_enrollment(program=program, code="GONE",
                               agent=AgentFactory(workspace=tenant.workspace, email="gone@partners.test"))
    gone = enrollment_remove(enrollment=gone, reason="left")
    return {"ANNA": anna, "BEN": ben, "GONE": gone}


@pytest.fixture
def run(tenant: CreatedWorkspace, codes: dict[str, Enrollment]) -> Callable[..., ImportResult]:
    """Import bytes into the tenant's workspace: ``run(data, dry_run=False, plan=None, progress=None)``."""

    def _run(data: bytes, **kwargs: Any) -> ImportResult:
        return import_csv(workspace=tenant.workspace, stream=io.BytesIO(data), filename="test.csv", **kwargs)

    return _run
