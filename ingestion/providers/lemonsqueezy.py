"""LemonSqueezy: ``X-Signature`` = hex HMAC-SHA256 of the raw body, keyed with the signing secret.

PROVIDERS.md §5. No timestamp and no event id: the dedupe key is the documented composite
``(meta.event_name, data.type, data.id, data.attributes.updated_at)``, or a SHA-256 of the body
when a part is missing. Amounts are integers in the currency's minor unit.

Payments: ``order_created`` is the first purchase (it always accompanies ``subscription_created``
for a subscription product), so a subscription's ``initial`` invoice is not counted again;
renewal invoices (``subscription_payment_success`` / ``_recovered``) are payments of their own.
LemonSqueezy's ids are bare numbers, shared by no namespace, so ``payment_ref`` carries the kind:
``ls_order_<id>`` or ``ls_invoice_<id>``. Refund events report the cumulative
``refunded_amount``, which becomes ``refunded_total``; ``amount`` is the step from the total
already stored. The referral code travels in
``meta.custom_data`` (checkout custom data).
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
    minor_units,
    referral_code,
    require,
    same,
    text,
)

NAME = "lemonsqueezy"


class LemonSqueezyProvider(Provider):
    name = NAME
    recorded_headers = ("x-signature", "x-event-name", "content-type", "user-agent")
    secret_hint = "the webhook's signing secret"

    def verify(self, body: bytes, headers: Mapping[str, str], secrets: Sequence[str], now: float) -> None:
        given = (headers.get("x-signature") or "").strip().lower()
        if not given:
            raise SignatureError("missing_signature", "missing X-Signature header")
        for secret in secrets:
            expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
            if same(given, expected):
                return
        raise SignatureError("invalid_signature", "X-Signature does not match a configured signing secret")

    def event_type(self, payload: Any, headers: Mapping[str, str]) -> str:
        return text(dig(payload, "meta.event_name") or headers.get("x-event-name")) or "unknown"

    def event_key(self, payload: Any, event_type: str, body: bytes) -> str:
        parts = (dig(payload, "data.type"), dig(payload, "data.id"), dig(payload, "data.attributes.updated_at"))
        if all(p not in (None, "") for p in parts):
            return ":".join([event_type, *(text(p) for p in parts)])
        return f"{event_type}:sha256:{hashlib.sha256(body).hexdigest()}"

    def occurred_at(self, payload: Any, event_type: str) -> datetime | None:
        attributes = dig(payload, "data.attributes") or {}
        return from_iso(attributes.get("updated_at")) or from_iso(attributes.get("created_at"))


def _attributes(env: Envelope) -> dict[str, Any]:
    attributes = dig(env.payload, "data.attributes")
    if not isinstance(attributes, dict):
        raise PayloadError("missing data.attributes")
    return attributes


def _ref(kind: str, value: Any) -> str:
    return f"ls_{kind}_{text(value)}"


def _payment(env: Envelope, kind: str) -> list[Canonical]:
    attributes = _attributes(env)
    if attributes.get("status") not in ("paid", None):
        return []
    code = currency(require(attributes, "currency"))
    amount = minor_units(attributes.get("total"), code, path="data.attributes.total")
    if amount == 0:
        return []
    item = attributes.get("first_order_item") if isinstance(attributes.get("first_order_item"), dict) else {}
    subscription = attributes.get("subscription_id")
    return [Canonical("payment.succeeded", compact({
        "payment_ref": _ref(kind, require(env.payload, "data.id")),
        "provider": NAME,
        "provider_customer_id": text(attributes.get("customer_id")),
        "email": email(attributes.get("user_email")),
        "amount": amount,
        "currency": code,
        "subscription_ref": text(subscription) if subscription not in (None, "") else None,
        "plan": text(item.get("variant_id")),
        "referral_code": referral_code(dig(env.payload, "meta.custom_data")),
        "renewal": kind == "invoice",
    }), from_iso(attributes.get("created_at")))]


def order_created(env: Envelope) -> list[Canonical]:
    """The first purchase (one-off or a subscription's first payment). A free order is a signup."""
    attributes = _attributes(env)
    if minor_units(attributes.get("total"), currency(require(attributes, "currency")), path="data.attributes.total"):
        return _payment(env, "order")
    return _customer(env)


def subscription_payment(env: Envelope) -> list[Canonical]:
    """Renewals only: the ``initial`` invoice is the same money as its ``order_created``."""
    if _attributes(env).get("billing_reason") == "initial":
        return []
    return _payment(env, "invoice")


def _customer(env: Envelope) -> list[Canonical]:
    attributes = _attributes(env)
    customer = text(attributes.get("customer_id"))
    address = email(attributes.get("user_email"))
    if not customer and not address:
        return []
    return [Canonical("customer.created", compact({
        "provider": NAME,
        "provider_customer_id": customer,
        "email": address,
        "name": text(attributes.get("user_name")),
        "referral_code": referral_code(dig(env.payload, "meta.custom_data")),
    }), from_iso(attributes.get("created_at")))]


def subscription_created(env: Envelope) -> list[Canonical]:
    """The signup, with the checkout's custom data (and so the code) even during a free trial."""
    return _customer(env)


def _refund(env: Envelope, kind: str) -> list[Canonical]:
    attributes = _attributes(env)
    code = currency(require(attributes, "currency"))
    total = minor_units(attributes.get("refunded_amount"), code, path="data.attributes.refunded_amount")
    if total == 0:
        return []
    ref = _ref(kind, require(env.payload, "data.id"))
    # LemonSqueezy reports only the running total: this refund's own amount is the step from the
    # total already stored. A running total that arrives after a higher one refunds nothing more
    # (amount 0); the ledger follows refunded_total, so the order of arrival never counts twice.
    amount = max(total - env.context.refunded_before(NAME, ref), 0)
    return [Canonical("payment.refunded", compact({
        "payment_ref": ref,
        # One refund event per running total: the total names the refund.
        "refund_ref": f"{ref}:refunded:{total}",
        "amount": amount,
        "currency": code,
        "refunded_total": total,
        "provider": NAME,
    }), from_iso(attributes.get("refunded_at")))]


def order_refunded(env: Envelope) -> list[Canonical]:
    return _refund(env, "order")


def subscription_payment_refunded(env: Envelope) -> list[Canonical]:
    if _attributes(env).get("billing_reason") == "initial":
        return []  # refunded through its order (order_refunded)
    return _refund(env, "invoice")


def subscription_expired(env: Envelope) -> list[Canonical]:
    """The subscription has ended (``subscription_cancelled`` is a grace period that may resume)."""
    attributes = _attributes(env)
    return [Canonical("subscription.cancelled", compact({
        "subscription_ref": text(require(env.payload, "data.id")),
        "provider": NAME,
        "provider_customer_id": text(attributes.get("customer_id")),
        "email": email(attributes.get("user_email")),
    }), from_iso(attributes.get("ends_at")))]


LemonSqueezyProvider.mapping = {
    "order_created": order_created,
    "subscription_created": subscription_created,
    "subscription_payment_success": subscription_payment,
    "subscription_payment_recovered": subscription_payment,
    "order_refunded": order_refunded,
    "subscription_payment_refunded": subscription_payment_refunded,
    "subscription_expired": subscription_expired,
}

register(LemonSqueezyProvider())
