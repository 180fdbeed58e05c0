"""Attribution hands the ledger the decisions of the batch it just committed (``Reads.hand_off``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commissions import projector as ledger_projector
from commissions.models import LedgerEntry
from ingestion import projections
from tests.factories import ProgramFactory, approved_enrollment

from .support import append

pytestmark = pytest.mark.django_db

START = timezone.now() - timedelta(days=90)


@pytest.fixture
def history(tenant) -> str:
    """Signups with and without a code, payments before and after their signups, a refund."""
    ws, product = tenant.workspace.id, tenant.product.id
    approved_enrollment(program=ProgramFactory(workspace=tenant.workspace, product=tenant.product), code="JANE20")
    for n in range(12):
        email, at = f"buyer{n}@example.com", START + timedelta(days=n)
        if n % 3 == 0:  # paid first, signed up later: decided at the signup's position
            append(ws, "payment.succeeded", {"payment_ref": f"pi_{n}_0", "email": email, "amount": 4900,
                                             "currency": "USD"}, at=at)
        data = {"email": email, "name": f"Buyer {n}", "product_id": product}
        if n % 4:
            data["referral_code"] = "JANE20"
        append(ws, "customer.created", data, at=at)
        for month in range(1, 4):
            append(ws, "payment.succeeded", {"payment_ref": f"pi_{n}_{month}", "email": email, "amount": 4900,
                                             "currency": "USD"}, at=at + timedelta(days=30 * month))
    append(ws, "payment.refunded", {"payment_ref": "pi_1_1", "refund_ref": "re_1", "amount": 4900,
                                    "currency": "USD"}, at=START + timedelta(days=80))
    return ws


def ledger() -> list[tuple]:
    return list(LedgerEntry.objects.order_by("id").values_list(
        "id", "kind", "amount", "currency", "agent_id", "payment_ref", "created_position", "hold_until", "formula"))


def test_in_a_turn_the_ledger_reads_no_decision_back(history, monkeypatch, settings) -> None:
    settings.REFAIRN_PROJECTION_BATCH_SIZE = 7

    def unused(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the ledger read decisions back although attribution handed them over")

    monkeypatch.setattr(ledger_projector, "decisions_between", unused)
    assert projections.run_all() == {"attribution": 54, "ledger": 54}
    assert LedgerEntry.objects.filter(kind="reversal").count() == 1
    assert LedgerEntry.objects.filter(kind="referral").count() == 9


def test_the_ledger_from_handed_decisions_equals_the_ledger_read_back(history, settings) -> None:
    settings.REFAIRN_PROJECTION_BATCH_SIZE = 7
    projections.run_all()
    handed = ledger()
    projections.rebuild("ledger")  # the ledger alone: every decision is read from attribution's table
    assert ledger() == handed
    assert len(handed) == 31  # 9 referrals, 21 recurring, 1 reversal


def test_a_ledger_behind_its_dependency_reads_the_decisions_back(history, settings, monkeypatch) -> None:
    settings.REFAIRN_PROJECTION_BATCH_SIZE = 7
    projections.run_projection("attribution", max_batches=2)
    read: list[tuple[int, int]] = []
    original = ledger_projector.decisions_between

    def counted(low: int, high: int, **kwargs):  # noqa: ANN003, ANN202
        read.append((low, high))
        return original(low, high, **kwargs)

    monkeypatch.setattr(ledger_projector, "decisions_between", counted)
    projections.run_all()
    assert read  # the batches attribution applied in an earlier run were not handed over
    handed = ledger()
    projections.rebuild("ledger")
    assert ledger() == handed
