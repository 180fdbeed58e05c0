"""Reads of the ledger: entries with their derived status, balances, payouts, the explain trail.

Status is derived here, at read time, as of a moment ``as_of`` (default now); nothing stores it,
so a rebuild at any moment equals the incremental ledger. For one line (a commission, or a
reversal of one, whose commission is its ``base``), in this order:

1. ``paid``      the line is in a payout confirmed at or before ``as_of``;
2. a reversal of a **paid** commission is a clawback: ``earned``/``payable`` (netted by the next payout);
3. ``reversed``  the base commission is fully reversed;
4. ``on_hold``   a dispute on the payment is open;
5. ``pending``   ``as_of`` is before the end of the hold (payment time + hold days);
6. ``earned``, or ``payable`` when the agent's earned balance in that currency (clawbacks
   included) is positive and at least the payout threshold of the agent's terms in that
   currency (the highest threshold among the agent's entries in it).

A reversal of an unpaid commission shares its commission's status, so each status bucket of a
balance holds net money. **Clock**: ``as_of`` compares with business time, the events'
``occurred_at`` — the clock the hold runs on. An entry counts from its ``effective_at`` (the
latest of its payment, its deciding event and its cause), a dispute from its opening to its
resolution, a payout's entries are paid from its confirmation. A backfilled event (a CSV of last
year's payments) therefore changes the balance "as of" last year, as those events determine it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from ingestion.models import Event

from .models import LedgerEntry, LedgerTrail, PaymentDispute, Payout, PayoutLine

STATUSES = ("pending", "earned", "payable", "paid", "reversed", "on_hold")
KINDS = ("referral", "recurring", "support", "reversal")


def entries_with_status(*, workspace_id: str, as_of: datetime) -> QuerySet[LedgerEntry]:
    """The workspace's entries that exist at ``as_of``, annotated with ``ledger_status``.

    ``ledger_status`` is one of paid, reversed, on_hold, pending, earned; ``earned`` is split
    into earned/payable by ``payable_pairs`` (it depends on the agent's whole balance).
    """
    return annotate_status(LedgerEntry.objects.filter(workspace_id=workspace_id, effective_at__lte=as_of), as_of)


def annotate_status(qs: QuerySet[LedgerEntry], as_of: datetime) -> QuerySet[LedgerEntry]:
    """Annotate any entry queryset with ``ledger_status`` at ``as_of`` (see the module docstring)."""
    confirmed = PayoutLine.objects.filter(payout__status=Payout.Status.CONFIRMED, payout__confirmed_at__lte=as_of)
    reversed_sum = (
        LedgerEntry.objects.filter(base_id=OuterRef("base_id"), kind=LedgerEntry.Kind.REVERSAL,
                                   effective_at__lte=as_of)
        .order_by().values("base_id").annotate(total=Sum("amount")).values("total")[:1]
    )
    dispute_open = PaymentDispute.objects.filter(
        workspace_id=OuterRef("workspace_id"), payment_ref=OuterRef("payment_ref"), opened_at__lte=as_of,
    ).filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=as_of))
    return (
        qs.annotate(
            paid_self=Exists(confirmed.filter(entry_id=OuterRef("id"))),
            paid_base=Exists(confirmed.filter(entry_id=OuterRef("base_id"))),
            remaining=F("base_amount") + Coalesce(Subquery(reversed_sum), Value(0)),
            disputed=Exists(dispute_open),
        )
        .annotate(ledger_status=Case(
            When(paid_self=True, then=Value("paid")),
            When(Q(kind=LedgerEntry.Kind.REVERSAL) & Q(paid_base=True), then=Value("earned")),
            When(remaining__lte=0, then=Value("reversed")),
            When(disputed=True, then=Value("on_hold")),
            When(hold_until__gt=as_of, then=Value("pending")),
            default=Value("earned"),
            output_field=CharField(),
        ))
    )


def payable_pairs(*, workspace_id: str, as_of: datetime, agent_id: str | None = None,
                  currency: str | None = None) -> set[tuple[str, str]]:
    """Return the (agent, currency) pairs whose earned entries are payable at ``as_of``."""
    earned = entries_with_status(workspace_id=workspace_id, as_of=as_of).filter(ledger_status="earned")
    scope = LedgerEntry.objects.filter(workspace_id=workspace_id, effective_at__lte=as_of)
    if agent_id:
        earned = earned.filter(agent_id=agent_id)
        scope = scope.filter(agent_id=agent_id)
    if currency:
        earned = earned.filter(currency=currency)
        scope = scope.filter(currency=currency)
    totals = {(r["agent_id"], r["currency"]): r["total"]
              for r in earned.order_by().values("agent_id", "currency").annotate(total=Sum("amount"))}
    if not totals:
        return set()
    thresholds = {(r["agent_id"], r["currency"]): r["threshold"]
                  for r in scope.order_by().values("agent_id", "currency").annotate(threshold=Max("payout_threshold"))}
    return {pair for pair, total in totals.items() if total > 0 and total >= (thresholds.get(pair) or 0)}


def pair_query(pairs: set[tuple[str, str]]) -> Q:
    """A filter matching entries of any of the (agent, currency) pairs (matches nothing if empty)."""
    query = Q(pk__in=[])
    for agent_id, currency in sorted(pairs):
        query |= Q(agent_id=agent_id, currency=currency)
    return query


def commission_list(*, workspace_id: str, as_of: datetime, agent_id: str | None = None,
                    status: str | None = None, currency: str | None = None, kind: str | None = None,
                    payment_ref: str | None = None, customer_id: str | None = None,
                    ) -> tuple[QuerySet[LedgerEntry], set[tuple[str, str]]]:
    """The entries matching the filters, with the payable pairs needed to label them."""
    qs = entries_with_status(workspace_id=workspace_id, as_of=as_of)
    if agent_id:
        qs = qs.filter(agent_id=agent_id)
    if currency:
        qs = qs.filter(currency=currency)
    if kind:
        qs = qs.filter(kind=kind)
    if payment_ref:
        qs = qs.filter(payment_ref=payment_ref)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    pairs = payable_pairs(workspace_id=workspace_id, as_of=as_of, agent_id=agent_id, currency=currency)
    if status == "payable":
        qs = qs.filter(Q(ledger_status="earned") & pair_query(pairs))
    elif status == "earned":
        qs = qs.filter(Q(ledger_status="earned") & ~pair_query(pairs))
    elif status:
        qs = qs.filter(ledger_status=status)
    return qs, pairs


def entry_status(entry: LedgerEntry, pairs: set[tuple[str, str]]) -> str:
    """The public status of an annotated entry."""
    status = entry.ledger_status  # type: ignore[attr-defined]
    if status == "earned" and (entry.agent_id, entry.currency) in pairs:
        return "payable"
    return status


def commission_get(*, workspace_id: str, commission_id: str, as_of: datetime) -> tuple[LedgerEntry, str] | None:
    """One entry and its status at ``as_of`` (``None`` if not in the workspace or not yet existing)."""
    entry = entries_with_status(workspace_id=workspace_id, as_of=as_of).filter(id=commission_id).first()
    if entry is None:
        return None
    pairs = payable_pairs(workspace_id=workspace_id, as_of=as_of, agent_id=entry.agent_id,
                          currency=entry.currency) if entry.ledger_status == "earned" else set()  # type: ignore[attr-defined]
    return entry, entry_status(entry, pairs)


def payout_ids_for(entry_ids: list[str]) -> dict[str, str]:
    """Map entry id → the payout (created or confirmed) that covers it."""
    return dict(PayoutLine.objects.filter(entry_id__in=entry_ids).values_list("entry_id", "payout_id"))


@dataclass
class CurrencyBalance:
    """One agent's money in one currency; the five status buckets add up to ``total``."""

    currency: str
    pending: int = 0
    earned: int = 0
    payable: int = 0
    paid: int = 0
    on_hold: int = 0
    reversed: int = 0
    total: int = 0
    threshold: int = 0
    reversed_lines: int = field(default=0, repr=False)


def agent_balance(*, workspace_id: str, agent_id: str, as_of: datetime) -> list[CurrencyBalance]:
    """Per currency: pending, earned, payable, paid, on hold (net amounts), total, and reversed.

    ``reversed`` is the amount taken back by reversal entries (a positive magnitude, already
    netted in the buckets and the total). ``total`` is the sum of all the agent's entries.
    """
    qs = entries_with_status(workspace_id=workspace_id, as_of=as_of).filter(agent_id=agent_id)
    pairs = payable_pairs(workspace_id=workspace_id, as_of=as_of, agent_id=agent_id)
    balances: dict[str, CurrencyBalance] = {}
    for row in qs.order_by().values("currency", "ledger_status", "kind").annotate(total=Sum("amount")):
        balance = balances.setdefault(row["currency"], CurrencyBalance(row["currency"]))
        status = row["ledger_status"]
        if status == "earned" and (agent_id, row["currency"]) in pairs:
            status = "payable"
        amount = row["total"] or 0
        balance.total += amount
        if row["kind"] == LedgerEntry.Kind.REVERSAL:
            balance.reversed -= amount
        if status == "reversed":
            continue  # a fully reversed commission and its reversals net to zero
        setattr(balance, status, getattr(balance, status) + amount)
    thresholds = (LedgerEntry.objects.filter(workspace_id=workspace_id, agent_id=agent_id, effective_at__lte=as_of)
                  .order_by().values("currency").annotate(threshold=Max("payout_threshold")))
    for row in thresholds:
        if row["currency"] in balances:
            balances[row["currency"]].threshold = row["threshold"] or 0
    return [balances[c] for c in sorted(balances)]


def payout_list(*, workspace_id: str, agent_id: str | None = None, status: str | None = None,
                currency: str | None = None) -> QuerySet[Payout]:
    qs = Payout.objects.filter(workspace_id=workspace_id)
    if agent_id:
        qs = qs.filter(agent_id=agent_id)
    if status:
        qs = qs.filter(status=status)
    if currency:
        qs = qs.filter(currency=currency)
    return qs


def payout_get(*, workspace_id: str, payout_id: str) -> Payout | None:
    return Payout.objects.filter(workspace_id=workspace_id, id=payout_id).first()


def payout_entries(payout: Payout) -> list[LedgerEntry]:
    ids = list(payout.lines.values_list("entry_id", flat=True))
    return list(LedgerEntry.objects.filter(id__in=ids).order_by("created_position", "id"))


# --- the payout gather -----------------------------------------------------------------------


@dataclass(frozen=True)
class Gathered:
    """What a payout for one agent and currency would cover now."""

    entries: list[LedgerEntry]
    amount: int
    threshold: int


def payout_gather(*, workspace_id: str, agent_id: str, currency: str, cutoff: datetime, now: datetime) -> Gathered:
    """The agent's payable lines in ``currency`` up to ``cutoff``, netting clawbacks.

    Statuses are taken now (a dispute or refund after the cut-off still stops a line); the cut-off
    limits which lines are due: hold over by the cut-off and counted by then. A reversal of a
    gathered commission is gathered with it whenever it came; a reversal whose commission sits
    in an unconfirmed payout waits for that payout.
    """
    in_any_payout = PayoutLine.objects.filter(entry_id=OuterRef("id"))
    base_in_open_payout = PayoutLine.objects.filter(entry_id=OuterRef("base_id"), payout__status=Payout.Status.CREATED)
    candidates = list(
        entries_with_status(workspace_id=workspace_id, as_of=now)
        .filter(agent_id=agent_id, currency=currency, ledger_status="earned", hold_until__lte=cutoff)
        .exclude(Exists(in_any_payout)).exclude(Exists(base_in_open_payout))
        .order_by("created_position", "id")
    )
    chosen = [e for e in candidates if e.effective_at <= cutoff]
    chosen_ids = {e.id for e in chosen}
    chosen += [e for e in candidates if e.id not in chosen_ids and e.base_id in chosen_ids]
    chosen.sort(key=lambda e: (e.created_position, e.id))
    threshold = (LedgerEntry.objects.filter(workspace_id=workspace_id, agent_id=agent_id, currency=currency)
                 .aggregate(t=Max("payout_threshold"))["t"] or 0)
    return Gathered(chosen, sum(e.amount for e in chosen), threshold)


# --- explain ---------------------------------------------------------------------------------


def commission_explain(*, workspace_id: str, entry: LedgerEntry) -> dict[str, Any]:
    """The whole trail of an entry: payment, attribution and its events, terms, formula, history.

    Events are returned as ``Event`` rows (the API and the admin format them their own way). The
    terms are those attribution's decision carried into the ledger (the snapshot that applied);
    a support entry's come from the support agent's enrollment, and its attribution events
    include the ``support.assigned`` event that made that agent the customer's support.
    """
    base = entry if entry.base_id == entry.id else (
        LedgerEntry.objects.filter(id=entry.base_id, workspace_id=workspace_id).first() or entry)
    is_support = base.kind == LedgerEntry.Kind.SUPPORT
    decision = _decision(workspace_id, base.payment_ref)
    # A support entry keeps the support.assigned event as its origin; the terms came from the
    # support agent's enrollment.approved event.
    support_event_id = base.enrollment_event_id if is_support else ""
    enrollment_event_id = _approved_event_id(workspace_id, base.enrollment_id) if is_support \
        else base.enrollment_event_id
    events = _events_by_id(workspace_id, [
        base.payment_event_id, base.decided_event_id, enrollment_event_id, entry.cause_event_id,
        entry.created_from_event_id,
    ])
    customer = _customer(workspace_id, base.customer_id)
    ids = [getattr(customer, name, "") for name in ("click_event_id", "signup_event_id", "attributed_event_id")] \
        if customer is not None else []
    ids.append(support_event_id)
    found = _events_by_id(workspace_id, ids)
    attribution_events = [found[i] for i in dict.fromkeys(ids) if i in found]
    if decision is not None:
        terms = decision["support_terms"] if is_support else decision["terms"]
    elif enrollment_event_id in events:
        terms = (events[enrollment_event_id].data or {}).get("terms")
    else:
        terms = None
    return {
        "payment": (events.get(base.payment_event_id)),
        "attribution": {
            "decidedEventId": base.decided_event_id,
            "decidedEvent": (events.get(base.decided_event_id)),
            "customerId": base.customer_id,
            "agentId": decision.get("agent_id", base.agent_id) if decision else base.agent_id,
            "supportAgentId": (decision or {}).get("support_agent_id", ""),
            "enrollmentId": (decision or {}).get("enrollment_id", base.enrollment_id),
            "programId": (decision or {}).get("program_id", base.program_id),
            "sequence": (decision or {}).get("sequence"),
            "firstPaymentAt": (decision or {}).get("first_payment_at"),
            "customerCancelled": (decision or {}).get("customer_cancelled"),
            "via": getattr(customer, "attributed_via", "") if customer else "",
            "detail": getattr(customer, "attribution_detail", "") if customer else "",
            "referralCode": getattr(customer, "referral_code", "") if customer else "",
            "events": attribution_events,
        },
        "enrollment": {
            "enrollmentId": base.enrollment_id,
            "programId": base.program_id,
            "event": (events.get(enrollment_event_id)),
            "terms": terms,
        },
        "formula": base.formula,
        "reversal": None if entry.kind != LedgerEntry.Kind.REVERSAL else {
            "reversesCommissionId": entry.base_id,
            "cause": entry.cause,
            "reason": entry.reason,
            "causeEvent": (events.get(entry.cause_event_id)),
            "formula": entry.formula,
        },
        "history": history_of(workspace_id=workspace_id, base=base),
    }


def history_of(*, workspace_id: str, base: LedgerEntry) -> list[dict[str, Any]]:
    """Every later event that changed the commission's status, in store order."""
    items: list[dict[str, Any]] = []
    trail = LedgerTrail.objects.filter(workspace_id=workspace_id, payment_ref=base.payment_ref).filter(
        Q(entry_id="") | Q(entry_id=base.id))
    for note in trail:
        items.append({"position": note.position, "eventId": note.event_id, "type": note.type,
                      "occurredAt": note.occurred_at, "effect": note.effect})
    family = list(LedgerEntry.objects.filter(base_id=base.id, workspace_id=workspace_id).values_list("id", flat=True))
    lines = PayoutLine.objects.filter(entry_id__in=family).select_related("payout")
    seen: set[tuple[str, str]] = set()
    for line in lines:
        payout = line.payout
        created_key = (payout.id, "created")
        if created_key not in seen:
            seen.add(created_key)
            items.append({"position": payout.created_position, "eventId": payout.created_event_id,
                          "type": "payout.created", "occurredAt": payout.created_at,
                          "effect": f"{line.entry_id} included in payout {payout.id}"})
        if payout.confirmed_event_id and (payout.id, "confirmed") not in seen:
            seen.add((payout.id, "confirmed"))
            items.append({"position": payout.confirmed_position or payout.created_position,
                          "eventId": payout.confirmed_event_id, "type": "payout.confirmed",
                          "occurredAt": payout.confirmed_at,
                          "effect": f"payout {payout.id} confirmed (reference {payout.reference}): paid"})
    items.sort(key=lambda item: (item["position"], item["type"]))
    return items


def _events_by_id(workspace_id: str, ids: list[str]) -> dict[str, Event]:
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    return {e.event_id: e for e in Event.objects.filter(workspace_id=workspace_id, event_id__in=wanted)}


def _customer(workspace_id: str, customer_id: str) -> Any:
    if not customer_id:
        return None
    try:
        from attribution.models import Customer  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - attribution without a customer table
        return None
    return Customer.objects.filter(workspace_id=workspace_id, id=customer_id).first()


def _decision(workspace_id: str, payment_ref: str) -> dict[str, Any] | None:
    from attribution.models import PaymentAttribution

    return (PaymentAttribution.objects.filter(workspace_id=workspace_id, payment_ref=payment_ref)
            .values("agent_id", "support_agent_id", "enrollment_id", "program_id", "sequence", "first_payment_at",
                    "customer_cancelled", "terms", "support_terms").first())


def _approved_event_id(workspace_id: str, enrollment_id: str) -> str:
    """The ``enrollment.approved`` event of an enrollment (whose terms snapshot applied)."""
    from attribution.models import ReferralCode

    if not enrollment_id:
        return ""
    return (ReferralCode.objects.filter(workspace_id=workspace_id, enrollment_id=enrollment_id)
            .values_list("approved_event_id", flat=True).first() or "")


def balances_by_agent(*, workspace_id: str, program_id: str | None = None) -> dict[tuple[str, str], int]:
    """Sum of entries per (agent, currency), optionally only one program's entries."""
    qs = LedgerEntry.objects.filter(workspace_id=workspace_id)
    if program_id:
        qs = qs.filter(program_id=program_id)
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for row in qs.order_by().values("agent_id", "currency").annotate(total=Sum("amount")):
        totals[(row["agent_id"], row["currency"])] = row["total"] or 0
    return dict(totals)
