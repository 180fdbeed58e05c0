"""From events to money: signup with a code → payment → commission → refund reversal, both projections."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commissions import selectors
from commissions.models import LedgerEntry
from ingestion import projections
from tests.factories import ProgramFactory, approved_enrollment

from .support import append

pytestmark = pytest.mark.django_db

START = timezone.now() - timedelta(days=60)


@pytest.fixture
def enrollment(tenant):
    program = ProgramFactory(workspace=tenant.workspace, product=tenant.product)
    return approved_enrollment(program=program, code="JANE20")


def signup(ws: str, product_id: str, email: str, code: str | None = "JANE20", at=START):
    data = {"email": email, "name": "Cus", "product_id": product_id, "customer_ref": email.split("@")[0]}
    if code:
        data["referral_code"] = code
    return append(ws, "customer.created", data, at=at)


def payment(ws: str, ref: str, email: str, amount: int = 9900, at=START + timedelta(hours=1), source: str = "api"):
    return append(ws, "payment.succeeded", {"payment_ref": ref, "email": email, "amount": amount, "currency": "USD",
                                            "customer_ref": email.split("@")[0]}, at=at, source=source)


@pytest.mark.smoke
def test_signup_with_code_then_payment_earns_and_refund_reverses(tenant, enrollment, project) -> None:
    """A customer signed up with a code pays: the agent earns 20 %; a half refund reverses half."""
    ws = tenant.workspace.id
    signup(ws, tenant.product.id, "buyer@example.com")
    pay_event = payment(ws, "pi_e2e_1", "buyer@example.com")
    project()
    entry = LedgerEntry.objects.get(workspace_id=ws)
    assert (entry.kind, entry.amount, entry.agent_id) == ("referral", 1980, enrollment.agent_id)
    assert entry.payment_event_id == pay_event.event_id
    assert entry.enrollment_event_id  # the enrollment.approved event whose terms applied

    append(ws, "payment.refunded", {"payment_ref": "pi_e2e_1", "refund_ref": "re_1", "amount": 4950,
                                    "currency": "USD"}, at=START + timedelta(days=2))
    project()
    assert sorted(LedgerEntry.objects.values_list("kind", "amount")) == [("referral", 1980), ("reversal", -990)]


def test_payment_before_signup_earns_when_the_signup_arrives(tenant, enrollment, project) -> None:
    """Out of order: a payment stored before its signup earns once the signup is applied."""
    ws = tenant.workspace.id
    payment(ws, "pi_e2e_2", "early@example.com", at=START + timedelta(hours=1))
    project()
    signup(ws, tenant.product.id, "early@example.com", at=START)
    project()
    entry = LedgerEntry.objects.get(workspace_id=ws)
    assert (entry.kind, entry.amount) == ("referral", 1980)


def test_same_payment_from_two_channels_earns_once(tenant, enrollment, project) -> None:
    """The same payment_ref reported by the API and by CSV earns one commission."""
    ws = tenant.workspace.id
    signup(ws, tenant.product.id, "twice@example.com")
    payment(ws, "pi_e2e_3", "twice@example.com")
    payment(ws, "pi_e2e_3", "twice@example.com", source="csv")
    project()
    assert LedgerEntry.objects.filter(workspace_id=ws).count() == 1


def test_renewals_earn_recurring_until_the_cap(tenant, enrollment, project) -> None:
    """A first payment and a renewal a month later earn referral then recurring."""
    ws = tenant.workspace.id
    signup(ws, tenant.product.id, "sub@example.com")
    payment(ws, "pi_m1", "sub@example.com", at=START + timedelta(hours=1))
    payment(ws, "pi_m2", "sub@example.com", at=START + timedelta(days=31))
    project()
    assert sorted(LedgerEntry.objects.values_list("kind", "amount")) == [("recurring", 990), ("referral", 1980)]


def test_explain_shows_the_signup_and_enrollment_events(tenant, enrollment, project, api) -> None:
    """Explain of an event-built commission shows the signup behind the attribution and the terms event."""
    ws = tenant.workspace.id
    sign = signup(ws, tenant.product.id, "why@example.com")
    payment(ws, "pi_e2e_4", "why@example.com")
    project()
    entry = LedgerEntry.objects.get(workspace_id=ws)
    data = api.get(f"/api/commissions/{entry.id}/explain").json()
    assert sign.event_id in [e["eventId"] for e in data["attribution"]["events"]]
    assert data["enrollment"]["event"]["type"] == "enrollment.approved"
    assert data["enrollment"]["terms"]["referral"] == {"type": "percent", "percent": "20"}


def test_rebuild_of_both_projections_equals_incremental(tenant, enrollment, project) -> None:
    """rebuild() of attribution and ledger reproduces the same ledger."""
    ws = tenant.workspace.id
    signup(ws, tenant.product.id, "r@example.com")
    payment(ws, "pi_r1", "r@example.com")
    payment(ws, "pi_r2", "r@example.com", at=START + timedelta(days=31))
    append(ws, "payment.refunded", {"payment_ref": "pi_r2", "refund_ref": "re_r2", "amount": 9900,
                                    "currency": "USD"}, at=START + timedelta(days=32))
    project()
    before = sorted(LedgerEntry.objects.values_list("id", "kind", "amount", "effective_at"))
    balance = selectors.agent_balance(workspace_id=ws, agent_id=enrollment.agent_id, as_of=timezone.now())
    projections.rebuild("attribution")
    assert sorted(LedgerEntry.objects.values_list("id", "kind", "amount", "effective_at")) == before
    assert selectors.agent_balance(workspace_id=ws, agent_id=enrollment.agent_id, as_of=timezone.now()) == balance
