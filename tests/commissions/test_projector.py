"""The ledger projector, from hand-made attribution decisions and money events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from commissions import selectors
from commissions.models import LedgerEntry, LedgerPayment, LedgerTrail, PaymentDispute, Payout
from ingestion import projections

from .support import T0, append, decide, dispute, pay, refund, run_ledger, terms

pytestmark = pytest.mark.django_db

LATER = T0 + timedelta(days=60)


def entries(ws: str, ref: str | None = None) -> list[tuple[str, int]]:
    qs = LedgerEntry.objects.filter(workspace_id=ws).order_by("created_position", "kind", "id")
    if ref:
        qs = qs.filter(payment_ref=ref)
    return list(qs.values_list("kind", "amount"))


def status_of(ws: str, entry_id: str, as_of=LATER) -> str:
    found = selectors.commission_get(workspace_id=ws, commission_id=entry_id, as_of=as_of)
    assert found is not None
    return found[1]


@pytest.mark.smoke
def test_attributed_first_payment_earns_one_referral_entry(tenant) -> None:
    """A decision at the payment's position creates the referral entry with its formula."""
    ws = tenant.workspace.id
    payment = pay(ws, "pi_1")
    decide(payment)
    run_ledger()
    entry = LedgerEntry.objects.get(workspace_id=ws)
    assert (entry.kind, entry.amount, entry.currency, entry.agent_id) == ("referral", 1980, "USD", "agt_a")
    assert entry.id.startswith("com_")
    assert entry.created_from_event_id == payment.event_id
    assert entry.formula["base"] == 9900
    assert entry.formula["rate"] == "20"
    assert entry.formula["result"] == 1980
    assert entry.hold_until == T0 + timedelta(days=14)


def test_decision_taken_at_a_later_signup_creates_the_entry_then(tenant) -> None:
    """A payment attributed later (signup after payment) earns at the signup's position, paid-at the payment."""
    ws = tenant.workspace.id
    payment = pay(ws, "pi_1")
    signup = append(ws, "customer.created", {"email": "x@example.com"}, at=T0 + timedelta(days=3))
    decide(payment, decided=signup)
    run_ledger()
    entry = LedgerEntry.objects.get(workspace_id=ws)
    assert entry.created_from_event_id == signup.event_id
    assert entry.occurred_at == T0  # the hold counts from the payment
    assert entry.effective_at == T0 + timedelta(days=3)


def test_support_agent_gets_a_separate_entry(tenant) -> None:
    """A payment with a support agent creates a referral entry and a support entry."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"), support_agent_id="agt_s", support_terms=terms(support="5"))
    run_ledger()
    assert sorted(LedgerEntry.objects.values_list("kind", "agent_id", "amount")) == [
        ("referral", "agt_a", 1980), ("support", "agt_s", 495)]


def test_recurring_payment_after_the_cap_creates_no_entry(tenant) -> None:
    """The 13th monthly payment under a 12-month cap creates no entry."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_13", at=T0.replace(year=2025)), sequence=13, first_payment_at=T0)
    decide(pay(ws, "pi_12", at=T0.replace(year=2024, month=12)), sequence=12, first_payment_at=T0)
    run_ledger()
    assert entries(ws) == [("recurring", 990)]


def test_full_refund_appends_an_exact_reversal(tenant) -> None:
    """A full refund appends one reversal of exactly the commission; the entry is never edited."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1", amount=9907))
    refund(ws, "pi_1", 9907)
    run_ledger()
    assert entries(ws) == [("referral", 1981), ("reversal", -1981)]
    original = LedgerEntry.objects.get(kind="referral")
    assert status_of(ws, original.id) == "reversed"


def test_partial_refunds_reverse_proportionally_and_never_exceed(tenant) -> None:
    """Three partial refunds reverse by cumulative share; their sum equals the original at 100 %."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1", amount=9900))
    refund(ws, "pi_1", 3300)
    refund(ws, "pi_1", 3300)
    run_ledger()
    assert entries(ws) == [("referral", 1980), ("reversal", -660), ("reversal", -660)]
    refund(ws, "pi_1", 3300)
    run_ledger()
    assert sum(a for _, a in entries(ws)) == 0


def test_running_refund_totals_never_double_count(tenant) -> None:
    """A provider's running refunded_total is taken as max(previous, total), not added."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    refund(ws, "pi_1", 4950, total=4950)
    refund(ws, "pi_1", 4950, total=4950, refund_ref="re_again_same_total")
    run_ledger()
    assert entries(ws) == [("referral", 1980), ("reversal", -990)]
    assert LedgerPayment.objects.get().refunded_total == 4950


def test_a_refund_ref_counts_once(tenant) -> None:
    """The same refund reported twice (same refund_ref) reverses once."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    refund(ws, "pi_1", 4950, refund_ref="re_1")
    refund(ws, "pi_1", 4950, refund_ref="re_1")
    run_ledger()
    assert entries(ws) == [("referral", 1980), ("reversal", -990)]


def test_refund_before_the_commission_is_parked_and_applied_when_it_appears(tenant) -> None:
    """A refund that arrives before the payment is attributed is reversed as soon as the commission exists."""
    ws = tenant.workspace.id
    payment = pay(ws, "pi_1")
    refund(ws, "pi_1", 4950)
    run_ledger()
    assert entries(ws) == []
    signup = append(ws, "customer.created", {"email": "late@example.com"}, at=T0 + timedelta(days=3))
    decide(payment, decided=signup)
    run_ledger()
    assert entries(ws) == [("referral", 1980), ("reversal", -990)]
    reversal = LedgerEntry.objects.get(kind="reversal")
    assert reversal.created_from_event_id == signup.event_id
    assert reversal.cause == "refund"


def test_refund_in_another_currency_is_recorded_and_ignored(tenant) -> None:
    """A refund whose currency differs from the payment's reverses nothing."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    refund(ws, "pi_1", 4950, currency="EUR")
    run_ledger()
    assert entries(ws) == [("referral", 1980)]


def test_open_dispute_puts_entries_on_hold_and_won_releases(tenant) -> None:
    """An open dispute holds the payment's entries (whatever their age); winning it releases them."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    dispute(ws, "pi_1", None, at=T0 + timedelta(days=20))
    run_ledger()
    entry_id = LedgerEntry.objects.get().id
    assert status_of(ws, entry_id) == "on_hold"
    assert status_of(ws, entry_id, as_of=T0 + timedelta(days=19)) == "payable"
    dispute(ws, "pi_1", "won", at=T0 + timedelta(days=30))
    run_ledger()
    assert status_of(ws, entry_id) == "payable"
    assert status_of(ws, entry_id, as_of=T0 + timedelta(days=25)) == "on_hold"


def test_lost_dispute_reverses_in_full(tenant) -> None:
    """A lost dispute appends a full reversal, like a full refund."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    dispute(ws, "pi_1", None)
    dispute(ws, "pi_1", "lost", at=T0 + timedelta(days=5))
    run_ledger()
    assert entries(ws) == [("referral", 1980), ("reversal", -1980)]
    assert LedgerEntry.objects.get(kind="reversal").cause == "dispute"
    assert PaymentDispute.objects.get().outcome == "lost"


def test_lost_dispute_before_the_commission_reverses_it_when_it_appears(tenant) -> None:
    """A dispute lost before the payment earns is applied to the commission when it is created."""
    ws = tenant.workspace.id
    payment = pay(ws, "pi_1")
    dispute(ws, "pi_1", "lost")
    signup = append(ws, "customer.created", {"email": "late@example.com"}, at=T0 + timedelta(days=3))
    decide(payment, decided=signup)
    run_ledger()
    assert entries(ws) == [("referral", 1980), ("reversal", -1980)]


def test_void_reverses_the_remaining_amount(tenant) -> None:
    """commission.voided reverses what remains after earlier partial refunds."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    refund(ws, "pi_1", 4950)
    run_ledger()
    entry_id = LedgerEntry.objects.get(kind="referral").id
    append(ws, "commission.voided", {"entry_id": entry_id, "reason": "test order"}, source="operator",
           at=T0 + timedelta(days=3))
    run_ledger()
    assert entries(ws) == [("referral", 1980), ("reversal", -990), ("reversal", -990)]
    assert LedgerEntry.objects.filter(cause="void").get().reason == "test order"


@pytest.mark.parametrize("batch_size", [1, 100])
def test_a_second_void_of_a_fully_refunded_entry_is_ignored_in_any_batches(tenant, batch_size) -> None:
    """The first void has nothing left to reverse and writes no reversal; the second is still ignored.

    Found by the rebuild-equals-incremental property: run event by event the ledger had forgotten
    the first void by the second (nothing in its tables said so) and voided again.
    """
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    refund(ws, "pi_1", 9900)
    run_ledger()
    entry_id = LedgerEntry.objects.get(kind="referral").id
    for day in (3, 4):
        append(ws, "commission.voided", {"entry_id": entry_id, "reason": "test"}, source="operator",
               at=T0 + timedelta(days=day))
    run_ledger(batch_size=batch_size)
    notes = list(LedgerTrail.objects.filter(workspace_id=ws, type="commission.voided")
                 .order_by("position").values_list("effect", flat=True))
    assert notes == [f"{entry_id} voided (test): nothing to reverse (yet)", f"ignored: {entry_id} cannot be voided"]
    assert entries(ws) == [("referral", 1980), ("reversal", -1980)]


def test_payout_created_in_the_same_batch_as_its_entries_is_accepted(tenant) -> None:
    """A payout referencing entries created earlier in the same batch covers them."""
    from ingestion.ids import derived_id

    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    entry_id = derived_id("com", ws, "pi_1", "agent")
    append(ws, "payout.created", {"payout_id": "pay_1", "agent_id": "agt_a", "currency": "USD",
                                  "entry_ids": [entry_id], "amount": 1980}, source="operator", at=LATER)
    append(ws, "payout.confirmed", {"payout_id": "pay_1", "reference": "wire 1"}, source="operator", at=LATER)
    run_ledger()
    payout = Payout.objects.get()
    assert (payout.status, payout.reference, payout.amount) == ("confirmed", "wire 1", 1980)
    assert status_of(ws, entry_id, as_of=LATER + timedelta(seconds=1)) == "paid"
    assert status_of(ws, entry_id, as_of=LATER - timedelta(seconds=1)) == "payable"


def test_payout_with_a_wrong_amount_or_taken_entry_is_rejected(tenant) -> None:
    """The projector refuses a payout whose amount is wrong, or whose entry is in another payout."""
    from ingestion.ids import derived_id

    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    entry_id = derived_id("com", ws, "pi_1", "agent")
    op = {"source": "operator", "at": LATER}
    append(ws, "payout.created", {"payout_id": "pay_bad", "agent_id": "agt_a", "currency": "USD",
                                  "entry_ids": [entry_id], "amount": 9999}, **op)
    append(ws, "payout.created", {"payout_id": "pay_ok", "agent_id": "agt_a", "currency": "USD",
                                  "entry_ids": [entry_id], "amount": 1980}, **op)
    append(ws, "payout.created", {"payout_id": "pay_twice", "agent_id": "agt_a", "currency": "USD",
                                  "entry_ids": [entry_id], "amount": 1980}, **op)
    run_ledger()
    statuses = dict(Payout.objects.values_list("id", "status"))
    assert statuses == {"pay_bad": "rejected", "pay_ok": "created", "pay_twice": "rejected"}
    assert "already in payout pay_ok" in Payout.objects.get(id="pay_twice").rejection_reason


def test_refund_after_payout_leaves_a_clawback(tenant) -> None:
    """Refunding a paid commission appends a reversal that counts against the agent (negative payable)."""
    from ingestion.ids import derived_id

    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    entry_id = derived_id("com", ws, "pi_1", "agent")
    append(ws, "payout.created", {"payout_id": "pay_1", "agent_id": "agt_a", "currency": "USD",
                                  "entry_ids": [entry_id], "amount": 1980}, source="operator", at=LATER)
    append(ws, "payout.confirmed", {"payout_id": "pay_1", "reference": "wire 1"}, source="operator", at=LATER)
    refund(ws, "pi_1", 9900, at=LATER + timedelta(days=1))
    run_ledger()
    later = LATER + timedelta(days=2)
    assert status_of(ws, entry_id, as_of=later) == "paid"
    reversal = LedgerEntry.objects.get(kind="reversal")
    assert status_of(ws, reversal.id, as_of=later) == "earned"  # a negative balance is not payable
    [usd] = selectors.agent_balance(workspace_id=ws, agent_id="agt_a", as_of=later)
    assert (usd.paid, usd.earned, usd.total, usd.reversed) == (1980, -1980, 0, 1980)


def test_pending_until_the_hold_ends_then_payable(tenant) -> None:
    """An entry is pending during the hold from the payment time, then payable (threshold 0)."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    run_ledger()
    entry_id = LedgerEntry.objects.get().id
    assert status_of(ws, entry_id, as_of=T0 + timedelta(days=13)) == "pending"
    assert status_of(ws, entry_id, as_of=T0 + timedelta(days=14)) == "payable"


def test_earned_below_threshold_becomes_payable_when_balance_reaches_it(tenant) -> None:
    """Entries stay 'earned' until the agent's earned balance in the currency reaches the threshold."""
    ws = tenant.workspace.id
    t = terms(threshold={"USD": 3000})
    decide(pay(ws, "pi_1"), terms_=t)
    run_ledger()
    first = LedgerEntry.objects.get().id
    assert status_of(ws, first) == "earned"
    decide(pay(ws, "pi_2", at=T0 + timedelta(days=1)), terms_=t, customer_id="cus_2")
    run_ledger()
    assert status_of(ws, first) == "payable"


def test_one_payment_reported_twice_earns_once(tenant) -> None:
    """A payment reported again (another channel, same payment_ref) earns nothing more."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    pay(ws, "pi_1")  # the same payment through another channel: attribution makes no second decision
    run_ledger()
    assert entries(ws) == [("referral", 1980)]


def test_reset_and_replay_reproduces_the_same_rows(tenant) -> None:
    """Rebuilding the ledger gives the same entries, ids and amounts."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    refund(ws, "pi_1", 1000)
    run_ledger()
    before = sorted(LedgerEntry.objects.values_list("id", "kind", "amount", "effective_at"))
    projections.get_projector("ledger").reset()
    from ingestion.models import ProjectionCheckpoint

    ProjectionCheckpoint.objects.filter(name="ledger").update(position=0)
    run_ledger(batch_size=1)
    assert sorted(LedgerEntry.objects.values_list("id", "kind", "amount", "effective_at")) == before


def test_fixed_referral_is_reversed_proportionally_in_its_own_currency(tenant) -> None:
    """A fixed 50.00 USD referral on a 120.00 EUR payment: a 60.00 EUR refund reverses 25.00 USD."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_eur", amount=12000, currency="EUR"), terms_=terms(fixed=(5000, "USD")))
    refund(ws, "pi_eur", 6000, currency="EUR")
    run_ledger()
    assert sorted(LedgerEntry.objects.values_list("kind", "amount", "currency")) == [
        ("referral", 5000, "USD"), ("reversal", -2500, "USD")]


def test_partial_refund_then_lost_dispute_reverses_exactly_the_rest(tenant) -> None:
    """After a partial refund, a lost dispute reverses only what remains: the sum is exactly the original."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1", amount=9907))
    refund(ws, "pi_1", 3000)
    dispute(ws, "pi_1", None, at=T0 + timedelta(days=3))
    dispute(ws, "pi_1", "lost", at=T0 + timedelta(days=4))
    run_ledger()
    amounts = entries(ws)
    assert amounts[0] == ("referral", 1981)
    assert [kind for kind, _ in amounts[1:]] == ["reversal", "reversal"]
    assert sum(amount for _, amount in amounts) == 0
    assert status_of(ws, LedgerEntry.objects.get(kind="referral").id) == "reversed"


def test_dispute_opened_after_payout_leaves_the_entry_paid(tenant) -> None:
    """A paid entry stays paid when a dispute opens later; only losing it appends a clawback."""
    from ingestion.ids import derived_id

    ws = tenant.workspace.id
    decide(pay(ws, "pi_1"))
    entry_id = derived_id("com", ws, "pi_1", "agent")
    append(ws, "payout.created", {"payout_id": "pay_1", "agent_id": "agt_a", "currency": "USD",
                                  "entry_ids": [entry_id], "amount": 1980}, source="operator", at=LATER)
    append(ws, "payout.confirmed", {"payout_id": "pay_1", "reference": "wire 1"}, source="operator", at=LATER)
    dispute(ws, "pi_1", None, at=LATER + timedelta(days=1))
    run_ledger()
    assert status_of(ws, entry_id, as_of=LATER + timedelta(days=2)) == "paid"
    dispute(ws, "pi_1", "lost", at=LATER + timedelta(days=3))
    run_ledger()
    [usd] = selectors.agent_balance(workspace_id=ws, agent_id="agt_a", as_of=LATER + timedelta(days=4))
    assert (usd.paid, usd.earned, usd.total) == (1980, -1980, 0)
