"""From events to money: signup with a code → payment → commission → refund reversal, both projections."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.services import enrollment_remove
from attribution.services import click_record
from commissions import selectors
from commissions.models import LedgerEntry
from commissions.services import payout_confirm, payout_create
from ingestion import projections
from ingestion.models import Event
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
    """The same payment_ref reported by a provider webhook, the API and CSV earns one commission."""
    ws = tenant.workspace.id
    signup(ws, tenant.product.id, "twice@example.com")
    payment(ws, "pi_e2e_3", "twice@example.com", source="stripe")
    payment(ws, "pi_e2e_3", "twice@example.com")
    project()
    payment(ws, "pi_e2e_3", "twice@example.com", source="csv")
    project()
    assert list(LedgerEntry.objects.filter(workspace_id=ws).values_list("kind", "amount")) == [("referral", 1980)]


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


def test_cancellation_stops_recurring_and_support_but_keeps_created_entries(tenant, enrollment, project) -> None:
    """After subscription.cancelled a renewal earns neither recurring nor support; earlier entries stay."""
    ws = tenant.workspace.id
    supporter = approved_enrollment(program=enrollment.program, code="HELP5")
    signup(ws, tenant.product.id, "c@example.com")
    append(ws, "support.assigned", {"customer_ref": "c", "agent_id": supporter.agent_id}, at=START)
    payment(ws, "pi_c1", "c@example.com")
    project()
    earned = sorted(LedgerEntry.objects.filter(workspace_id=ws).values_list("kind", "agent_id", "amount"))
    assert earned == sorted([("referral", enrollment.agent_id, 1980), ("support", supporter.agent_id, 495)])
    append(ws, "subscription.cancelled", {"customer_ref": "c"}, at=START + timedelta(days=10))
    payment(ws, "pi_c2", "c@example.com", at=START + timedelta(days=31))
    project()
    assert sorted(LedgerEntry.objects.filter(workspace_id=ws).values_list("kind", "agent_id", "amount")) == earned


def test_support_agent_earns_support_on_renewals_until_unassigned(tenant, enrollment, project) -> None:
    """support.assigned earns the support agent 5 % of each payment, separately from the referrer."""
    ws = tenant.workspace.id
    supporter = approved_enrollment(program=enrollment.program, code="HELP6")
    signup(ws, tenant.product.id, "s@example.com")
    payment(ws, "pi_s1", "s@example.com")
    append(ws, "support.assigned", {"customer_ref": "s", "agent_id": supporter.agent_id},
           at=START + timedelta(days=2))
    payment(ws, "pi_s2", "s@example.com", at=START + timedelta(days=31))
    project()
    rows = sorted(LedgerEntry.objects.filter(workspace_id=ws).values_list("payment_ref", "kind", "agent_id", "amount"))
    assert rows == [("pi_s1", "referral", enrollment.agent_id, 1980),
                    ("pi_s2", "recurring", enrollment.agent_id, 990),
                    ("pi_s2", "support", supporter.agent_id, 495)]


def test_removed_agent_earns_no_more_but_earned_entries_stay_payable(tenant, enrollment, project) -> None:
    """Removing the agent ends future commissions; the commission earned before stays payable."""
    ws = tenant.workspace.id
    signup(ws, tenant.product.id, "rm@example.com")
    payment(ws, "pi_rm1", "rm@example.com")
    project()
    enrollment_remove(enrollment=enrollment, reason="left the program", actor="user:ops")
    payment(ws, "pi_rm2", "rm@example.com", at=timezone.now())
    project()
    [entry] = LedgerEntry.objects.filter(workspace_id=ws)
    assert entry.payment_ref == "pi_rm1"
    found = selectors.commission_get(workspace_id=ws, commission_id=entry.id, as_of=timezone.now())
    assert found is not None
    assert found[1] == "payable"


def test_explain_lists_click_signup_terms_and_every_later_event(tenant, enrollment, project, api) -> None:
    """Explain of a clicked-through customer's commission names the click, signup and enrollment events,
    and the dispute, payout and confirmation that changed its status, in store order."""
    ws = tenant.workspace.id
    click = click_record(enrollment=enrollment, ip="203.0.113.9", user_agent="test", occurred_at=START)
    sign = append(ws, "customer.created", {
        "email": "clicker@example.com", "name": "C", "product_id": tenant.product.id, "customer_ref": "clicker",
        "click_id": click.click_id, "referral_code": "JANE20"}, at=START + timedelta(minutes=5))
    pay_event = payment(ws, "pi_x1", "clicker@example.com", at=START + timedelta(hours=1))
    opened = append(ws, "payment.disputed", {"payment_ref": "pi_x1", "dispute_ref": "dp_x", "amount": 9900,
                                             "currency": "USD", "outcome": None}, at=START + timedelta(days=3))
    won = append(ws, "payment.disputed", {"payment_ref": "pi_x1", "dispute_ref": "dp_x", "amount": 9900,
                                          "currency": "USD", "outcome": "won"}, at=START + timedelta(days=9))
    project()
    created = payout_create(workspace=tenant.workspace, agent_id=enrollment.agent_id, currency="USD", actor="user:ops")
    payout_confirm(workspace=tenant.workspace, payout_id=created.payout_id, reference="wire-x", actor="user:ops")
    project()
    entry = LedgerEntry.objects.get(workspace_id=ws)
    data = api.get(f"/api/commissions/{entry.id}/explain").json()
    assert data["payment"]["eventId"] == pay_event.event_id
    assert data["attribution"]["via"] == "click"
    attribution_ids = [e["eventId"] for e in data["attribution"]["events"]]
    assert click.event_id in attribution_ids
    assert sign.event_id in attribution_ids
    assert data["enrollment"]["event"]["type"] == "enrollment.approved"
    assert data["enrollment"]["terms"]["recurring"]["percent"] == "10"
    assert data["formula"]["base"] == 9900
    assert data["formula"]["result"] == 1980
    assert [(h["eventId"], h["type"]) for h in data["history"]] == [
        (opened.event_id, "payment.disputed"), (won.event_id, "payment.disputed"),
        (created.event_id, "payout.created"),
        (Event.objects.get(type="payout.confirmed").event_id, "payout.confirmed")]
    assert data["commission"]["status"] == "paid"


def test_explain_of_a_support_commission_shows_the_support_terms(tenant, enrollment, project, api) -> None:
    """A support entry's explain names the support.assigned event and the support agent's enrollment terms."""
    ws = tenant.workspace.id
    supporter = approved_enrollment(program=enrollment.program, code="HELP7")
    signup(ws, tenant.product.id, "t@example.com")
    assigned = append(ws, "support.assigned", {"customer_ref": "t", "agent_id": supporter.agent_id}, at=START)
    payment(ws, "pi_t1", "t@example.com")
    project()
    entry = LedgerEntry.objects.get(workspace_id=ws, kind="support")
    data = api.get(f"/api/commissions/{entry.id}/explain").json()
    assert data["enrollment"]["enrollmentId"] == supporter.id
    assert data["enrollment"]["event"]["type"] == "enrollment.approved"
    assert data["enrollment"]["event"]["data"]["enrollment_id"] == supporter.id
    assert data["enrollment"]["terms"]["support"] == {"percent": "5"}
    assert assigned.event_id in [e["eventId"] for e in data["attribution"]["events"]]
    assert data["formula"]["expression"] == "round_half_up(9900 × 5 / 100) = 495"


def test_an_earlier_payment_arriving_late_earns_recurring_once_the_referral_is_earned(
        tenant, enrollment, project, api) -> None:
    """February earned the referral before January arrived: January earns recurring, never a 2nd referral.

    The ledger keeps what each decision said when it was applied (attribution/projector.py), so
    a rebuild gives the same entries, and the explain trail's ``sequence`` agrees with each kind.
    """
    ws = tenant.workspace.id
    signup(ws, tenant.product.id, "late@example.com")
    payment(ws, "pi_feb", "late@example.com", at=START + timedelta(days=31))
    project()
    payment(ws, "pi_jan", "late@example.com", at=START + timedelta(days=1))
    project()
    entries = {e.payment_ref: e for e in LedgerEntry.objects.filter(workspace_id=ws)}
    assert {ref: (e.kind, e.amount) for ref, e in entries.items()} == {
        "pi_feb": ("referral", 1980), "pi_jan": ("recurring", 990)}
    for ref, sequence in (("pi_feb", 1), ("pi_jan", 2)):
        explained = api.get(f"/api/commissions/{entries[ref].id}/explain").json()["attribution"]
        assert explained["sequence"] == sequence
    before = sorted(LedgerEntry.objects.values_list("id", "kind", "amount", "effective_at", "formula"))
    projections.rebuild("attribution")
    assert sorted(LedgerEntry.objects.values_list("id", "kind", "amount", "effective_at", "formula")) == before
