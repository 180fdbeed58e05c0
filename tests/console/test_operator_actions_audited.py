"""Every console action that changes money or attribution is in the event log with who did it.

Each test drives the Django admin as an operator would (the changelist action, then its form) and
checks that the action appended an event carrying ``actor = user:<username>``: the audit trail is
the event log itself (PRODUCT.md, "Every decision is an event in the store").
"""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model

from agents.models import Enrollment
from agents.services import enrollment_apply
from attribution.models import Customer
from commissions.models import LedgerEntry, Payout
from ingestion import projections
from ingestion.models import Delivery, Event
from ingestion.store import store_head
from ingestion.workspaces import provider_secret_set
from tests.factories import AgentFactory, approved_enrollment
from tests.providers.signing import SECRETS, post_fixture

pytestmark = pytest.mark.django_db

ACTOR = "user:olga"


@pytest.fixture
def console(client, world):
    """A superuser operator of the world's workspace, logged in to the console."""
    user = get_user_model().objects.create_superuser("olga", "olga@example.com", "pw")
    world.workspace.operators.add(user)
    client.force_login(user)
    return client


def events_by_operator_since(position: int) -> list[Event]:
    return list(Event.objects.filter(position__gt=position, actor=ACTOR).order_by("position"))


def test_approving_an_enrollment_appends_enrollment_approved_with_the_actor(console, world) -> None:
    """The changelist's approve action appends enrollment.approved by the operator."""
    applied = enrollment_apply(agent=AgentFactory(workspace=world.workspace), program=world.program)
    head = store_head()
    console.post("/admin/agents/enrollment/", {"action": "approve", ACTION_CHECKBOX_NAME: [applied.id],
                                               "reason": "good fit", "referral_code": ""})
    assert [(e.type, e.source, e.data["enrollment_id"]) for e in events_by_operator_since(head)] == [
        ("enrollment.approved", "operator", applied.id)]
    assert Enrollment.objects.get(id=applied.id).status == "approved"


def test_reassigning_a_customer_appends_attribution_reassigned_with_actor_and_reason(console, world) -> None:
    """The customer action leads to a form (agent, reason) that appends attribution.reassigned."""
    colleague = approved_enrollment(program=world.program, agent=AgentFactory(workspace=world.workspace),
                                    code="OTHER1")
    customer = Customer.objects.get(workspace=world.workspace, email=world.customer_emails[1])
    head = store_head()
    ask = console.post("/admin/attribution/customer/", {"action": "reassign", ACTION_CHECKBOX_NAME: [customer.pk]})
    form_url = (ask["Location"] if ask.status_code == 302
                else f"/admin/attribution/customer/{quote(customer.pk)}/reassign/")
    console.post(form_url, {"agent": colleague.agent_id, "reason": "the agents agreed"})
    events = events_by_operator_since(head)
    assert [(e.type, e.source) for e in events] == [("attribution.reassigned", "operator")]
    assert events[0].data["agent_id"] == colleague.agent_id
    assert events[0].data["reason"] == "the agents agreed"


def test_voiding_a_commission_appends_commission_voided_with_actor_and_reason(console, world) -> None:
    """The void action, with its reason form, appends commission.voided by the operator."""
    entry = LedgerEntry.objects.get(workspace=world.workspace, kind="recurring")
    head = store_head()
    console.post("/admin/commissions/ledgerentry/", {"action": "void_selected", ACTION_CHECKBOX_NAME: [entry.id],
                                                     "apply": "1", "reason": "fraudulent signup"})
    assert [(e.type, e.data) for e in events_by_operator_since(head)] == [
        ("commission.voided", {"entry_id": entry.id, "reason": "fraudulent signup"})]


def test_creating_and_confirming_a_payout_append_payout_events_with_the_actor(console, world) -> None:
    """The payout add page appends payout.created; the confirm action appends payout.confirmed."""
    head = store_head()
    console.post("/admin/commissions/payout/add/", {"agent": world.agent.id, "currency": "USD"})
    projections.run_all()
    payout = Payout.objects.get(workspace=world.workspace)
    console.post("/admin/commissions/payout/", {"action": "confirm_selected", ACTION_CHECKBOX_NAME: [payout.id],
                                                "apply": "1", "reference": "WIRE-7"})
    events = events_by_operator_since(head)
    assert [(e.type, e.data["payout_id"]) for e in events] == [("payout.created", payout.id),
                                                               ("payout.confirmed", payout.id)]
    assert events[1].data["reference"] == "WIRE-7"


def test_rebuilding_a_projection_is_recorded_with_the_actor(console, world) -> None:
    """The rebuild action leaves an operator event naming the projection and who asked for it."""
    head = store_head()
    console.post("/admin/ingestion/projectioncheckpoint/", {"action": "rebuild", ACTION_CHECKBOX_NAME: ["ledger"]})
    events = events_by_operator_since(head)
    assert len(events) == 1
    assert events[0].source == "operator"
    assert "ledger" in str(events[0].data)


def test_renormalising_a_delivery_is_recorded_with_the_actor(console, client, world) -> None:
    """A delivery re-normalised from the console leaves events that say which operator did it."""
    for provider, secret in SECRETS.items():
        provider_secret_set(workspace=world.workspace, provider=provider, secret=secret, label="test")
    refund = post_fixture(client, "flutterwave", "refund", business_id=world.workspace.id).json()["deliveryId"]
    post_fixture(client, "flutterwave", "charge.completed__v3", business_id=world.workspace.id)
    assert Delivery.objects.get(pk=refund).verdict == "error"
    head = store_head()
    console.post("/admin/ingestion/delivery/", {"action": "renormalise", ACTION_CHECKBOX_NAME: [refund]})
    assert Delivery.objects.get(pk=refund).verdict == "accepted"  # the action itself worked
    assert events_by_operator_since(head), "no event of the re-normalisation names the operator"
