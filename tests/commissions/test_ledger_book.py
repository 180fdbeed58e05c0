"""The ledger fold itself (``commissions.domain.LedgerBook``), without a database: aliases."""

from __future__ import annotations

from datetime import UTC, datetime

from commissions.domain import Decision, EventView, LedgerBook

WS = "biz_book"
NATURAL = "nk:ada@example.com|2024-05-03|4900|USD"
PAID_AT = datetime(2024, 5, 3, tzinfo=UTC)


def _event(position: int, kind: str, data: dict | None = None) -> EventView:
    return EventView(position, f"evt_{position}", WS, kind, datetime(2024, 5, position, tzinfo=UTC), data or {})


def _decision(position: int) -> Decision:
    return Decision(
        workspace_id=WS, payment_ref=NATURAL, payment_event_id="evt_1", payment_position=1,
        decided_position=position, decided_event_id=f"evt_{position}", occurred_at=PAID_AT, amount=4900,
        currency="USD", customer_id="cus_ada", agent_id="agt_anna", enrollment_id="enr_anna", program_id="prg_1",
        terms={"program_id": "prg_1", "referral": {"type": "percent", "percent": "20"}},
        enrollment_event_id="evt_0", enrollment_active=True, sequence=1, first_payment_at=PAID_AT,
    )


def _refund(position: int, amount: int, refund_ref: str = "re_1") -> EventView:
    return _event(position, "payment.refunded", {"payment_ref": "pi_1", "refund_ref": refund_ref,
                                                 "amount": amount, "currency": "USD"})


def _amounts(book: LedgerBook) -> list[tuple[str, int]]:
    return sorted((entry.kind, entry.amount) for entry in book.entries.values())


def test_a_refund_parked_under_an_id_reverses_the_payment_once_the_id_is_its_alias() -> None:
    """Commission decided, refund naming pi_1 parked, then pi_1 turns out to be the payment: reversed."""
    book = LedgerBook()
    book.apply(_event(2, "payment.succeeded"), [_decision(2)])
    book.apply(_refund(3, 2450))
    assert _amounts(book) == [("referral", 980)]
    book.apply(_event(4, "payment.succeeded"), aliases=[("pi_1", NATURAL)])
    assert _amounts(book) == [("referral", 980), ("reversal", -490)]


def test_an_adopted_refund_waits_for_a_commission_decided_later() -> None:
    """Refund parked under pi_1, alias, and only then the decision: the new commission is reversed at once."""
    book = LedgerBook()
    book.apply(_refund(2, 4900))
    book.apply(_event(3, "payment.succeeded"), aliases=[("pi_1", NATURAL)])
    assert _amounts(book) == []
    book.apply(_event(5, "customer.created"), [_decision(5)])
    assert _amounts(book) == [("referral", 980), ("reversal", -980)]


def test_refunds_under_both_refs_take_the_larger_total_not_the_sum() -> None:
    """The same refund reported under the natural key and under the id must not reverse twice."""
    book = LedgerBook()
    book.apply(_event(2, "payment.succeeded"), [_decision(2)])
    book.apply(_event(3, "payment.refunded", {"payment_ref": NATURAL, "refund_ref": "re_api", "amount": 1000,
                                              "currency": "USD"}))
    book.apply(_refund(4, 2450, refund_ref="re_stripe"))
    book.apply(_event(5, "payment.succeeded"), aliases=[("pi_1", NATURAL)])
    # 980 × 1000 / 4900 = 200 at the API's refund; 980 × max(1000, 2450) / 4900 = 490 in all (not 690).
    assert _amounts(book) == [("referral", 980), ("reversal", -290), ("reversal", -200)]


def test_an_alias_with_nothing_parked_changes_nothing_and_later_refunds_follow_it() -> None:
    """No parked refund: the alias adds no entry and no note; a refund after it reaches the payment."""
    book = LedgerBook()
    book.apply(_event(2, "payment.succeeded"), [_decision(2)])
    book.apply(_event(3, "payment.succeeded"), aliases=[("pi_1", NATURAL)])
    assert (_amounts(book), book.new_trail) == ([("referral", 980)], [])
    book.apply(_refund(4, 4900))
    assert _amounts(book) == [("referral", 980), ("reversal", -980)]


def _dispute(position: int, outcome: str | None) -> EventView:
    data = {"payment_ref": "pi_1", "dispute_ref": "du_1", "amount": 4900, "currency": "USD"}
    if outcome:
        data["outcome"] = outcome
    return _event(position, "payment.disputed", data)


def test_a_dispute_opened_under_the_id_before_the_alias_becomes_the_payment_s_and_its_outcome_applies() -> None:
    """Opened under pi_1, then pi_1 is the payment's alias: the payment has the open dispute (its entries
    go on hold), and the loss reported later under pi_1 reverses the commission in full."""
    book = LedgerBook()
    book.apply(_event(2, "payment.succeeded"), [_decision(2)])
    book.apply(_dispute(3, None))
    assert (WS, NATURAL, "du_1") not in book.disputes
    book.apply(_event(4, "payment.succeeded"), aliases=[("pi_1", NATURAL)])
    adopted = book.disputes[(WS, NATURAL, "du_1")]
    assert (adopted.opened_event_id, adopted.outcome) == ("evt_3", "")
    assert (WS, NATURAL, "du_1") in {(d.workspace_id, d.payment_ref, d.dispute_ref) for d in book.changed_disputes()}
    book.apply(_dispute(5, "lost"))
    assert _amounts(book) == [("referral", 980), ("reversal", -980)]
    assert book.disputes[(WS, NATURAL, "du_1")].outcome == "lost"
