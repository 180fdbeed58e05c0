"""The ledger as a pure fold: ``LedgerBook.apply(event, decisions)`` (issue #5).

No ORM, no clock. The projector loads into a book exactly the rows a batch touches, applies the
batch, and writes back what changed; the what-if simulation runs one book over the whole store
in memory. Both therefore follow one set of rules, and ids are derived from the store
(``derived_id``), so a rebuild gives every entry the same id.

Decisions taken here:
- **One payment earns once**: a commission's id is derived from (workspace, payment_ref, kind);
  an id already in the ledger is never written again, whatever channel reports the payment.
- **Refunds** keep a cumulative refunded total per payment (``max(previous, refunded_total)`` when
  the provider reports running totals, else previous + this refund; a ``refund_ref`` counts once).
  Each commission's reversal target is ``round_half_up(original × refunded / payment)``, clamped
  to the original; the ledger appends the difference to what is already reversed.
- **Parking**: a refund or lost dispute that arrives before the payment's commission exists is
  kept in the payment's state and reversed the moment the commission appears.
- **Aliases**: a payment first recorded under its natural key (a CSV row) and later reported with
  its own id (``pi_…``) is one payment, under the natural key (``attribution.projector``). A refund
  or dispute naming the id is applied to the natural-key payment when attribution recorded the
  alias at an earlier position than the refund (``load_alias``; the position, not how far
  attribution has run, decides, so a rebuild agrees). A refund or lost dispute naming the id that
  is stored BEFORE the report that creates the alias is parked under the id; at the alias's
  position (``apply(…, aliases=…)``) the payment adopts it: the refunds it does not already count
  (by ``refund_ref``) and a lost dispute, and its commissions are reversed as if they had come
  after. When both refs hold refunds, the payment's refunded total becomes the larger of the two
  totals, not their sum: the same refund reported through two channels must not reverse twice.
  Its disputes are copied to the payment, so an open one puts the payment's entries on hold.
- **Disputes**: an open dispute only puts entries on hold (a read-time status); lost reverses in
  full like a full refund; won releases. The first outcome of a dispute is final.
- **Payouts**: ``payout.created`` is checked again here (the service already checked): every
  entry must exist in the workspace, belong to the agent and currency, be in no other payout, and
  the amounts must add up; otherwise the payout is recorded as ``rejected`` with the reason and
  covers nothing. A refund of a currency other than the payment's is recorded and ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ingestion.ids import derived_id

from . import rules

PAYMENT_REFUNDED = "payment.refunded"
PAYMENT_DISPUTED = "payment.disputed"
COMMISSION_VOIDED = "commission.voided"
PAYOUT_CREATED = "payout.created"
PAYOUT_CONFIRMED = "payout.confirmed"
LEDGER_EVENT_TYPES = frozenset({PAYMENT_REFUNDED, PAYMENT_DISPUTED, COMMISSION_VOIDED, PAYOUT_CREATED,
                                PAYOUT_CONFIRMED})


@dataclass(frozen=True)
class EventView:
    """The parts of a stored event the ledger reads."""

    position: int
    event_id: str
    workspace_id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    actor: str = ""


@dataclass(frozen=True)
class Decision:
    """One ``PaymentAttribution`` row: attribution's immutable verdict on one payment."""

    workspace_id: str
    payment_ref: str
    payment_event_id: str
    payment_position: int
    decided_position: int
    decided_event_id: str
    occurred_at: datetime
    amount: int
    currency: str
    customer_id: str
    agent_id: str
    enrollment_id: str
    program_id: str
    terms: dict[str, Any] | None
    enrollment_event_id: str
    enrollment_active: bool
    sequence: int
    first_payment_at: datetime
    customer_cancelled: bool = False
    support_agent_id: str = ""
    support_enrollment_id: str = ""
    support_terms: dict[str, Any] | None = None
    support_event_id: str = ""


@dataclass
class Entry:
    """Mirror of ``LedgerEntry``."""

    id: str
    workspace_id: str
    kind: str
    amount: int
    currency: str
    agent_id: str
    customer_id: str
    payment_ref: str
    payment_event_id: str
    payment_amount: int
    payment_currency: str
    decided_event_id: str
    created_from_event_id: str
    created_position: int
    occurred_at: datetime
    effective_at: datetime
    hold_days: int
    hold_until: datetime
    payout_threshold: int
    base_id: str
    base_amount: int
    formula: dict[str, Any]
    enrollment_id: str = ""
    program_id: str = ""
    enrollment_event_id: str = ""
    cause_event_id: str = ""
    cause: str = ""
    reason: str = ""


@dataclass
class PaymentState:
    """Mirror of ``LedgerPayment``."""

    id: str
    workspace_id: str
    payment_ref: str
    refunded_total: int = 0
    refund_currency: str = ""
    refund_refs: list[str] = field(default_factory=list)
    last_refund_event_id: str = ""
    last_refund_at: datetime | None = None
    lost: bool = False
    lost_event_id: str = ""
    lost_at: datetime | None = None
    voided_entry_ids: list[str] = field(default_factory=list)


@dataclass
class Dispute:
    """Mirror of ``PaymentDispute``."""

    id: str
    workspace_id: str
    payment_ref: str
    dispute_ref: str
    opened_at: datetime | None = None
    opened_event_id: str = ""
    outcome: str = ""
    resolved_at: datetime | None = None
    resolved_event_id: str = ""


@dataclass
class TrailNote:
    """Mirror of ``LedgerTrail``."""

    workspace_id: str
    payment_ref: str
    entry_id: str
    position: int
    event_id: str
    type: str
    occurred_at: datetime
    effect: str


@dataclass
class PayoutState:
    """Mirror of ``Payout`` (with its lines' entry ids)."""

    id: str
    workspace_id: str
    agent_id: str
    currency: str
    amount: int
    status: str
    created_event_id: str
    created_position: int
    created_at: datetime
    rejection_reason: str = ""
    cutoff: datetime | None = None
    created_by: str = ""
    confirmed_event_id: str = ""
    confirmed_position: int | None = None
    confirmed_at: datetime | None = None
    confirmed_by: str = ""
    reference: str = ""
    entry_ids: list[str] = field(default_factory=list)


def merge_terms(terms: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Return ``terms`` with ``patch`` applied one level deep (what-if: change only what is proposed).

    ``{"recurring": {"percent": "15"}}`` changes the recurring percent and keeps each snapshot's
    duration; a ``referral`` patch replaces the referral rule whole (percent and fixed differ in shape).
    """
    merged = dict(terms)
    for key, value in patch.items():
        if key != "referral" and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def payment_key(workspace_id: str, payment_ref: str) -> str:
    """The ``LedgerPayment`` id of a payment."""
    return derived_id("lpay", workspace_id, payment_ref)


def dispute_key(workspace_id: str, payment_ref: str, dispute_ref: str) -> str:
    return derived_id("dsp", workspace_id, payment_ref, dispute_ref)


def commission_id(workspace_id: str, payment_ref: str, kind: str) -> str:
    """A commission's id: one per (payment, kind), so a payment reported twice earns once.

    Referral and recurring share the "agent" slot: a payment is either the first or a later one.
    """
    slot = "support" if kind == rules.SUPPORT else "agent"
    return derived_id("com", workspace_id, payment_ref, slot)


def reversal_id(original_id: str, event_id: str) -> str:
    return derived_id("com", original_id, "reversal", event_id)


class LedgerBook:
    """The ledger state a batch needs, the rules that change it, and the list of changes.

    Load rows with ``load_*`` (they are not reported as changes), call ``apply`` for each event
    in store order, then persist ``new_entries``, ``changed_payments()``, ``changed_disputes()``,
    ``new_trail``, ``changed_payouts()`` and ``new_payout_lines``.
    """

    def __init__(self, *, terms_override: dict[str, dict[str, Any]] | None = None,
                 support_override: dict[str, dict[str, Any]] | None = None) -> None:
        # What-if: program_id → replacement terms for decisions (and support decisions) of it.
        self.terms_override = terms_override or {}
        self.support_override = support_override or {}
        self.entries: dict[str, Entry] = {}
        self.originals: dict[tuple[str, str], list[str]] = {}
        self.reversed: dict[str, int] = {}
        self.voided: set[str] = set()
        self.payments: dict[tuple[str, str], PaymentState] = {}
        self.disputes: dict[tuple[str, str, str], Dispute] = {}
        self.payouts: dict[str, PayoutState] = {}
        self.payout_of: dict[str, str] = {}
        # (workspace, alias ref) → (the payment's ref, position of the event that made it an alias).
        self.aliases: dict[tuple[str, str], tuple[str, int]] = {}
        self.new_entries: list[Entry] = []
        self.new_trail: list[TrailNote] = []
        self.new_payout_lines: list[tuple[str, str, str, int]] = []  # payout, workspace, entry, amount
        self._dirty_payments: set[tuple[str, str]] = set()
        self._dirty_disputes: set[tuple[str, str, str]] = set()
        self._dirty_payouts: set[str] = set()

    # --- loading ---------------------------------------------------------------------------

    def load_entry(self, entry: Entry) -> None:
        if entry.id in self.entries:
            return
        self.entries[entry.id] = entry
        self._index(entry)

    def load_payment(self, state: PaymentState) -> None:
        self.payments[(state.workspace_id, state.payment_ref)] = state
        self.voided.update(state.voided_entry_ids)

    def load_dispute(self, dispute: Dispute) -> None:
        self.disputes[(dispute.workspace_id, dispute.payment_ref, dispute.dispute_ref)] = dispute

    def load_payout(self, payout: PayoutState) -> None:
        self.payouts[payout.id] = payout

    def load_payout_line(self, entry_id: str, payout_id: str) -> None:
        self.payout_of[entry_id] = payout_id

    def load_alias(self, workspace_id: str, alias_ref: str, payment_ref: str, position: int) -> None:
        """``alias_ref`` names the payment ``payment_ref`` for events stored after ``position``."""
        self.aliases[(workspace_id, alias_ref)] = (payment_ref, position)

    # --- changes ---------------------------------------------------------------------------

    def changed_payments(self) -> list[PaymentState]:
        return [self.payments[key] for key in sorted(self._dirty_payments)]

    def changed_disputes(self) -> list[Dispute]:
        return [self.disputes[key] for key in sorted(self._dirty_disputes)]

    def changed_payouts(self) -> list[PayoutState]:
        return [self.payouts[key] for key in sorted(self._dirty_payouts)]

    # --- applying --------------------------------------------------------------------------

    def apply(self, event: EventView, decisions: Iterable[Decision] = (),
              aliases: Iterable[tuple[str, str]] = ()) -> None:
        """Apply one event: the attribution decisions taken at its position, the aliases it made
        (``(alias_ref, payment_ref)``: attribution found it is another report of that payment),
        then itself."""
        for decision in decisions:
            self._decision(decision, event)
        for alias_ref, payment_ref in aliases:
            self._alias_made(event, alias_ref, payment_ref)
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event)

    def _alias_made(self, event: EventView, alias_ref: str, payment_ref: str) -> None:
        """The payment adopts what was parked under its alias before the alias existed."""
        ws = event.workspace_id
        self.aliases[(ws, alias_ref)] = (payment_ref, event.position)
        self._adopt_disputes(ws, alias_ref, payment_ref)
        parked = self.payments.get((ws, alias_ref))
        if parked is None or (not parked.refund_refs and not parked.lost):
            return
        state = self._payment(ws, payment_ref)
        adopted: list[str] = []
        fresh = [ref for ref in parked.refund_refs if ref not in state.refund_refs]
        if fresh:
            expected = self._payment_currency(ws, payment_ref) or state.refund_currency
            if expected and parked.refund_currency and parked.refund_currency != expected:
                self._note(event, payment_ref, f"ignored: the refunds of {alias_ref} are in "
                                               f"{parked.refund_currency}, the payment in {expected}")
            else:
                previous = state.refunded_total
                state.refunded_total = max(previous, parked.refunded_total)
                state.refund_refs = [*state.refund_refs, *fresh]
                state.refund_currency = state.refund_currency or parked.refund_currency
                if state.last_refund_at is None or (parked.last_refund_at or event.occurred_at) > state.last_refund_at:
                    state.last_refund_event_id = parked.last_refund_event_id
                    state.last_refund_at = parked.last_refund_at
                adopted.append(f"refunded total {previous} → {state.refunded_total} {state.refund_currency}")
        if parked.lost and not state.lost:
            state.lost = True
            state.lost_event_id = parked.lost_event_id
            state.lost_at = parked.lost_at
            adopted.append("the lost dispute")
        if not adopted:
            return
        self._dirty_payments.add((ws, payment_ref))
        made = self._reconcile_parked(state, event)
        self._note(event, payment_ref, f"{alias_ref} is this payment: adopted what was reported under it "
                                       f"before ({'; '.join(adopted)}); " + _reversal_words(made))

    def _decision(self, decision: Decision, event: EventView) -> None:
        terms = decision.terms
        if terms and decision.program_id in self.terms_override:
            terms = merge_terms(terms, self.terms_override[decision.program_id])
        support_terms = decision.support_terms
        support_program = (support_terms or {}).get("program_id", "")
        if support_terms and support_program in self.support_override:
            support_terms = merge_terms(support_terms, self.support_override[support_program])
        facts = rules.PaymentFacts(
            amount=decision.amount, currency=decision.currency, occurred_at=decision.occurred_at,
            sequence=decision.sequence, first_payment_at=decision.first_payment_at,
            agent_id=decision.agent_id, terms=terms, enrollment_active=decision.enrollment_active,
            customer_cancelled=decision.customer_cancelled, support_agent_id=decision.support_agent_id,
            support_terms=support_terms,
        )
        effective = max(decision.occurred_at, event.occurred_at)
        created = False
        for earned in rules.commissions_for_payment(facts):
            entry_id = commission_id(decision.workspace_id, decision.payment_ref, earned.kind)
            if entry_id in self.entries:
                continue
            is_support = earned.kind == rules.SUPPORT
            applied_terms = support_terms if is_support else terms
            hold_days = rules.hold_days_of(applied_terms)
            entry = Entry(
                id=entry_id, workspace_id=decision.workspace_id, kind=earned.kind, amount=earned.amount,
                currency=earned.currency, agent_id=earned.agent_id, customer_id=decision.customer_id,
                payment_ref=decision.payment_ref, payment_event_id=decision.payment_event_id,
                payment_amount=decision.amount, payment_currency=decision.currency,
                decided_event_id=decision.decided_event_id, created_from_event_id=event.event_id,
                created_position=event.position, occurred_at=decision.occurred_at, effective_at=effective,
                hold_days=hold_days, hold_until=rules.hold_until(decision.occurred_at, hold_days),
                payout_threshold=rules.threshold_of(applied_terms, earned.currency),
                base_id=entry_id, base_amount=earned.amount, formula=dict(earned.formula),
                enrollment_id=decision.support_enrollment_id if is_support else decision.enrollment_id,
                program_id=str((applied_terms or {}).get("program_id") or ("" if is_support else decision.program_id)),
                enrollment_event_id=decision.support_event_id if is_support else decision.enrollment_event_id,
            )
            self._add(entry)
            created = True
        state = self.payments.get((decision.workspace_id, decision.payment_ref))
        if created and state is not None:
            # A refund or lost dispute was parked for this payment: apply it now.
            self._reconcile_parked(state, event)

    def _reconcile_parked(self, state: PaymentState, event: EventView) -> list[Entry]:
        """Reverse what the payment's recorded refunds or lost dispute require, caused by them."""
        if state.lost:
            cause, cause_event, cause_at = "dispute", state.lost_event_id, state.lost_at
        else:
            cause, cause_event, cause_at = "refund", state.last_refund_event_id, state.last_refund_at
        return self._reconcile(state.workspace_id, state.payment_ref, event, cause=cause,
                               cause_event_id=cause_event, cause_at=cause_at or event.occurred_at)

    def _adopt_disputes(self, ws: str, alias_ref: str, payment_ref: str) -> None:
        """Disputes recorded under the alias become the payment's too (an open one puts its entries
        on hold; a later outcome naming either ref resolves the same dispute)."""
        for (dws, ref, dispute_ref), parked in sorted(self.disputes.items()):
            key = (ws, payment_ref, dispute_ref)
            if dws != ws or ref != alias_ref or key in self.disputes:
                continue
            self.disputes[key] = replace(parked, id=dispute_key(*key), payment_ref=payment_ref)
            self._dirty_disputes.add(key)

    def _refund(self, event: EventView) -> None:
        data = event.data
        ref = self._canonical(event, _text(data.get("payment_ref")))
        if not ref:
            return
        amount = data.get("amount")
        total = data.get("refunded_total")
        currency = _text(data.get("currency")).upper()
        refund_ref = _text(data.get("refund_ref")) or event.event_id
        state = self._payment(event.workspace_id, ref)
        if not _is_amount(amount) or (total is not None and not _is_amount(total)):
            self._note(event, ref, "ignored: the refund amount is not a non-negative integer")
            return
        if refund_ref in state.refund_refs:
            self._note(event, ref, f"ignored: refund {refund_ref} was already counted")
            return
        payment_currency = self._payment_currency(event.workspace_id, ref)
        expected = payment_currency or state.refund_currency
        if expected and currency and currency != expected:
            self._note(event, ref, f"ignored: refund in {currency}, payment in {expected}")
            return
        previous = state.refunded_total
        state.refunded_total = max(previous, total) if total is not None else previous + amount
        state.refund_refs = [*state.refund_refs, refund_ref]
        state.refund_currency = state.refund_currency or currency
        state.last_refund_event_id = event.event_id
        state.last_refund_at = event.occurred_at
        self._dirty_payments.add((event.workspace_id, ref))
        made = self._reconcile(event.workspace_id, ref, event, cause="refund", cause_event_id=event.event_id,
                               cause_at=event.occurred_at)
        self._note(event, ref, f"refunded total {previous} → {state.refunded_total} {currency or expected}; "
                               + _reversal_words(made))

    def _dispute(self, event: EventView) -> None:
        data = event.data
        ref = self._canonical(event, _text(data.get("payment_ref")))
        if not ref:
            return
        dispute_ref = _text(data.get("dispute_ref")) or ref
        outcome = data.get("outcome")
        key = (event.workspace_id, ref, dispute_ref)
        dispute = self.disputes.get(key)
        if dispute is None:
            dispute = Dispute(id=dispute_key(*key), workspace_id=event.workspace_id, payment_ref=ref,
                              dispute_ref=dispute_ref)
            self.disputes[key] = dispute
        if outcome in (None, "", "opened", "open"):
            if dispute.opened_at is None or event.occurred_at < dispute.opened_at:
                dispute.opened_at = event.occurred_at
                dispute.opened_event_id = event.event_id
            self._dirty_disputes.add(key)
            self._note(event, ref, f"dispute {dispute_ref} opened: the payment's entries are on hold"
                       + (" (already resolved)" if dispute.outcome else ""))
            return
        if outcome not in ("won", "lost"):
            self._note(event, ref, f"ignored: unknown dispute outcome {outcome!r}")
            return
        if dispute.outcome:
            self._note(event, ref, f"ignored: dispute {dispute_ref} was already {dispute.outcome}")
            return
        dispute.outcome = outcome
        dispute.resolved_at = event.occurred_at
        dispute.resolved_event_id = event.event_id
        self._dirty_disputes.add(key)
        if outcome == "won":
            self._note(event, ref, f"dispute {dispute_ref} won: entries released")
            return
        state = self._payment(event.workspace_id, ref)
        if not state.lost:
            state.lost = True
            state.lost_event_id = event.event_id
            state.lost_at = event.occurred_at
            self._dirty_payments.add((event.workspace_id, ref))
        made = self._reconcile(event.workspace_id, ref, event, cause="dispute", cause_event_id=event.event_id,
                               cause_at=event.occurred_at)
        self._note(event, ref, f"dispute {dispute_ref} lost: " + _reversal_words(made))

    def _void(self, event: EventView) -> None:
        entry_id = _text(event.data.get("entry_id"))
        entry = self.entries.get(entry_id)
        if entry is None or entry.workspace_id != event.workspace_id:
            return
        if entry.kind == rules.REVERSAL or entry_id in self.voided:
            self._note(event, entry.payment_ref, f"ignored: {entry_id} cannot be voided", entry_id=entry_id)
            return
        self.voided.add(entry_id)
        # Kept on the payment's state row too: when the entry was already fully reversed (a lost
        # dispute, a full refund) the void writes no reversal, and a later batch, or a rebuild
        # in other batches, must still know it was voided.
        state = self._payment(event.workspace_id, entry.payment_ref)
        state.voided_entry_ids = [*state.voided_entry_ids, entry_id]
        self._dirty_payments.add((event.workspace_id, entry.payment_ref))
        reason = _text(event.data.get("reason"))
        made = self._reconcile(event.workspace_id, entry.payment_ref, event, cause="void",
                               cause_event_id=event.event_id, cause_at=event.occurred_at, only=entry_id,
                               reason=reason)
        self._note(event, entry.payment_ref, f"{entry_id} voided ({reason or 'no reason'}): "
                   + _reversal_words(made), entry_id=entry_id)

    def _payout_created(self, event: EventView) -> None:
        data = event.data
        payout_id = _text(data.get("payout_id"))
        if not payout_id or payout_id in self.payouts:
            return
        entry_ids = data.get("entry_ids")
        entry_ids = [str(e) for e in entry_ids] if isinstance(entry_ids, list) else []
        amount = data.get("amount")
        payout = PayoutState(
            id=payout_id, workspace_id=event.workspace_id, agent_id=_text(data.get("agent_id")),
            currency=_text(data.get("currency")).upper(), amount=amount if _is_int(amount) else 0,
            status="created", created_event_id=event.event_id, created_position=event.position,
            created_at=event.occurred_at, cutoff=_parse_time(data.get("cutoff")), created_by=event.actor,
            entry_ids=entry_ids,
        )
        problem = self._payout_problem(payout, amount)
        if problem:
            payout.status = "rejected"
            payout.rejection_reason = problem
            payout.entry_ids = []
        else:
            for entry_id in entry_ids:
                self.payout_of[entry_id] = payout_id
                self.new_payout_lines.append((payout_id, event.workspace_id, entry_id, self.entries[entry_id].amount))
        self.payouts[payout_id] = payout
        self._dirty_payouts.add(payout_id)

    def _payout_problem(self, payout: PayoutState, amount: object) -> str:
        if not payout.entry_ids:
            return "no entries"
        if len(set(payout.entry_ids)) != len(payout.entry_ids):
            return "an entry is listed twice"
        total = 0
        for entry_id in payout.entry_ids:
            entry = self.entries.get(entry_id)
            if entry is None or entry.workspace_id != payout.workspace_id:
                return f"unknown entry {entry_id}"
            if entry.agent_id != payout.agent_id or entry.currency != payout.currency:
                return f"{entry_id} is not the agent's entry in {payout.currency}"
            if entry_id in self.payout_of:
                return f"{entry_id} is already in payout {self.payout_of[entry_id]}"
            total += entry.amount
        if not _is_int(amount) or total != amount:
            return f"amount {amount} does not equal the entries' sum {total}"
        if total <= 0:
            return "the net amount is not positive"
        return ""

    def _payout_confirmed(self, event: EventView) -> None:
        payout = self.payouts.get(_text(event.data.get("payout_id")))
        if payout is None or payout.workspace_id != event.workspace_id or payout.status != "created":
            return
        payout.status = "confirmed"
        payout.confirmed_event_id = event.event_id
        payout.confirmed_position = event.position
        payout.confirmed_at = max(event.occurred_at, payout.created_at)
        payout.confirmed_by = event.actor
        payout.reference = _text(event.data.get("reference"))
        self._dirty_payouts.add(payout.id)

    # --- helpers ---------------------------------------------------------------------------

    def _canonical(self, event: EventView, ref: str) -> str:
        """The ref the ledger keeps the payment under: the alias's payment if the alias came earlier."""
        alias = self.aliases.get((event.workspace_id, ref))
        if alias is not None and alias[1] < event.position:
            return alias[0]
        return ref

    def _reconcile(self, workspace_id: str, payment_ref: str, event: EventView, *, cause: str,
                   cause_event_id: str, cause_at: datetime, only: str | None = None, reason: str = "") -> list[Entry]:
        """Append, for each commission of the payment, the reversal its refunds/disputes/void now require."""
        state = self.payments.get((workspace_id, payment_ref))
        made: list[Entry] = []
        # Sorted: the order rows were loaded in must not change the trail's wording.
        for original_id in sorted(self.originals.get((workspace_id, payment_ref), [])):
            if only is not None and original_id != only:
                continue
            original = self.entries[original_id]
            refunded = 0
            lost = False
            if state is not None:
                lost = state.lost
                if not state.refund_currency or state.refund_currency == original.payment_currency:
                    refunded = state.refunded_total
            due = rules.reversal_due(
                original.amount, already_reversed=self.reversed.get(original_id, 0),
                payment_amount=original.payment_amount, refunded_total=refunded,
                full=lost or original_id in self.voided,
            )
            if due <= 0:
                continue
            full = lost or original_id in self.voided
            entry = replace(
                original, id=reversal_id(original_id, event.event_id), kind=rules.REVERSAL, amount=-due,
                created_from_event_id=event.event_id, created_position=event.position,
                # A parked refund takes effect when the commission does, never before it.
                occurred_at=cause_at, effective_at=max(cause_at, original.effective_at),
                cause_event_id=cause_event_id, cause=cause, reason=reason,
                formula={
                    "kind": rules.REVERSAL, "type": "full" if full else "proportional",
                    "cause": cause, "original": original.amount, "paymentAmount": original.payment_amount,
                    "refundedTotal": refunded, "alreadyReversed": self.reversed.get(original_id, 0),
                    "target": self.reversed.get(original_id, 0) + due, "result": -due, "currency": original.currency,
                    "expression": (
                        f"full reversal of {original.amount}" if full else
                        f"round_half_up({original.amount} × {refunded} / {original.payment_amount}) − "
                        f"{self.reversed.get(original_id, 0)} = {due}"
                    ),
                },
            )
            self._add(entry)
            made.append(entry)
        return made

    def _add(self, entry: Entry) -> None:
        self.entries[entry.id] = entry
        self.new_entries.append(entry)
        self._index(entry)

    def _index(self, entry: Entry) -> None:
        if entry.kind == rules.REVERSAL:
            self.reversed[entry.base_id] = self.reversed.get(entry.base_id, 0) - entry.amount
            if entry.cause == "void":
                self.voided.add(entry.base_id)
        else:
            self.originals.setdefault((entry.workspace_id, entry.payment_ref), []).append(entry.id)

    def _payment(self, workspace_id: str, payment_ref: str) -> PaymentState:
        key = (workspace_id, payment_ref)
        state = self.payments.get(key)
        if state is None:
            state = PaymentState(id=payment_key(workspace_id, payment_ref), workspace_id=workspace_id,
                                 payment_ref=payment_ref)
            self.payments[key] = state
        return state

    def _payment_currency(self, workspace_id: str, payment_ref: str) -> str:
        for entry_id in self.originals.get((workspace_id, payment_ref), []):
            return self.entries[entry_id].payment_currency
        return ""

    def _note(self, event: EventView, payment_ref: str, effect: str, *, entry_id: str = "") -> None:
        self.new_trail.append(TrailNote(event.workspace_id, payment_ref, entry_id, event.position, event.event_id,
                                        event.type, event.occurred_at, effect))


_HANDLERS = {
    PAYMENT_REFUNDED: LedgerBook._refund,
    PAYMENT_DISPUTED: LedgerBook._dispute,
    COMMISSION_VOIDED: LedgerBook._void,
    PAYOUT_CREATED: LedgerBook._payout_created,
    PAYOUT_CONFIRMED: LedgerBook._payout_confirmed,
}


def _reversal_words(made: list[Entry]) -> str:
    if not made:
        return "nothing to reverse (yet)"
    return "reversed " + ", ".join(f"{-e.amount} {e.currency} of {e.base_id}" for e in made)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_amount(value: object) -> bool:
    return _is_int(value) and value >= 0  # type: ignore[operator]


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
