"""Console actions that move money need a Django permission of their own, not just view access.

The ledger, payout and delivery admins are read-only (``has_change_permission`` is always False),
so "may view the changelist" was enough to be offered voiding a commission, confirming a payout
or re-normalising a delivery. Each action now asks for a real permission:

* ``void_selected`` (ledger entries): ``commissions.change_ledgerentry``;
* ``confirm_selected`` (payouts): ``commissions.change_payout``;
* ``renormalise`` (deliveries): ``ingestion.change_delivery``.

A view-only staff operator of the workspace is not offered the action, and a POST that names it
anyway (what a hand-made request would send) appends nothing to the event store. An operator given
the permission runs it and the event carries their name. Superusers keep every action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.test import Client

from commissions.models import LedgerEntry, Payout
from commissions.services import payout_create
from ingestion import projections
from ingestion.models import Delivery, Event
from ingestion.store import store_head
from ingestion.workspaces import provider_secret_set
from tests.providers.signing import SECRETS, post_fixture

from .support import AgentWorld

pytestmark = pytest.mark.django_db


def _ledger_entry(world: AgentWorld) -> str:
    """The renewal's recurring commission (in hold, not paid): voidable."""
    return LedgerEntry.objects.get(workspace=world.workspace, kind="recurring").id


def _created_payout(world: AgentWorld) -> str:
    """A payout of the agent's payable referral, created (not yet confirmed) through the service."""
    created = payout_create(workspace=world.workspace, agent_id=world.agent.id, currency="USD", actor="user:root")
    projections.run_all()
    assert Payout.objects.get(pk=created.payout_id).status == Payout.Status.CREATED
    return created.payout_id


def _errored_delivery(world: AgentWorld) -> str:
    """A Flutterwave refund received before its charge (verdict error); re-normalising it now appends the refund."""
    for provider, secret in SECRETS.items():
        provider_secret_set(workspace=world.workspace, provider=provider, secret=secret, label="test")
    webhooks = Client()
    refund = post_fixture(webhooks, "flutterwave", "refund", business_id=world.workspace.id).json()["deliveryId"]
    post_fixture(webhooks, "flutterwave", "charge.completed__v3", business_id=world.workspace.id)
    assert Delivery.objects.get(pk=refund).verdict == Delivery.Verdict.ERROR
    return refund


@dataclass(frozen=True)
class GuardedAction:
    """One money-changing changelist action, what it takes to see it, to run it, and what it appends."""

    action: str
    changelist: str
    view: str
    needed: str
    form: dict[str, str]
    target: Callable[[AgentWorld], str]
    appends: str

    def post(self, client: Client, object_id: str) -> Any:
        """POST the action with its own form already filled in, as its "apply" button would."""
        return client.post(self.changelist, {"action": self.action, ACTION_CHECKBOX_NAME: [object_id], **self.form})


VOID = GuardedAction("void_selected", "/admin/commissions/ledgerentry/", "commissions.view_ledgerentry",
                     "commissions.change_ledgerentry", {"apply": "1", "reason": "fraudulent signup"},
                     _ledger_entry, "commission.voided")
CONFIRM = GuardedAction("confirm_selected", "/admin/commissions/payout/", "commissions.view_payout",
                        "commissions.change_payout", {"apply": "1", "reference": "WIRE-9"},
                        _created_payout, "payout.confirmed")
RENORMALISE = GuardedAction("renormalise", "/admin/ingestion/delivery/", "ingestion.view_delivery",
                            "ingestion.change_delivery", {}, _errored_delivery, "payment.refunded")
GUARDED = [pytest.param(VOID, id="void"), pytest.param(CONFIRM, id="confirm"),
           pytest.param(RENORMALISE, id="renormalise")]


def grant(user: Any, *perms: str) -> None:
    """Give ``user`` the model permissions named ``app_label.codename``."""
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def offered_actions(client: Client, changelist: str) -> list[str]:
    """The action names the changelist's action bar offers this user (none: no action bar at all)."""
    response = client.get(changelist)
    assert response.status_code == 200
    action_form = response.context["action_form"]
    return [] if action_form is None else [name for name, _ in action_form.fields["action"].choices if name]


def appended_since(head: int) -> list[Event]:
    return list(Event.objects.filter(position__gt=head).order_by("position"))


@pytest.fixture
def console(client: Client, operator: Any) -> Client:
    """The staff operator (not superuser) of the world's workspace, logged in."""
    client.force_login(operator)
    return client


@pytest.mark.parametrize("guarded", GUARDED)
def test_view_only_operator_is_not_offered_the_action(console: Client, operator: Any, world: AgentWorld,
                                                      guarded: GuardedAction) -> None:
    """Seeing the changelist is not enough to be offered an action that moves money."""
    guarded.target(world)
    grant(operator, guarded.view)
    assert guarded.action not in offered_actions(console, guarded.changelist)


@pytest.mark.parametrize("guarded", GUARDED)
def test_forged_action_post_by_a_view_only_operator_appends_nothing(console: Client, operator: Any,
                                                                    world: AgentWorld,
                                                                    guarded: GuardedAction) -> None:
    """Hiding the action is not the guard: a POST naming it anyway is refused and the store is unchanged."""
    object_id = guarded.target(world)
    grant(operator, guarded.view)
    head = store_head()
    guarded.post(console, object_id)
    assert appended_since(head) == []


@pytest.mark.parametrize("guarded", GUARDED)
def test_operator_with_the_permission_is_offered_and_runs_the_action(console: Client, operator: Any,
                                                                     world: AgentWorld,
                                                                     guarded: GuardedAction) -> None:
    """The permission is what unlocks the action: offered, and its event names the operator."""
    object_id = guarded.target(world)
    grant(operator, guarded.view, guarded.needed)
    assert guarded.action in offered_actions(console, guarded.changelist)
    head = store_head()
    guarded.post(console, object_id)
    assert [(e.type, e.actor) for e in appended_since(head)] == [(guarded.appends, "user:op")]


@pytest.mark.parametrize("guarded", GUARDED)
def test_superuser_keeps_the_action(client: Client, superuser: Any, world: AgentWorld,
                                    guarded: GuardedAction) -> None:
    """A superuser has every permission, so every guarded action is still offered to them."""
    guarded.target(world)
    client.force_login(superuser)
    assert guarded.action in offered_actions(client, guarded.changelist)
