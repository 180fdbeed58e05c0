"""Helpers for ledger tests: append events, record attribution decisions, run the ledger alone.

Unit tests of the ledger insert ``PaymentAttribution`` rows themselves (the contract with the
attribution projector) and run only the ledger projection, so they test the ledger whatever the
attribution projector decides; the end-to-end tests run both from events.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from attribution.models import PaymentAttribution
from ingestion import projections
from ingestion.models import Event, ProjectionCheckpoint
from ingestion.store import NewEvent, event_append, store_head

T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
_seq = itertools.count(1)


def terms(*, percent: str = "20", recurring: str = "10", cap: int | None = 12, support: str = "5",
          hold_days: int = 14, threshold: dict[str, int] | None = None, fixed: tuple[int, str] | None = None,
          program_id: str = "prog_test") -> dict[str, Any]:
    referral: dict[str, Any] = ({"type": "fixed", "amount": fixed[0], "currency": fixed[1]} if fixed
                                else {"type": "percent", "percent": percent})
    return {
        "program_id": program_id, "product_id": "prod_test", "referral": referral,
        "recurring": {"percent": recurring, "duration_months": cap}, "support": {"percent": support},
        "attribution_window_days": 90, "hold_days": hold_days, "payout_frequency": "monthly",
        "payout_threshold": threshold or {},
    }


def append(workspace_id: str, type_: str, data: dict[str, Any], *, at: datetime = T0, source: str = "api",
           actor: str = "", key: str | None = None) -> Event:
    """Append one event and return the stored row."""
    appended = event_append(NewEvent(
        workspace_id=workspace_id, source=source, source_event_id=key or f"test:{next(_seq)}", type=type_,
        occurred_at=at, data=data, actor=actor,
    ))
    return Event.objects.get(event_id=appended.event_id)


def pay(workspace_id: str, ref: str, amount: int = 9900, currency: str = "USD", *, at: datetime = T0) -> Event:
    """A payment.succeeded event with nothing attribution could match (decisions are inserted by hand)."""
    return append(workspace_id, "payment.succeeded", {"payment_ref": ref, "amount": amount, "currency": currency},
                  at=at)


def decide(payment: Event, *, agent_id: str = "agt_a", terms_: dict[str, Any] | None = None, sequence: int = 1,
           first_payment_at: datetime | None = None, decided: Event | None = None, customer_id: str = "cus_1",
           support_agent_id: str = "", support_terms: dict[str, Any] | None = None, cancelled: bool = False,
           active: bool = True, program_id: str = "prog_test") -> PaymentAttribution:
    """Record attribution's decision on ``payment``, taken at ``decided`` (default: the payment itself)."""
    decided = decided or payment
    data = payment.data
    return PaymentAttribution.objects.create(
        workspace_id=payment.workspace_id, payment_ref=data["payment_ref"], payment_event_id=payment.event_id,
        payment_position=payment.position, decided_position=decided.position, decided_event_id=decided.event_id,
        occurred_at=payment.occurred_at, amount=data["amount"], currency=data["currency"], customer_id=customer_id,
        agent_id=agent_id, enrollment_id="enr_test", program_id=program_id, terms=terms_ or terms(),
        enrollment_event_id="", enrollment_active=active, sequence=sequence,
        first_payment_at=first_payment_at or payment.occurred_at, customer_cancelled=cancelled,
        support_agent_id=support_agent_id, support_enrollment_id="enr_support" if support_agent_id else "",
        support_terms=support_terms, support_event_id="",
    )


def refund(workspace_id: str, ref: str, amount: int, *, refund_ref: str | None = None, total: int | None = None,
           currency: str = "USD", at: datetime = T0 + timedelta(days=1)) -> Event:
    data: dict[str, Any] = {"payment_ref": ref, "refund_ref": refund_ref or f"re_{next(_seq)}", "amount": amount,
                            "currency": currency}
    if total is not None:
        data["refunded_total"] = total
    return append(workspace_id, "payment.refunded", data, at=at)


def dispute(workspace_id: str, ref: str, outcome: str | None, *, dispute_ref: str = "dp_1",
            at: datetime = T0 + timedelta(days=2)) -> Event:
    return append(workspace_id, "payment.disputed", {"payment_ref": ref, "dispute_ref": dispute_ref,
                                                     "amount": 9900, "currency": "USD", "outcome": outcome}, at=at)


def run_ledger(batch_size: int | None = None) -> int:
    """Run only the ledger projection up to the store head (attribution's checkpoint is moved there).

    Decisions are inserted by hand in these tests, so attribution is taken as caught up.
    """
    ProjectionCheckpoint.objects.update_or_create(name="attribution", defaults={"position": store_head()})
    return projections.run_projection("ledger", batch_size=batch_size)
