"""The demo workspace's ledger (``refairn.demo.seed_ledger``): payments, a refund and a payout."""

from __future__ import annotations

import pytest

from commissions.models import LedgerEntry, Payout
from refairn.demo import seed_demo

pytestmark = pytest.mark.django_db


def test_demo_ledger_shows_payments_a_refund_and_a_confirmed_payout(settings, tmp_path, project) -> None:
    """Seeding the demo leaves commissions, a refund reversal and a confirmed payout in its ledger."""
    settings.DATA_DIR = tmp_path
    info = seed_demo()
    project()
    entries = LedgerEntry.objects.filter(workspace_id=info.business_id)
    kinds = set(entries.values_list("kind", flat=True))
    assert {"referral", "recurring", "reversal"} <= kinds
    payout = Payout.objects.get(workspace_id=info.business_id)
    assert (payout.status, payout.reference, payout.amount) == ("confirmed", "DEMO-TRANSFER-0001", 3980 + 2980 + 1990)
