"""The pure commission rules: worked examples from PRODUCT.md and the edges around them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from commissions import rules
from ingestion.money import from_minor

T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


def terms(*, referral: dict | None = None, recurring: str = "10", cap: int | None = 12, support: str = "5") -> dict:
    return {
        "program_id": "prog_x", "referral": referral or {"type": "percent", "percent": "20"},
        "recurring": {"percent": recurring, "duration_months": cap}, "support": {"percent": support},
        "hold_days": 14, "payout_threshold": {"USD": 5000},
    }


def facts(**overrides: object) -> rules.PaymentFacts:
    base = {"amount": 9900, "currency": "USD", "occurred_at": T0, "sequence": 1, "first_payment_at": T0,
            "agent_id": "agt_a", "terms": terms()}
    base.update(overrides)
    return rules.PaymentFacts(**base)  # type: ignore[arg-type]


@pytest.mark.smoke
def test_twenty_percent_of_99_usd_is_19_80() -> None:
    """20 % of 99.00 USD earns 19.80 USD."""
    earned = rules.referral_commission(terms(), 9900, "USD")
    assert earned is not None
    assert (earned.amount, earned.currency) == (1980, "USD")
    assert from_minor(earned.amount, "USD") == "19.80"


def test_fixed_referral_earns_50_usd() -> None:
    """A fixed referral commission earns exactly its amount."""
    earned = rules.referral_commission(terms(referral={"type": "fixed", "amount": 5000, "currency": "USD"}),
                                       9900, "USD")
    assert earned is not None
    assert (earned.amount, earned.currency) == (5000, "USD")


def test_fixed_referral_in_another_currency_earns_in_the_fixed_currency() -> None:
    """A fixed 50.00 USD referral on a EUR payment earns 50.00 USD (no exchange rate)."""
    earned = rules.referral_commission(terms(referral={"type": "fixed", "amount": 5000, "currency": "USD"}),
                                       12000, "EUR")
    assert earned is not None
    assert (earned.amount, earned.currency) == (5000, "USD")
    assert earned.formula["baseCurrency"] == "EUR"


def test_ten_percent_of_5000_jpy_is_500_jpy() -> None:
    """10 % of 5,000 JPY (exponent 0) earns 500 JPY."""
    earned = rules.referral_commission(terms(referral={"type": "percent", "percent": "10"}), 5000, "JPY")
    assert earned is not None
    assert (earned.amount, earned.currency) == (500, "JPY")


def test_fifteen_percent_of_12_345_kwd_rounds_half_up_in_fils() -> None:
    """15 % of 12.345 KWD = 1.85175 KWD → 1.852 KWD (round half up in minor units, exponent 3)."""
    earned = rules.referral_commission(terms(referral={"type": "percent", "percent": "15"}), 12345, "KWD")
    assert earned is not None
    assert earned.amount == 1852
    assert from_minor(earned.amount, "KWD") == "1.852"


def test_exact_halves_round_up() -> None:
    """A result of exactly half a minor unit rounds up (ROUND_HALF_UP), never to even."""
    assert rules.percent_of(25, "10") == 3  # 2.5 → 3
    assert rules.percent_of(15, "10") == 2  # 1.5 → 2
    assert rules.percent_of(1, Decimal("50")) == 1  # 0.5 → 1


@pytest.mark.parametrize(("first", "later", "months"), [
    (datetime(2024, 1, 15), datetime(2024, 2, 15), 1),
    (datetime(2024, 1, 15), datetime(2024, 2, 14), 0),
    (datetime(2024, 1, 31), datetime(2024, 2, 29), 1),   # clamps to the last day of February (leap)
    (datetime(2023, 1, 31), datetime(2023, 2, 28), 1),
    (datetime(2023, 1, 31), datetime(2023, 2, 27), 0),
    (datetime(2024, 1, 31), datetime(2024, 3, 30), 1),
    (datetime(2024, 1, 31), datetime(2024, 3, 31), 2),
    (datetime(2024, 1, 15), datetime(2025, 1, 15), 12),
    (datetime(2024, 1, 15), datetime(2025, 1, 14), 11),
])
def test_months_between_counts_whole_calendar_months(first: datetime, later: datetime, months: int) -> None:
    """Whole calendar months between two dates, clamping the day to a shorter month's end."""
    assert rules.months_between(first.replace(tzinfo=UTC), later.replace(tzinfo=UTC)) == months


def test_months_are_counted_on_utc_dates() -> None:
    """A payment late on the 14th in New York is the 15th in UTC, so it is a full month."""
    from zoneinfo import ZoneInfo

    later = datetime(2024, 2, 14, 22, 0, tzinfo=ZoneInfo("America/New_York"))
    assert rules.months_between(datetime(2024, 1, 15, tzinfo=UTC), later) == 1


def _monthly(n: int) -> datetime:
    """The n-th monthly payment (1 = first) of a customer who first paid on T0."""
    month = T0.month - 1 + (n - 1)
    return T0.replace(year=T0.year + month // 12, month=month % 12 + 1)


def test_renewals_one_to_eleven_earn_under_a_twelve_month_cap() -> None:
    """With a 12-month cap, the 2nd to the 12th monthly payments earn the recurring commission."""
    for n in range(2, 13):
        earned = rules.commissions_for_payment(facts(sequence=n, occurred_at=_monthly(n)))
        assert [e.kind for e in earned] == ["recurring"], n
        assert earned[0].amount == 990


@pytest.mark.smoke
def test_thirteenth_monthly_payment_under_twelve_month_cap_earns_nothing() -> None:
    """The 13th monthly payment (month 12) earns no recurring commission under a 12-month cap."""
    assert rules.commissions_for_payment(facts(sequence=13, occurred_at=_monthly(13))) == []


def test_cap_zero_means_no_recurring_commission() -> None:
    """A duration cap of 0 months earns no recurring commission at all."""
    t = terms(cap=0)
    assert rules.commissions_for_payment(facts(sequence=2, occurred_at=_monthly(2), terms=t)) == []


def test_no_cap_earns_forever() -> None:
    """An empty (null) cap earns recurring commission on every later payment."""
    t = terms(cap=None)
    earned = rules.commissions_for_payment(facts(sequence=40, occurred_at=_monthly(40), terms=t))
    assert [e.kind for e in earned] == ["recurring"]


def test_first_payment_earns_referral_not_recurring() -> None:
    """The first payment earns the referral commission only."""
    earned = rules.commissions_for_payment(facts())
    assert [(e.kind, e.agent_id, e.amount) for e in earned] == [("referral", "agt_a", 1980)]


def test_support_agent_earns_support_percent_alongside() -> None:
    """A customer with a support agent earns that agent a support commission on each payment."""
    earned = rules.commissions_for_payment(facts(support_agent_id="agt_s", support_terms=terms(support="5")))
    assert [(e.kind, e.agent_id, e.amount) for e in earned] == [("referral", "agt_a", 1980), ("support", "agt_s", 495)]


def test_cancellation_stops_recurring_and_support_but_not_referral() -> None:
    """A cancelled customer's later payment earns neither recurring nor support commission."""
    later = facts(sequence=2, occurred_at=_monthly(2), customer_cancelled=True, support_agent_id="agt_s",
                  support_terms=terms())
    assert rules.commissions_for_payment(later) == []
    first = facts(customer_cancelled=True)
    assert [e.kind for e in rules.commissions_for_payment(first)] == ["referral"]


def test_removed_enrollment_earns_nothing() -> None:
    """A payment decided after the enrollment was removed earns no referral or recurring commission."""
    assert rules.commissions_for_payment(facts(enrollment_active=False)) == []


def test_zero_or_invalid_percent_earns_no_entry() -> None:
    """A 0 % or unparsable rate creates no (zero) entry."""
    assert rules.commissions_for_payment(facts(terms=terms(referral={"type": "percent", "percent": "0"}))) == []
    assert rules.commissions_for_payment(facts(terms=terms(referral={"type": "percent", "percent": "x"}))) == []
    assert rules.commissions_for_payment(facts(terms=terms(referral={"type": "percent", "percent": "-5"}))) == []


def test_full_refund_reverses_exactly_the_original() -> None:
    """A refund of the whole payment reverses exactly the commission, whatever the rounding."""
    assert rules.reversal_target(1981, payment_amount=9907, refunded_total=9907, full=False) == 1981


def test_partial_refunds_never_reverse_more_than_the_original() -> None:
    """Successive partial refunds reverse by cumulative target, never past the original."""
    original, payment = 1, 3  # 1 minor unit of commission on a 3-unit payment
    reversed_so_far = 0
    for refunded in (1, 2, 3):
        due = rules.reversal_due(original, already_reversed=reversed_so_far, payment_amount=payment,
                                 refunded_total=refunded, full=False)
        reversed_so_far += due
        assert reversed_so_far <= original
    assert reversed_so_far == original


def test_half_refund_reverses_half_rounded_half_up() -> None:
    """Refunding half of 99.00 reverses round_half_up(1980 × 4950 / 9900) = 990."""
    assert rules.reversal_due(1980, already_reversed=0, payment_amount=9900, refunded_total=4950, full=False) == 990


def test_refund_larger_than_payment_is_clamped() -> None:
    """A refunded total above the payment reverses the original, not more."""
    assert rules.reversal_target(1980, payment_amount=9900, refunded_total=20000, full=False) == 1980


def test_hold_and_threshold_come_from_the_snapshot() -> None:
    """hold_days and the per-currency payout threshold are read from the terms snapshot."""
    assert rules.hold_days_of(terms()) == 14
    assert rules.hold_days_of({}) == 14
    assert rules.threshold_of(terms(), "USD") == 5000
    assert rules.threshold_of(terms(), "EUR") == 0
