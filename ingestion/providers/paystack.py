"""Paystack: ``x-paystack-signature`` = hex HMAC-SHA512 of the raw body, keyed with the secret key.

PROVIDERS.md §2. No timestamp, so no replay window: a replayed body is a duplicate of its first
delivery (the dedupe key below) and appends nothing. Paystack has no event id: the key is the
documented composite per event family, with a SHA-256 of the body as the last resort.

Amounts are integers in the currency's "subunit" (×100 for every currency Paystack lists; refund
events send them as strings). ``payment_ref`` is the transaction ``reference``, which refunds and
disputes name too. The customer id is the ``customer_code`` (``CUS_…``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import register
from .base import (
    Canonical,
    Envelope,
    PayloadError,
    Provider,
    SignatureError,
    compact,
    currency,
    dig,
    email,
    from_iso,
    provider_minor,
    referral_code,
    require,
    same,
    text,
)

NAME = "paystack"
# Paystack documents every amount as subunit ×100, XOF and RWF included (PROVIDERS.md §7.3, [verify]).
SUBUNIT_EXPONENT = 2


class PaystackProvider(Provider):
    name = NAME
    recorded_headers = ("x-paystack-signature", "content-type", "user-agent")
    secret_hint = "the integration's secret key (sk_live_… / sk_test_…)"

    def verify(self, body: bytes, headers: Mapping[str, str], secrets: Sequence[str], now: float) -> None:
        given = (headers.get("x-paystack-signature") or "").strip().lower()
        if not given:
            raise SignatureError("missing_signature", "missing x-paystack-signature header")
        for secret in secrets:
            expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha512).hexdigest()
            if same(given, expected):
                return
        raise SignatureError("invalid_signature", "x-paystack-signature does not match a configured secret key")

    def event_type(self, payload: Any, headers: Mapping[str, str]) -> str:
        return text(require(payload, "event"))

    def event_key(self, payload: Any, event_type: str, body: bytes) -> str:
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        parts: tuple[Any, ...] = ()
        if event_type == "charge.success":
            parts = (data.get("id") or data.get("reference"),)
        elif event_type.startswith("subscription."):
            parts = (data.get("subscription_code"), data.get("status"))
        elif event_type.startswith("invoice."):
            parts = (data.get("invoice_code"), data.get("status"), data.get("paid"))
        elif event_type.startswith("refund."):
            parts = (data.get("transaction_reference"), data.get("refund_reference") or data.get("status"))
        elif event_type.startswith("charge.dispute."):
            parts = (data.get("id"), data.get("status"))
        if parts and all(p not in (None, "") for p in parts):
            return ":".join([event_type, *(text(p) for p in parts)])
        return f"{event_type}:sha256:{hashlib.sha256(body).hexdigest()}"

    def occurred_at(self, payload: Any, event_type: str) -> datetime | None:
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        for field in ("paid_at", "paidAt", "resolvedAt", "updated_at", "updatedAt", "createdAt", "created_at"):
            found = from_iso(data.get(field))
            if found:
                return found
        return None


def _data(env: Envelope) -> dict[str, Any]:
    data = env.payload.get("data")
    if not isinstance(data, dict):
        raise PayloadError("missing data")
    return data


def _amount(value: Any, code: str, path: str) -> int:
    return provider_minor(value, code, provider=NAME, path=path, theirs=SUBUNIT_EXPONENT)


def _name(customer: Any) -> str:
    if not isinstance(customer, dict):
        return ""
    return " ".join(p for p in (text(customer.get("first_name")), text(customer.get("last_name"))) if p)


def _custom_fields_code(metadata: Any) -> str | None:
    """Payment pages put extra inputs in ``metadata.custom_fields[{variable_name, value}]``."""
    fields = metadata.get("custom_fields") if isinstance(metadata, dict) else None
    for item in fields if isinstance(fields, list) else []:
        if isinstance(item, dict) and item.get("variable_name") == "refairn_code":
            return referral_code({"refairn_code": item.get("value")})
    return None


def charge_success(env: Envelope) -> list[Canonical]:
    data = _data(env)
    if data.get("status") != "success":
        return []
    code = currency(require(data, "currency"))
    metadata = data.get("metadata")
    plan = data.get("plan") if isinstance(data.get("plan"), dict) else {}
    return [Canonical("payment.succeeded", compact({
        "payment_ref": text(require(data, "reference")),
        "provider": NAME,
        "provider_customer_id": text(dig(data, "customer.customer_code")),
        "email": email(dig(data, "customer.email")),
        "amount": _amount(data.get("amount"), code, "data.amount"),
        "currency": code,
        "plan": text(plan.get("plan_code")),
        "referral_code": referral_code(metadata, dig(data, "customer.metadata")) or _custom_fields_code(metadata),
    }))]


def subscription_create(env: Envelope) -> list[Canonical]:
    data = _data(env)
    customer = data.get("customer")
    return [Canonical("customer.created", compact({
        "provider": NAME,
        "provider_customer_id": text(dig(data, "customer.customer_code")),
        "email": email(dig(data, "customer.email")),
        "name": _name(customer),
        "referral_code": referral_code(dig(data, "customer.metadata")),
    }))]


def subscription_disable(env: Envelope) -> list[Canonical]:
    data = _data(env)
    return [Canonical("subscription.cancelled", compact({
        "subscription_ref": text(require(data, "subscription_code")),
        "provider": NAME,
        "provider_customer_id": text(dig(data, "customer.customer_code")),
        "email": email(dig(data, "customer.email")),
    }))]


def refund_processed(env: Envelope) -> list[Canonical]:
    """A refund counts once processed; pending/processing/failed refunds are acknowledged only."""
    data = _data(env)
    code = currency(require(data, "currency"))
    reference = text(require(data, "transaction_reference"))
    return [Canonical("payment.refunded", compact({
        "payment_ref": reference,
        "refund_ref": text(data.get("refund_reference")) or f"{reference}:refund:{text(data.get('id'))}",
        "amount": _amount(data.get("amount"), code, "data.amount"),
        "currency": code,
        "provider": NAME,
    }))]


# ``resolution`` of a resolved dispute: the merchant accepting (or Paystack auto-accepting) the
# chargeback loses the money; ``declined`` means the chargeback was refused, the merchant won.
_RESOLUTIONS = {"merchant-accepted": "lost", "auto-accepted": "lost", "declined": "won"}


def _dispute(env: Envelope, outcome: str | None) -> list[Canonical]:
    """The disputed amount is ``data.refund_amount`` (PROVIDERS.md §2.3), which may be less than
    the transaction; only when it is absent or null does the transaction's amount stand in."""
    data = _data(env)
    code = currency(data.get("currency") or dig(data, "transaction.currency"))
    path = "refund_amount" if data.get("refund_amount") is not None else "transaction.amount"
    data_out = compact({
        "payment_ref": text(require(data, "transaction.reference")),
        "dispute_ref": text(require(data, "id")),
        "amount": _amount(dig(data, path), code, f"data.{path}"),
        "currency": code,
        "provider": NAME,
    })
    data_out["outcome"] = outcome
    return [Canonical("payment.disputed", data_out)]


def dispute_create(env: Envelope) -> list[Canonical]:
    return _dispute(env, None)


def dispute_resolve(env: Envelope) -> list[Canonical]:
    outcome = _RESOLUTIONS.get(text(_data(env).get("resolution")))
    return _dispute(env, outcome) if outcome else []


PaystackProvider.mapping = {
    "charge.success": charge_success,
    "subscription.create": subscription_create,
    "subscription.disable": subscription_disable,
    "refund.processed": refund_processed,
    "charge.dispute.create": dispute_create,
    "charge.dispute.resolve": dispute_resolve,
}

register(PaystackProvider())
