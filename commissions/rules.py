"""Commission rules: pure functions of a terms snapshot and a payment (issue #5).

No ORM, no clock, no settings: the ledger projector, the what-if simulation and the tests all call
these same functions, so a rebuild and a simulation compute every amount exactly as the live
ledger did. Money is integer minor units; every percentage is applied with ``ROUND_HALF_UP`` on
minor units, which is the same rule whatever the currency's exponent (JPY 0, USD 2, KWD 3 …).

Decisions taken here (PRODUCT.md is silent):
- A **fixed** referral commission is earned in the fixed amount's own currency, whatever the
  currency of the payment: the program promised "50.00 USD per customer", and converting at an
  exchange rate would need a rate source the ledger must not read (determinism). Its reversals
  stay proportional to the refunded share of the payment, in the fixed amount's currency.
- A percentage that is missing, unparsable or negative earns nothing (no entry) rather than
  stopping the projection; the service that writes terms refuses such values in the first place.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ingestion.money import round_half_up

REFERRAL = "referral"
RECURRING = "recurring"
SUPPORT = "support"
REVERSAL = "reversal"

_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Earned:
    """One commission a payment earns: who, which kind, and the formula that gave the amount."""

    kind: str
    agent_id: str
    amount: int
    currency: str
    formula: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentFacts:
    """What the ledger knows about one attributed payment (a ``PaymentAttribution`` decision)."""

    amount: int
    currency: str
    occurred_at: datetime
    sequence: int
    first_payment_at: datetime
    agent_id: str = ""
    terms: dict[str, Any] | None = None
    enrollment_active: bool = True
    customer_cancelled: bool = False
    support_agent_id: str = ""
    support_terms: dict[str, Any] | None = None


def parse_percent(value: object) -> Decimal | None:
    """Return a non-negative percentage as a Decimal, or ``None`` when it is absent or invalid."""
    if value is None or isinstance(value, (bool, float)):
        return None
    try:
        percent = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not percent.is_finite() or percent < 0:
        return None
    return percent


def percent_of(amount: int, percent: Decimal | str) -> int:
    """Return ``round_half_up(amount × percent / 100)`` in minor units (20 % of 9900 → 1980)."""
    return round_half_up(Decimal(amount) * Decimal(percent) / _HUNDRED)


def months_between(first: datetime | date, later: datetime | date) -> int:
    """Return the whole calendar months from ``first`` to ``later``, on their UTC dates.

    The same day of the month N months later counts N; when that day does not exist in the later
    month (31 January → February) it clamps to the month's last day, so 28 February counts 1.
    """
    a = _utc_date(first)
    b = _utc_date(later)
    months = (b.year - a.year) * 12 + (b.month - a.month)
    anniversary_day = min(a.day, calendar.monthrange(b.year, b.month)[1])
    if months > 0 and b.day < anniversary_day:
        months -= 1
    elif months < 0 and b.day > anniversary_day:
        months += 1
    return months


def recurring_cap_allows(months: int, cap: int | None) -> bool:
    """Is a payment ``months`` after the first one inside a cap of ``cap`` months?

    ``None`` = no cap; ``0`` = no recurring commission at all; with 12, months 1–11 earn and the
    13th monthly payment (month 12) does not.
    """
    if cap is None:
        return True
    return months < cap


def referral_commission(terms: dict[str, Any], amount: int, currency: str) -> Earned | None:
    """The one-time commission on the customer's first payment: percent of it, or a fixed sum."""
    referral = terms.get("referral") or {}
    if referral.get("type") == "fixed":
        fixed = referral.get("amount")
        if not isinstance(fixed, int) or isinstance(fixed, bool) or fixed <= 0:
            return None
        fixed_currency = str(referral.get("currency") or currency).upper()
        return Earned(REFERRAL, "", fixed, fixed_currency, {
            "kind": REFERRAL, "type": "fixed", "base": amount, "baseCurrency": currency,
            "rate": None, "fixed": fixed, "result": fixed, "currency": fixed_currency,
            "expression": f"fixed {fixed} {fixed_currency} (minor units)",
        })
    percent = parse_percent(referral.get("percent"))
    if percent is None:
        return None
    return _percent_entry(REFERRAL, amount, currency, percent)


def recurring_commission(terms: dict[str, Any], amount: int, currency: str, *,
                         first_payment_at: datetime, paid_at: datetime) -> Earned | None:
    """The commission on a later payment, while the months since the first are under the cap."""
    recurring = terms.get("recurring") or {}
    percent = parse_percent(recurring.get("percent"))
    if percent is None:
        return None
    cap = recurring.get("duration_months")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 0):
        return None
    months = months_between(first_payment_at, paid_at)
    if not recurring_cap_allows(months, cap):
        return None
    earned = _percent_entry(RECURRING, amount, currency, percent)
    earned.formula.update({"monthsSinceFirstPayment": months, "durationMonths": cap})
    return earned


def support_commission(support_terms: dict[str, Any], amount: int, currency: str) -> Earned | None:
    """A percentage of the payment for the agent assigned to support the customer."""
    percent = parse_percent((support_terms.get("support") or {}).get("percent"))
    if percent is None:
        return None
    return _percent_entry(SUPPORT, amount, currency, percent)


def commissions_for_payment(facts: PaymentFacts) -> list[Earned]:
    """Every commission one attributed payment earns (zero amounts earn no entry).

    The first payment earns the referral commission, later ones the recurring commission; a
    removed enrollment earns neither; a cancellation before the payment stops recurring and
    support commissions (the referral one stays: it is the first payment).
    """
    earned: list[Earned] = []
    if facts.agent_id and facts.terms and facts.enrollment_active:
        if facts.sequence <= 1:
            entry = referral_commission(facts.terms, facts.amount, facts.currency)
        elif facts.customer_cancelled:
            entry = None
        else:
            entry = recurring_commission(facts.terms, facts.amount, facts.currency,
                                         first_payment_at=facts.first_payment_at, paid_at=facts.occurred_at)
        if entry is not None and entry.amount > 0:
            earned.append(_with_agent(entry, facts.agent_id))
    if facts.support_agent_id and facts.support_terms and not facts.customer_cancelled:
        entry = support_commission(facts.support_terms, facts.amount, facts.currency)
        if entry is not None and entry.amount > 0:
            earned.append(_with_agent(entry, facts.support_agent_id))
    return earned


def reversal_target(original: int, *, payment_amount: int, refunded_total: int, full: bool) -> int:
    """How much of ``original`` should be reversed in total (a magnitude, 0 ≤ target ≤ original).

    A full reversal (lost dispute, void, or a refund of the whole payment) is exactly the original;
    otherwise ``round_half_up(original × refunded / payment)`` on the cumulative refunded total,
    clamped, so successive partial refunds never reverse more than the original.
    """
    if original <= 0:
        return 0
    if full or (payment_amount > 0 and refunded_total >= payment_amount):
        return original
    if payment_amount <= 0 or refunded_total <= 0:
        return 0
    target = round_half_up(Decimal(original) * Decimal(refunded_total) / Decimal(payment_amount))
    return max(0, min(original, target))


def reversal_due(original: int, *, already_reversed: int, payment_amount: int, refunded_total: int,
                 full: bool) -> int:
    """The magnitude of the next reversal entry: target minus what is already reversed (never < 0)."""
    target = reversal_target(original, payment_amount=payment_amount, refunded_total=refunded_total, full=full)
    return max(0, target - already_reversed)


def hold_until(occurred_at: datetime, hold_days: int) -> datetime:
    """When the hold of an entry paid at ``occurred_at`` ends (the hold runs from the payment)."""
    return occurred_at + timedelta(days=max(0, hold_days))


def hold_days_of(terms: dict[str, Any] | None) -> int:
    """The snapshot's hold period in days (PRODUCT.md default 14)."""
    value = (terms or {}).get("hold_days", 14)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 14


def threshold_of(terms: dict[str, Any] | None, currency: str) -> int:
    """The snapshot's payout threshold for ``currency`` in minor units (default 0)."""
    value = ((terms or {}).get("payout_threshold") or {}).get(currency, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _percent_entry(kind: str, amount: int, currency: str, percent: Decimal) -> Earned:
    result = percent_of(amount, percent)
    rate = _plain(percent)
    return Earned(kind, "", result, currency, {
        "kind": kind, "type": "percent", "base": amount, "baseCurrency": currency, "rate": rate,
        "fixed": None, "result": result, "currency": currency,
        "expression": f"round_half_up({amount} × {rate} / 100) = {result}",
    })


def _with_agent(entry: Earned, agent_id: str) -> Earned:
    return Earned(entry.kind, agent_id, entry.amount, entry.currency, entry.formula)


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _utc_date(value: datetime | date) -> date:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    return value
