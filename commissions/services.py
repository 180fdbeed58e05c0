"""Operator writes on the ledger: create and confirm payouts, void a commission (issue #5).

Each is an operator event appended through ``ingestion.store``; the ledger projector turns it
into rows, exactly as a rebuild would. The API views and the admin actions call these same
functions.

Consistency: a service first catches the projections up to the store head while holding a lock
on the agent's row, so two payouts for one agent are decided one after the other, each seeing
the other's ``payout.created``; the projector checks every ``payout.created`` again (entries
taken twice, wrong amount) and records a payout that fails as ``rejected`` rather than paying
anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from ingestion import projections
from ingestion.errors import ApplicationError, ConflictError, NotFoundError
from ingestion.ids import new_id
from ingestion.models import Workspace
from ingestion.money import MoneyError, normalise_currency
from ingestion.store import NewEvent, event_append

from .models import LedgerEntry, Payout
from .selectors import payout_gather


@dataclass(frozen=True)
class PayoutCreated:
    """A payout just appended: its id, net amount and the entries it covers."""

    payout_id: str
    event_id: str
    agent_id: str
    currency: str
    amount: int
    cutoff: datetime
    entries: list[LedgerEntry]


def ledger_catch_up() -> None:
    """Apply every stored event to attribution and the ledger, so a decision reads the latest state."""
    known = projections.registered()
    for name in ("attribution", "ledger"):
        if name in known:
            projections.run_projection(name)


def _agent_locked(workspace: Workspace, agent_id: str) -> Agent:
    agent = Agent.objects.select_for_update().filter(workspace=workspace, id=agent_id).first()
    if agent is None:
        raise NotFoundError("unknown agentId", field="agentId")
    return agent


@transaction.atomic
def payout_create(*, workspace: Workspace, agent_id: str, currency: str, cutoff: datetime | None = None,
                  actor: str = "", now: datetime | None = None) -> PayoutCreated:
    """Gather the agent's payable entries in one currency up to ``cutoff`` and append payout.created.

    Clawbacks (reversals of already paid commissions) are netted; a net amount that is not
    positive, or below the agent's payout threshold, is refused (409 ``nothing_payable``).
    """
    now = now or timezone.now()
    try:
        currency = normalise_currency(currency)
    except MoneyError as exc:
        raise ApplicationError(str(exc), field="currency") from None
    if cutoff is not None and timezone.is_naive(cutoff):
        raise ApplicationError("cutoff needs a time zone", field="cutoff")
    cutoff = min(cutoff or now, now)
    _agent_locked(workspace, agent_id)
    ledger_catch_up()
    gathered = payout_gather(workspace_id=workspace.id, agent_id=agent_id, currency=currency, cutoff=cutoff, now=now)
    if not gathered.entries or gathered.amount <= 0:
        raise ConflictError(f"nothing payable for {agent_id} in {currency} up to {cutoff.isoformat()}"
                            + (f" (net {gathered.amount})" if gathered.entries else ""),
                            code="nothing_payable", field="agentId")
    if gathered.amount < gathered.threshold:
        raise ConflictError(f"the net payable amount {gathered.amount} is below the payout threshold "
                            f"{gathered.threshold} ({currency} minor units)", code="nothing_payable",
                            field="agentId")
    payout_id = new_id("pay")
    entry_ids = [e.id for e in gathered.entries]
    appended = event_append(NewEvent(
        workspace_id=workspace.id, source="operator", source_event_id=f"payout:{payout_id}:created",
        type="payout.created", occurred_at=now, actor=actor,
        data={"payout_id": payout_id, "agent_id": agent_id, "currency": currency, "entry_ids": entry_ids,
              "amount": gathered.amount, "cutoff": cutoff.isoformat(), "reference": ""},
    ))
    return PayoutCreated(payout_id, appended.event_id, agent_id, currency, gathered.amount, cutoff,
                         gathered.entries)


@transaction.atomic
def payout_confirm(*, workspace: Workspace, payout_id: str, reference: str, actor: str = "",
                   now: datetime | None = None) -> Payout:
    """Confirm a created payout with the transfer's reference: its entries become paid.

    Confirming again with the same reference answers the payout unchanged; with another
    reference, or a rejected payout, it is a conflict.
    """
    reference = (reference or "").strip()
    if not reference:
        raise ApplicationError("a reference (e.g. the bank transfer id) is required", field="reference")
    payout = Payout.objects.filter(workspace=workspace, id=payout_id).first()
    if payout is None:
        ledger_catch_up()
        payout = Payout.objects.filter(workspace=workspace, id=payout_id).first()
        if payout is None:
            raise NotFoundError("unknown payout", field="payoutId")
    _agent_locked(workspace, payout.agent_id)
    ledger_catch_up()
    payout.refresh_from_db()
    if payout.status == Payout.Status.CONFIRMED:
        if payout.reference == reference:
            return payout
        raise ConflictError(f"payout {payout_id} is already confirmed with reference {payout.reference}",
                            code="already_confirmed", field="reference")
    if payout.status == Payout.Status.REJECTED:
        raise ConflictError(f"payout {payout_id} was rejected: {payout.rejection_reason}", code="payout_rejected")
    entry_ids = list(payout.lines.order_by("id").values_list("entry_id", flat=True))
    event_append(NewEvent(
        workspace_id=workspace.id, source="operator", source_event_id=f"payout:{payout_id}:confirmed",
        type="payout.confirmed", occurred_at=now or timezone.now(), actor=actor,
        data={"payout_id": payout_id, "agent_id": payout.agent_id, "currency": payout.currency,
              "entry_ids": entry_ids, "amount": payout.amount, "reference": reference},
    ))
    return payout


@transaction.atomic
def commission_void(*, workspace: Workspace, commission_id: str, reason: str, actor: str = "",
                    now: datetime | None = None) -> str:
    """Void a commission: append commission.voided; the ledger reverses what remains of it.

    Returns the event id. A reversal cannot be voided (400); a commission voided before is a
    conflict (409).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("a reason is required to void a commission", field="reason")
    ledger_catch_up()
    entry = LedgerEntry.objects.filter(workspace=workspace, id=commission_id).first()
    if entry is None:
        raise NotFoundError("unknown commission", field="commissionId")
    if entry.kind == LedgerEntry.Kind.REVERSAL:
        raise ApplicationError("a reversal entry cannot be voided", field="commissionId", code="invalid_state")
    _agent_locked(workspace, entry.agent_id)
    appended = event_append(NewEvent(
        workspace_id=workspace.id, source="operator", source_event_id=f"commission:{commission_id}:voided",
        type="commission.voided", occurred_at=now or timezone.now(), actor=actor,
        data={"entry_id": commission_id, "reason": reason},
    ))
    if not appended.created:
        raise ConflictError(f"{commission_id} was already voided", code="already_voided", eventId=appended.event_id)
    return appended.event_id
