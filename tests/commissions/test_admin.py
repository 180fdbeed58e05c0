"""The ledger console: read-only entries with the explain trail; void, payout create and confirm actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.utils import timezone

from commissions.models import LedgerEntry, Payout
from ingestion import projections
from ingestion.models import Event
from tests.factories import AgentFactory, ProgramFactory, approved_enrollment

from .support import append, decide, pay, refund, run_ledger

pytestmark = pytest.mark.django_db

PAST = timezone.now() - timedelta(days=40)


@pytest.fixture
def admin_client(client, tenant):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    tenant.workspace.operators.add(user)
    client.force_login(user)
    return client


@pytest.fixture
def entry(tenant):
    agent = AgentFactory(workspace=tenant.workspace)
    decide(pay(tenant.workspace.id, "pi_adm", at=PAST), agent_id=agent.id)
    refund(tenant.workspace.id, "pi_adm", 990, at=PAST + timedelta(days=1))
    run_ledger()
    return LedgerEntry.objects.get(kind="referral")


def test_entry_list_shows_derived_status(admin_client, entry) -> None:
    """The changelist lists entries with their status now."""
    response = admin_client.get("/admin/commissions/ledgerentry/")
    assert response.status_code == 200
    assert entry.id in response.content.decode()
    assert "payable" in response.content.decode()


def test_entry_page_shows_the_explain_trail_and_cannot_be_edited(admin_client, entry) -> None:
    """The entry's page shows the formula and the refund in its trail, with no save button."""
    response = admin_client.get(f"/admin/commissions/ledgerentry/{quote(entry.id)}/change/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "round_half_up(9900 × 20 / 100) = 1980" in body
    assert "payment.refunded" in body
    assert 'name="_save"' not in body


def test_void_action_asks_for_a_reason_then_appends_the_event(admin_client, entry) -> None:
    """Voiding from the console goes through the service: a commission.voided event with the reason."""
    url = "/admin/commissions/ledgerentry/"
    ask = admin_client.post(url, {"action": "void_selected", ACTION_CHECKBOX_NAME: [entry.id]})
    assert ask.status_code == 200
    assert "reason" in ask.content.decode()
    admin_client.post(url, {"action": "void_selected", ACTION_CHECKBOX_NAME: [entry.id], "apply": "1",
                            "reason": "fraudulent signup"})
    event = Event.objects.get(type="commission.voided")
    assert event.data == {"entry_id": entry.id, "reason": "fraudulent signup"}
    assert event.actor == "user:root"
    run_ledger()
    voided = LedgerEntry.objects.get(cause="void")
    assert (voided.kind, voided.amount, voided.base_id, voided.reason) == ("reversal", -(1980 - 198), entry.id,
                                                                          "fraudulent signup")
    page = admin_client.get(f"/admin/commissions/ledgerentry/{quote(entry.id)}/change/").content.decode()
    assert "commission.voided" in page
    assert "fraudulent signup" in page


def test_void_action_refuses_a_reversal_and_appends_nothing(admin_client, entry) -> None:
    """A reversal entry cannot be voided: the console shows the service's error and no event is appended."""
    reversal = LedgerEntry.objects.get(kind="reversal")
    response = admin_client.post("/admin/commissions/ledgerentry/", {
        "action": "void_selected", ACTION_CHECKBOX_NAME: [reversal.id], "apply": "1", "reason": "oops"}, follow=True)
    assert "cannot be voided" in response.content.decode()
    assert not Event.objects.filter(type="commission.voided").exists()


def test_entry_page_shows_the_whole_trail_of_an_event_built_commission(admin_client, tenant) -> None:
    """The entry's page names the payment, signup and enrollment events, the terms, formula and a refund."""
    program = ProgramFactory(workspace=tenant.workspace, product=tenant.product)
    enrollment = approved_enrollment(program=program, code="ADM20")
    ws = tenant.workspace.id
    sign = append(ws, "customer.created", {"email": "a@example.com", "name": "A", "product_id": tenant.product.id,
                                           "customer_ref": "a", "referral_code": "adm20"}, at=PAST)
    paid = append(ws, "payment.succeeded", {"payment_ref": "pi_trail", "customer_ref": "a", "amount": 9900,
                                            "currency": "USD"}, at=PAST + timedelta(hours=1))
    refunded = append(ws, "payment.refunded", {"payment_ref": "pi_trail", "refund_ref": "re_t", "amount": 4950,
                                               "currency": "USD"}, at=PAST + timedelta(days=1))
    projections.run_all()
    entry = LedgerEntry.objects.get(workspace_id=ws, kind="referral")
    approved = Event.objects.get(type="enrollment.approved", data__enrollment_id=enrollment.id)
    body = admin_client.get(f"/admin/commissions/ledgerentry/{quote(entry.id)}/change/").content.decode()
    for event in (paid, sign, approved, refunded):
        assert event.event_id in body, event.type
    assert "round_half_up(9900 × 20 / 100) = 1980" in body
    assert "&quot;duration_months&quot;: 12" in body  # the snapshotted terms
    assert "reversed 990 USD" in body


def test_payout_create_and_confirm_from_the_console(admin_client, entry) -> None:
    """The payout add page creates a payout through the service; the confirm action confirms it."""
    form = admin_client.get("/admin/commissions/payout/add/")
    assert form.status_code == 200
    response = admin_client.post("/admin/commissions/payout/add/", {"agent": entry.agent_id, "currency": "USD"})
    assert response.status_code == 302
    created = Event.objects.get(type="payout.created")
    assert created.data["entry_ids"] == [entry.id, LedgerEntry.objects.get(kind="reversal").id]
    assert created.data["amount"] == 1980 - 198
    run_ledger()
    payout = Payout.objects.get()
    admin_client.post("/admin/commissions/payout/", {"action": "confirm_selected", ACTION_CHECKBOX_NAME: [payout.id],
                                                     "apply": "1", "reference": "SEPA-77"})
    confirmed = Event.objects.get(type="payout.confirmed")
    assert confirmed.data["reference"] == "SEPA-77"
    run_ledger()
    page = admin_client.get(f"/admin/commissions/payout/{quote(payout.id)}/change/")
    assert page.status_code == 200
    assert "SEPA-77" in page.content.decode()


def test_payout_create_with_nothing_payable_shows_the_error(admin_client, tenant) -> None:
    """An agent with nothing payable gets the service's message on the form, and no event."""
    agent = AgentFactory(workspace=tenant.workspace)
    response = admin_client.post("/admin/commissions/payout/add/", {"agent": agent.id, "currency": "USD"})
    assert response.status_code == 200
    assert "nothing payable" in response.content.decode()
    assert not Event.objects.filter(type="payout.created").exists()


def test_operator_sees_only_their_workspaces(client, entry, other_tenant) -> None:
    """A staff operator of another workspace does not see this workspace's entries."""
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("op", "op@example.com", "pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_ledgerentry"))
    other_tenant.workspace.operators.add(user)
    client.force_login(user)
    response = client.get("/admin/commissions/ledgerentry/")
    assert response.status_code == 200
    assert entry.id not in response.content.decode()
    assert client.get(f"/admin/commissions/ledgerentry/{quote(entry.id)}/change/").status_code in (302, 404)
