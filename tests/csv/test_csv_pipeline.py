"""A CSV import through attribution and the ledger: what the imported events earn."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from attribution.models import PaymentAttribution
from commissions.models import LedgerEntry
from ingestion.csv_import import ImportResult
from ingestion.workspaces import CreatedWorkspace

from .conftest import make_csv, row

pytestmark = pytest.mark.django_db


def test_an_imported_referred_customer_earns_referral_then_recurring(
        run: Callable[..., ImportResult], tenant: CreatedWorkspace, project: Callable[[], dict[str, int]]) -> None:
    """Rows with agent code ANNA: the first payment earns the referral commission, later ones recurring."""
    run(make_csv([row(date="2024-05-03"), row(date="2024-06-03"), row(date="2024-07-03")]))
    project()
    kinds = sorted(LedgerEntry.objects.filter(workspace=tenant.workspace).values_list("kind", "amount"))
    assert kinds == [("recurring", 490), ("recurring", 490), ("referral", 980)]


def test_a_status_repeated_as_cancelled_on_past_rows_does_not_cut_their_recurring_commissions(
        run: Callable[..., ImportResult], tenant: CreatedWorkspace, project: Callable[[], dict[str, int]]) -> None:
    """An export repeating today's 'cancelled' on every past payment still earns on each of those payments."""
    run(make_csv([row(date=d, status="cancelled") for d in ("2024-05-03", "2024-06-03", "2024-07-03")]))
    project()
    assert not PaymentAttribution.objects.filter(workspace=tenant.workspace, customer_cancelled=True).exists()
    assert LedgerEntry.objects.filter(workspace=tenant.workspace).count() == 3


def test_an_unreferred_row_earns_nothing(
        run: Callable[..., ImportResult], tenant: CreatedWorkspace, project: Callable[[], dict[str, int]]) -> None:
    """A blank agent code imports the customer and payment unattributed: no commission."""
    run(make_csv([row(code="")]))
    project()
    assert not LedgerEntry.objects.filter(workspace=tenant.workspace).exists()
