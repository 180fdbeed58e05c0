"""Paddle Billing normalisation: string amounts, origin, approved adjustments only, chargebacks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import Enrollment
from commissions import selectors
from commissions.models import LedgerEntry, LedgerTrail
from ingestion.workspaces import CreatedWorkspace
from tests.factories import ProgramFactory, approved_enrollment

from .events import appended, at
from .signing import post_fixture

pytestmark = pytest.mark.django_db

TXN = "txn_01hv8wptq8987qeep44cyrewp9"
CHARGEBACK = {"payment_ref": TXN, "dispute_ref": f"chargeback:{TXN}", "amount": 4900, "currency": "USD",
              "provider": "paddle"}


def _post(client: Client, biz: str, *names: str) -> None:
    for name in names:
        response = post_fixture(client, "paddle", name, business_id=biz)
        assert response.status_code == 200, response.content


def test_customer_created(client: Client, biz: str) -> None:
    """customer.created: ctm_ id, email, and a code in custom_data."""
    _post(client, biz, "customer.created")
    assert appended(biz, "paddle") == [{
        "type": "customer.created",
        "source_event_id": "evt_01hv8wq1t8c4z9g3xj2k5m6n7p:customer.created",
        "occurred_at": at("2026-01-12T10:18:47.635628Z"),
        "data": {"provider": "paddle", "provider_customer_id": "ctm_01hv8wt8nffez4p2t6tgt9ssj3",
                 "email": "sam@example.com", "name": "Sam Miller", "referral_code": "PARTNER7"},
    }]


@pytest.mark.smoke
def test_first_transaction_completed(client: Client, biz: str) -> None:
    """transaction.completed from checkout (origin web): txn_ id, grand_total string in cents."""
    _post(client, biz, "transaction.completed")
    assert appended(biz, "paddle") == [{
        "type": "payment.succeeded",
        "source_event_id": "evt_01hv8x2ptd7j2c4j4nfv1dr9d3:payment.succeeded",
        "occurred_at": at("2026-01-12T10:18:53.125914Z"),
        "data": {"payment_ref": "txn_01hv8wptq8987qeep44cyrewp9", "provider": "paddle",
                 "provider_customer_id": "ctm_01hv8wt8nffez4p2t6tgt9ssj3", "amount": 4900, "currency": "USD",
                 "subscription_ref": "sub_01hv8x29kz0t586xy6zn1a62ny", "plan": "pri_01gsz8x8sawmvhz1pv30nge1ke",
                 "referral_code": "PARTNER7", "renewal": False},
    }]


def test_renewal_transaction(client: Client, biz: str) -> None:
    """origin subscription_recurring marks a renewal; no custom data is needed."""
    _post(client, biz, "transaction.completed__renewal")
    (event,) = appended(biz, "paddle")
    assert event["data"] == {"payment_ref": "txn_01hxa0b8y6z2c4e6g8j0l2n4p6", "provider": "paddle",
                             "provider_customer_id": "ctm_01hv8wt8nffez4p2t6tgt9ssj3", "amount": 4900,
                             "currency": "USD", "subscription_ref": "sub_01hv8x29kz0t586xy6zn1a62ny",
                             "plan": "pri_01gsz8x8sawmvhz1pv30nge1ke", "renewal": True}


def test_trial_checkout_is_a_signup_with_the_code(client: Client, biz: str) -> None:
    """A zero-total transaction is no payment, but its referral code is kept as the signup."""
    _post(client, biz, "transaction.completed__trial")
    assert appended(biz, "paddle") == [{
        "type": "customer.created",
        "source_event_id": "evt_01hv9a1b2c3d4e5f6g7h8j9k0m:customer.created",
        "occurred_at": at("2026-01-13T08:00:02.001Z"),
        "data": {"provider": "paddle", "provider_customer_id": "ctm_01hv8wt8nffez4p2t6tgt9ssj3",
                 "referral_code": "PARTNER7"},
    }]


def test_refund_counts_only_when_approved(client: Client, biz: str) -> None:
    """adjustment.created pending_approval is acknowledged; adjustment.updated approved is the refund."""
    _post(client, biz, "adjustment.created__refund_pending", "adjustment.updated__refund_approved")
    events = appended(biz, "paddle")
    assert [e["type"] for e in events] == ["provider.ignored", "payment.refunded"]
    assert events[1]["data"] == {"payment_ref": "txn_01hv8wptq8987qeep44cyrewp9",
                                 "refund_ref": "adj_01hvgf2s84dr6reszzg29zbvcm", "amount": 1500,
                                 "currency": "USD", "provider": "paddle"}


def test_approved_chargeback_is_a_lost_dispute(client: Client, biz: str) -> None:
    """A chargeback adjustment arrives already approved (the money has left) and Paddle sends no
    later "lost": it is the dispute's outcome, lost, not an opened dispute that would hold for ever."""
    _post(client, biz, "adjustment.created__chargeback")
    assert [(e["type"], e["data"]) for e in appended(biz, "paddle")] == [
        ("payment.disputed", {**CHARGEBACK, "outcome": "lost"})]


def test_chargeback_reverse_is_a_win_of_the_same_dispute(client: Client, biz: str) -> None:
    """chargeback_reverse is a separate adjustment; the transaction id ties it to the chargeback's dispute."""
    _post(client, biz, "adjustment.created__chargeback_reverse")
    assert [(e["type"], e["data"]) for e in appended(biz, "paddle")] == [
        ("payment.disputed", {**CHARGEBACK, "outcome": "won"})]


# --- what the ledger does with them ------------------------------------------------------------------


@pytest.fixture
def enrollment(connected: CreatedWorkspace) -> Enrollment:
    """An agent enrolled with PARTNER7, the code in the transaction fixture's custom_data (20 % referral)."""
    return approved_enrollment(program=ProgramFactory(product=connected.product), code="PARTNER7")


def _statuses(biz: str) -> list[tuple[str, int, str]]:
    """(kind, amount, status now) of the transaction's ledger entries."""
    entries, pairs = selectors.commission_list(workspace_id=biz, as_of=timezone.now())
    return sorted((e.kind, e.amount, selectors.entry_status(e, pairs)) for e in entries.filter(payment_ref=TXN))


def test_chargeback_reverses_the_commission_instead_of_holding_it(
        client: Client, biz: str, project: Callable[[], object], enrollment: Enrollment) -> None:
    """The 9.80 referral commission of a charged-back 49.00 transaction is reversed in full, never on_hold."""
    _post(client, biz, "transaction.completed")
    project()
    assert [(k, a) for k, a, _ in _statuses(biz)] == [("referral", 980)]
    _post(client, biz, "adjustment.created__chargeback")
    project()
    assert _statuses(biz) == [("referral", 980, "reversed"), ("reversal", -980, "reversed")]


def test_chargeback_reverse_after_the_chargeback_leaves_the_reversal_standing(
        client: Client, biz: str, project: Callable[[], object], enrollment: Enrollment) -> None:
    """A dispute's first outcome is final in the ledger: the later win is kept in the trail as ignored."""
    _post(client, biz, "transaction.completed", "adjustment.created__chargeback")
    project()
    _post(client, biz, "adjustment.created__chargeback_reverse")
    project()
    assert sum(LedgerEntry.objects.filter(payment_ref=TXN).values_list("amount", flat=True)) == 0
    trail = LedgerTrail.objects.filter(payment_ref=TXN, type="payment.disputed")
    effects = list(trail.values_list("effect", flat=True))
    assert effects[-1] == f"ignored: dispute chargeback:{TXN} was already lost"


def test_chargeback_reverse_stored_first_keeps_the_commission(
        client: Client, biz: str, project: Callable[[], object], enrollment: Enrollment) -> None:
    """Paddle does not order notifications: a reverse stored before its chargeback wins, and the commission stands."""
    _post(client, biz, "transaction.completed", "adjustment.created__chargeback_reverse",
          "adjustment.created__chargeback")
    project()
    assert [(k, a) for k, a, _ in _statuses(biz)] == [("referral", 980)]


def test_subscription_canceled(client: Client, biz: str) -> None:
    """subscription.canceled (US spelling) becomes subscription.cancelled at canceled_at."""
    _post(client, biz, "subscription.canceled")
    assert appended(biz, "paddle") == [{
        "type": "subscription.cancelled",
        "source_event_id": "evt_01hy2e3f4g5h6j7k8m9n0p1q2r:subscription.cancelled",
        "occurred_at": at("2026-03-12T10:20:00.095Z"),
        "data": {"subscription_ref": "sub_01hv8x29kz0t586xy6zn1a62ny", "provider": "paddle",
                 "provider_customer_id": "ctm_01hv8wt8nffez4p2t6tgt9ssj3"},
    }]


def test_full_refund_of_a_renewal(client: Client, biz: str) -> None:
    """An approved full adjustment refunds the whole renewal transaction."""
    _post(client, biz, "adjustment.updated__refund_full")
    assert appended(biz, "paddle") == [{
        "type": "payment.refunded",
        "source_event_id": "evt_01hy9k3m5n7p9r1t3v5x7z9b1d:payment.refunded",
        "occurred_at": at("2026-02-20T09:31:02.118Z"),
        "data": {"payment_ref": "txn_01hxa0b8y6z2c4e6g8j0l2n4p6", "refund_ref": "adj_01hy9k2w7e5r3t1y9u7i5o3p1a",
                 "amount": 4900, "currency": "USD", "provider": "paddle"},
    }]


def test_unmapped_event_is_ignored(client: Client, biz: str) -> None:
    """transaction.created (a checkout opened, nothing paid) is kept as provider.ignored."""
    _post(client, biz, "transaction.created")
    assert [(e["type"], e["data"]) for e in appended(biz, "paddle")] == [
        ("provider.ignored", {"provider": "paddle", "provider_type": "transaction.created"})]
