"""Attribution rules as pure functions: no ORM, no clock, no settings.

The projector gathers what the store says (the code's state, the click trail, the signup) into
the small value objects below and asks these functions what to decide, so every rule of
PRODUCT.md "Attribution" is readable in one place and testable without a database.

Decisions taken here where the product text is silent:

- **Click trail over code.** A signup that names a known click is judged by the visitor's FIRST
  click (first touch): that click's code names the agent and the window runs from it to the signup.
  A signup naming no click (or an unknown one) with a code is a hand-typed code: honoured while
  the enrollment is approved, with no window.
- **Payment-only path.** A code in payment metadata attributes an unattributed customer only on the
  customer's first payment by business time (``payment_order``), whenever it arrives; the window
  (when the payment also names a click) runs to that payment. Known limit: a code on a payment
  that arrives first but is later superseded by an earlier-dated payment keeps its attribution
  (first touch wins; decisions are never retracted).
- **Product.** A code of a program for another product than the signup's product is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

_CODE_RE = re.compile(r"^[A-Z0-9]{1,32}$")
DEFAULT_WINDOW_DAYS = 90

# Reasons (the values of Customer.Unattributed / AttributionRefusal.Kind).
NO_REFERRAL = "no_referral"
UNKNOWN_CODE = "unknown_code"
UNKNOWN_CLICK = "unknown_click"
ENROLLMENT_NOT_ACTIVE = "enrollment_not_active"
WINDOW_EXPIRED = "window_expired"
SELF_REFERRAL = "self_referral"
PRODUCT_MISMATCH = "product_mismatch"

# How an attribution was made (Customer.Via).
VIA_CLICK = "click"
VIA_CODE = "code"
VIA_PAYMENT_METADATA = "payment_metadata"
VIA_REASSIGNMENT = "reassignment"


def normalise_email(value: Any) -> str:
    """Trim and lower-case; plus-addressing is kept as given (PRODUCT.md, Attribution).

    The same rule as ``agents.services.normalise_email``; repeated here so this module stays pure.
    """
    return value.strip().lower() if isinstance(value, str) else ""


def normalise_code(value: Any) -> str:
    """Return the code upper-cased, or ``""`` when it cannot be a referral code at all."""
    if not isinstance(value, str):
        return ""
    code = value.strip().upper()
    return code if _CODE_RE.match(code) else ""


def given_code(value: Any) -> str:
    """Return a code as the customer gave it (trimmed, upper-cased, at most 64 characters).

    Evidence, not a valid code: an unknown code that could never be one of ours (too long, with a
    dash) must still be judged and recorded as "unknown code", never dropped as "no referral".
    """
    if not isinstance(value, str):
        return ""
    return value.strip().upper()[:64]


def text(value: Any, limit: int = 255) -> str:
    """Return a stripped string for an identifier field (numbers allowed), ``""`` for anything else."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (str, int)):
        return str(value).strip()[:limit]
    return ""


def customer_key(*, customer_ref: str, email: str, provider: str, provider_customer_id: str,
                 payment_ref: str = "") -> str:
    """Return the natural key a new customer's id is derived from (its strongest identifier)."""
    if customer_ref:
        return f"ref:{customer_ref}"
    if email:
        return f"email:{email}"
    if provider_customer_id:
        return f"provider:{provider}:{provider_customer_id}"
    return f"payment:{payment_ref}"


def window_days(terms: dict | None) -> int:
    """Return the attribution window of a terms snapshot (90 days when absent)."""
    value = (terms or {}).get("attribution_window_days")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else DEFAULT_WINDOW_DAYS


def within_window(first_click_at: datetime, until: datetime, days: int) -> bool:
    """Is ``until`` no later than ``days`` days after the first click? (a click after is within)"""
    return until - first_click_at <= timedelta(days=days)


@dataclass(frozen=True)
class CodeView:
    """What the store says about a referral code (from enrollment.* events)."""

    code: str
    status: str
    agent_id: str
    agent_email: str
    product_id: str
    terms: dict


@dataclass(frozen=True)
class ClickView:
    """A recorded click with the visitor's first click resolved."""

    click_id: str
    event_id: str
    referral_code: str
    occurred_at: datetime


@dataclass(frozen=True)
class Touch:
    """The referral evidence an event carries: a click (with its first click) and/or a code."""

    code: str = ""
    click_id: str = ""
    click: ClickView | None = None
    first_click: ClickView | None = None


@dataclass(frozen=True)
class Decision:
    """The outcome: attributed to ``code`` (via ``via``), or not, with a reason and words."""

    attributed: bool
    code: str
    via: str
    reason: str
    detail: str
    click: ClickView | None = None


def decide(touch: Touch, *, lookup: Callable[[str], CodeView | None], at: datetime, email: str,
           product_id: str, code_via: str) -> Decision:
    """Decide whether the touch attributes a customer whose signup (or first payment) is at ``at``.

    ``code_via`` names how a bare code arrived (``code`` at signup, ``payment_metadata``).
    """
    click = touch.first_click or touch.click
    if touch.click is not None and click is not None:
        code, via = click.referral_code, VIA_CLICK
        how = f"first click {click.click_id} on code {code}"
    elif touch.code:
        code, via, click = touch.code, code_via, None
        how = f"code {code} " + ("given at signup" if code_via == VIA_CODE else "in the payment metadata")
        if touch.click_id:
            how += f" (click {touch.click_id} is unknown)"
    elif touch.click_id:
        return Decision(False, "", "", UNKNOWN_CLICK, f"click {touch.click_id} is unknown and no code was given")
    else:
        return Decision(False, "", "", NO_REFERRAL, "no referral code or click")

    state = lookup(code)
    if state is None:
        return Decision(False, code, via, UNKNOWN_CODE, f"{how}: no enrollment has this code", click)
    if state.status != "approved":
        return Decision(False, code, via, ENROLLMENT_NOT_ACTIVE, f"{how}: the enrollment is {state.status}", click)
    if product_id and state.product_id and product_id != state.product_id:
        return Decision(False, code, via, PRODUCT_MISMATCH,
                        f"{how}: the program is for product {state.product_id}, not {product_id}", click)
    if click is not None:
        days = window_days(state.terms)
        if not within_window(click.occurred_at, at, days):
            return Decision(False, code, via, WINDOW_EXPIRED,
                            f"{how}: more than {days} days before {at.isoformat()}", click)
    if email and state.agent_email and email == state.agent_email:
        return Decision(False, code, via, SELF_REFERRAL,
                        f"{how}: the customer's email is the agent's own ({email})", click)
    return Decision(True, code, via, "", f"{how} → agent {state.agent_id}", click)


def choose_enrollment(candidates: list[CodeView], *, prefer_product: str) -> CodeView | None:
    """Pick an agent's approved enrollment for a reassignment or a support assignment.

    Prefer the customer's product; otherwise the first approved (the candidates come in order of
    approval), so the choice depends on the store alone.
    """
    approved = [c for c in candidates if c.status == "approved"]
    if prefer_product:
        for candidate in approved:
            if candidate.product_id == prefer_product:
                return candidate
    return approved[0] if approved else None


def payment_order(occurred_at: datetime, payment_ref: str) -> tuple[datetime, str]:
    """Sort key of one customer's payments: business time, then ``payment_ref``.

    Never the store position: the order (and so each payment's number, and which payment a late
    signup or a metadata code treats as the first) must not depend on the order of arrival.
    """
    return (occurred_at, payment_ref)


# ``payment_order`` of a payment record, read in C: a backlog of older payments re-sorts its
# customers' payments at each arrival, and a Python key function per row was a tenth of its drain.
payment_record_order = attrgetter("occurred_at", "payment_ref")
