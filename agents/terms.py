"""The terms snapshot: what an approved enrollment carries into every commission it earns."""

from __future__ import annotations

from typing import Any

from ingestion.money import to_minor

from .models import Program


def program_terms(program: Program) -> dict[str, Any]:
    """Return the program's current terms as a JSON-ready snapshot (decimals as strings)."""
    referral: dict[str, Any] = {"type": program.referral_type}
    if program.referral_type == Program.ReferralType.FIXED:
        referral["amount"] = to_minor(program.referral_value.normalize(), program.referral_currency)
        referral["currency"] = program.referral_currency
    else:
        referral["percent"] = _dec(program.referral_value)
    return {
        "program_id": program.id,
        "product_id": program.product_id,
        "referral": referral,
        "recurring": {
            "percent": _dec(program.recurring_percent),
            "duration_months": program.recurring_duration_months,
        },
        "support": {"percent": _dec(program.support_percent)},
        "attribution_window_days": program.attribution_window_days,
        "hold_days": program.hold_days,
        "payout_frequency": program.payout_frequency,
        "payout_threshold": dict(program.payout_threshold or {}),
    }


def _dec(value: object) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
