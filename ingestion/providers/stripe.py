"""Stripe: ``Stripe-Signature`` verified by the official ``stripe`` package; snapshot (v1) events.

PROVIDERS.md §1. Amounts are integers in Stripe's minor units (its own zero-decimal list:
``money.PROVIDER_EXPONENTS["stripe"]``), re-expressed in ISO minor units. Dedupe on the event
``id`` (``evt_…``).

One payment earns once, whichever events report it (``payment_ref``):

* subscription checkout and the invoices it creates: the invoice id (``in_…``), so
  ``checkout.session.completed`` and ``invoice.paid`` for the first invoice name the same payment;
* one-off (payment mode) checkout, ``payment_intent.succeeded`` and ``charge.succeeded``: the
  PaymentIntent id (``pi_…``), or the invoice id when the object still names its invoice
  (API versions before 2025-03-31.basil);
* refunds and disputes: the invoice id when the charge names it (API versions before basil);
  else the invoice an earlier ``invoice_payment.paid`` linked the PaymentIntent or charge to
  (basil removed ``invoice`` from charges and PaymentIntents: that event is the only link);
  else the PaymentIntent id. ``payment_aliases`` lists the other ids the payload names for the
  same payment, for audit and for the links above.

``invoice_payment.paid`` is kept as ``provider.ignored`` (the invoice reports the payment) with
the link ``{"payment_ref": "in_…", "alias": "pi_…"}`` in its data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import stripe

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
    from_unix,
    provider_minor,
    referral_code,
    require,
    text,
)

# Stripe's SDK default. The SDK rejects only old timestamps; this module also rejects a
# timestamp more than the same tolerance in the future (a clock that far ahead is not Stripe's).
TOLERANCE_SECONDS = 300
NAME = "stripe"


class StripeProvider(Provider):
    name = NAME
    recorded_headers = ("stripe-signature", "content-type", "user-agent")
    secret_hint = "the endpoint's signing secret (whsec_…)"

    def verify(self, body: bytes, headers: Mapping[str, str], secrets: Sequence[str], now: float) -> None:
        header = headers.get("stripe-signature")
        if not header:
            raise SignatureError("missing_signature", "missing Stripe-Signature header")
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("invalid_signature", "the body is not UTF-8") from None
        timestamp = _timestamp(header)
        for secret in secrets:
            try:
                stripe.WebhookSignature.verify_header(payload, header, secret, TOLERANCE_SECONDS)
            except stripe.SignatureVerificationError:
                continue
            if timestamp > now + TOLERANCE_SECONDS:
                raise SignatureError("future_signature",
                                     f"signature timestamp is more than {TOLERANCE_SECONDS} s in the future")
            return
        if timestamp < now - TOLERANCE_SECONDS:
            raise SignatureError("stale_signature", f"signature timestamp is older than {TOLERANCE_SECONDS} s")
        raise SignatureError("invalid_signature", "no Stripe-Signature v1 signature matches a configured secret")

    def parse(self, body: bytes) -> Any:
        # Stripe sends integers only; the stdlib parser (floats never reach money code).
        return super().parse(body)

    def event_type(self, payload: Any, headers: Mapping[str, str]) -> str:
        return text(require(payload, "type"))

    def event_key(self, payload: Any, event_type: str, body: bytes) -> str:
        return text(require(payload, "id"))

    def occurred_at(self, payload: Any, event_type: str) -> datetime | None:
        return from_unix(payload.get("created"))


def _timestamp(header: str) -> int:
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                break
    raise SignatureError("malformed_signature", "Stripe-Signature header has no valid t= timestamp")


# --- mapping -------------------------------------------------------------------------------


def _object(env: Envelope) -> dict[str, Any]:
    obj = dig(env.payload, "data.object")
    if not isinstance(obj, dict):
        raise PayloadError("missing data.object")
    return obj


def _id(value: Any) -> str:
    """An id field that may also arrive expanded as an object."""
    if isinstance(value, dict):
        value = value.get("id")
    return text(value)


def _money(obj: dict[str, Any], field: str) -> tuple[int, str]:
    code = currency(require(obj, "currency"))
    return provider_minor(obj.get(field), code, provider=NAME, path=f"data.object.{field}"), code


def _aliases(ref: str, *candidates: Any) -> list[str] | None:
    found = []
    for candidate in candidates:
        value = _id(candidate)
        if value and value != ref and value not in found:
            found.append(value)
    return found or None


def customer_created(env: Envelope) -> list[Canonical]:
    obj = _object(env)
    return [Canonical("customer.created", compact({
        "provider": NAME,
        "provider_customer_id": _id(obj.get("id")),
        "email": email(obj.get("email")),
        "name": text(obj.get("name")),
        "referral_code": referral_code(obj.get("metadata")),
    }), from_unix(obj.get("created")))]


def checkout_session_completed(env: Envelope) -> list[Canonical]:
    """The signup moment: the customer (with the code), and the payment when it is paid."""
    obj = _object(env)
    customer_id = _id(obj.get("customer"))
    address = email(dig(obj, "customer_details.email") or obj.get("customer_email"))
    code = referral_code(obj.get("metadata"))
    events = []
    if customer_id or address:
        events.append(Canonical("customer.created", compact({
            "provider": NAME,
            "provider_customer_id": customer_id,
            "customer_ref": text(obj.get("client_reference_id")),
            "email": address,
            "name": text(dig(obj, "customer_details.name")),
            "referral_code": code,
        })))
    events.extend(checkout_session_paid(env))
    return events


def checkout_session_paid(env: Envelope) -> list[Canonical]:
    """A paid session's payment: the invoice (subscription mode) or PaymentIntent (payment mode)."""
    obj = _object(env)
    if obj.get("payment_status") != "paid":
        return []
    mode = obj.get("mode")
    if mode == "subscription":
        ref = _id(obj.get("invoice"))
    elif mode == "payment":
        ref = _id(obj.get("payment_intent"))
    else:
        return []
    amount, code = _money(obj, "amount_total")
    if not ref or amount == 0:
        # Without the invoice id the session cannot name the same payment as invoice.paid;
        # the invoice event reports it. A zero total (trial, 100 % coupon) is no payment.
        return []
    return [Canonical("payment.succeeded", compact({
        "payment_ref": ref,
        "provider": NAME,
        "provider_customer_id": _id(obj.get("customer")),
        "customer_ref": text(obj.get("client_reference_id")),
        "email": email(dig(obj, "customer_details.email") or obj.get("customer_email")),
        "amount": amount,
        "currency": code,
        "subscription_ref": _id(obj.get("subscription")),
        "referral_code": referral_code(obj.get("metadata")),
        "renewal": False,
    }))]


def _first_line(obj: dict[str, Any]) -> dict[str, Any]:
    lines = dig(obj, "lines.data")
    return lines[0] if isinstance(lines, list) and lines and isinstance(lines[0], dict) else {}


def invoice_paid(env: Envelope) -> list[Canonical]:
    """Every paid invoice, first (``subscription_create``) and renewals (``subscription_cycle``)."""
    obj = _object(env)
    amount, code = _money(obj, "amount_paid")
    if amount == 0:
        return []
    ref = _id(require(obj, "id"))
    line = _first_line(obj)
    subscription = _id(obj.get("subscription")) or _id(dig(obj, "parent.subscription_details.subscription"))
    plan = (_id(dig(line, "price.id")) or text(dig(line, "pricing.price_details.price"))
            or _id(dig(line, "plan.id")))
    return [Canonical("payment.succeeded", compact({
        "payment_ref": ref,
        "provider": NAME,
        "provider_customer_id": _id(obj.get("customer")),
        "email": email(obj.get("customer_email")),
        "amount": amount,
        "currency": code,
        "subscription_ref": subscription,
        "plan": plan,
        "referral_code": referral_code(
            dig(obj, "subscription_details.metadata"), dig(obj, "parent.subscription_details.metadata"),
            obj.get("metadata"), line.get("metadata")),
        "renewal": obj.get("billing_reason") == "subscription_cycle",
        "payment_aliases": _aliases(ref, obj.get("payment_intent"), obj.get("charge")),
    }), from_unix(dig(obj, "status_transitions.paid_at")))]


def payment_intent_succeeded(env: Envelope) -> list[Canonical]:
    obj = _object(env)
    amount, code = _money(obj, "amount_received")
    if amount == 0:
        return []
    pi = _id(require(obj, "id"))
    # No store lookup on the payment path (kept lean): a basil PaymentIntent that pays an invoice
    # names no invoice, so enable this event only for payments without invoices (README).
    ref = _id(obj.get("invoice")) or pi
    return [Canonical("payment.succeeded", compact({
        "payment_ref": ref,
        "provider": NAME,
        "provider_customer_id": _id(obj.get("customer")),
        "email": email(obj.get("receipt_email")),
        "amount": amount,
        "currency": code,
        "referral_code": referral_code(obj.get("metadata")),
        "payment_aliases": _aliases(ref, pi, obj.get("latest_charge")),
    }))]


def charge_succeeded(env: Envelope) -> list[Canonical]:
    obj = _object(env)
    if obj.get("captured") is False:
        return []  # an authorisation only; charge.captured reports the payment
    field = "amount_captured" if obj.get("amount_captured") else "amount"
    amount, code = _money(obj, field)
    if amount == 0:
        return []
    charge = _id(require(obj, "id"))
    ref = _id(obj.get("invoice")) or _id(obj.get("payment_intent")) or charge
    return [Canonical("payment.succeeded", compact({
        "payment_ref": ref,
        "provider": NAME,
        "provider_customer_id": _id(obj.get("customer")),
        "email": email(dig(obj, "billing_details.email") or obj.get("receipt_email")),
        "amount": amount,
        "currency": code,
        "referral_code": referral_code(obj.get("metadata")),
        "payment_aliases": _aliases(ref, obj.get("payment_intent"), charge),
    }))]


def _paid_ref(env: Envelope, obj: dict[str, Any], *aliases: Any) -> str:
    """Name the payment a refund, dispute or charge belongs to (see the module docstring)."""
    invoice = _id(obj.get("invoice"))
    if invoice:
        return invoice
    ids = [value for value in (_id(alias) for alias in aliases) if value]
    for alias in ids:
        linked = env.context.linked_payment(NAME, alias)
        if linked:
            return linked
    if not ids:
        raise PayloadError("the object names no invoice, payment_intent or charge")
    return ids[0]


def charge_refunded(env: Envelope) -> list[Canonical]:
    """``amount_refunded`` is the running total: it becomes ``refunded_total``.

    This refund's own amount is the step from ``previous_attributes.amount_refunded`` when Stripe
    includes it, else from the refunded total already stored for the payment (the ledger relies
    on the running total either way, so events arriving out of order never count twice).
    """
    obj = _object(env)
    total, code = _money(obj, "amount_refunded")
    if total == 0:
        return []
    charge = _id(require(obj, "id"))
    ref = _paid_ref(env, obj, obj.get("payment_intent"), charge)
    previous = dig(env.payload, "data.previous_attributes.amount_refunded")
    if isinstance(previous, int) and not isinstance(previous, bool) and 0 <= previous <= obj["amount_refunded"]:
        before = provider_minor(previous, code, provider=NAME, path="data.previous_attributes.amount_refunded")
    else:
        before = env.context.refunded_before(NAME, ref)
    amount = max(total - before, 0)
    refunds = dig(obj, "refunds.data")
    latest = _id(refunds[0]) if isinstance(refunds, list) and refunds else ""
    return [Canonical("payment.refunded", compact({
        "payment_ref": ref,
        "refund_ref": latest or f"{charge}:refunded:{obj['amount_refunded']}",
        "amount": amount,
        "currency": code,
        "refunded_total": total,
        "provider": NAME,
        "payment_aliases": _aliases(ref, obj.get("payment_intent"), charge),
    }))]


def refund_succeeded(env: Envelope) -> list[Canonical]:
    """One refund object (``re_…``): counted once it has ``succeeded``, never while pending."""
    obj = _object(env)
    if obj.get("status") != "succeeded":
        return []
    amount, code = _money(obj, "amount")
    ref = _paid_ref(env, obj, obj.get("payment_intent"), obj.get("charge"))
    return [Canonical("payment.refunded", compact({
        "payment_ref": ref,
        "refund_ref": _id(require(obj, "id")),
        "amount": amount,
        "currency": code,
        "provider": NAME,
        "payment_aliases": _aliases(ref, obj.get("charge")),
    }), from_unix(obj.get("created")))]


# Closed dispute statuses: ``won``; ``warning_closed`` (an inquiry that never became a chargeback)
# and ``charge_refunded`` (the merchant refunded: the refund events reverse, the hold is released)
# release the payment like a win; ``lost`` reverses it.
_DISPUTE_OUTCOMES = {"won": "won", "warning_closed": "won", "charge_refunded": "won", "lost": "lost"}


def _dispute(env: Envelope, outcome: str | None) -> list[Canonical]:
    obj = _object(env)
    amount, code = _money(obj, "amount")
    ref = _paid_ref(env, obj, obj.get("payment_intent"), obj.get("charge"))
    data = compact({
        "payment_ref": ref,
        "dispute_ref": _id(require(obj, "id")),
        "amount": amount,
        "currency": code,
        "provider": NAME,
        "payment_aliases": _aliases(ref, obj.get("charge")),
    })
    data["outcome"] = outcome
    return [Canonical("payment.disputed", data)]


def dispute_created(env: Envelope) -> list[Canonical]:
    return _dispute(env, None)


def dispute_closed(env: Envelope) -> list[Canonical]:
    outcome = _DISPUTE_OUTCOMES.get(text(_object(env).get("status")))
    if outcome is None:
        return []
    return _dispute(env, outcome)


def invoice_payment_paid(env: Envelope) -> list[Canonical]:
    """Keep the basil link from a PaymentIntent (or charge) to its invoice; the invoice is the payment.

    ``invoice.paid`` reports the money, so this stays ``provider.ignored``; its data carries the
    link that later refunds and disputes (which name only ``pi_…``/``ch_…``) are resolved by.
    """
    obj = _object(env)
    invoice = _id(obj.get("invoice"))
    alias = _id(dig(obj, "payment.payment_intent")) or _id(dig(obj, "payment.charge")) \
        or _id(obj.get("payment_intent")) or _id(obj.get("charge"))
    if obj.get("status") != "paid" or not invoice or not alias:
        return []
    return [Canonical("provider.ignored", {
        "provider": NAME, "provider_type": env.type, "link": {"payment_ref": invoice, "alias": alias},
    })]


def subscription_deleted(env: Envelope) -> list[Canonical]:
    obj = _object(env)
    return [Canonical("subscription.cancelled", compact({
        "subscription_ref": _id(require(obj, "id")),
        "provider": NAME,
        "provider_customer_id": _id(obj.get("customer")),
    }), from_unix(obj.get("ended_at")) or from_unix(obj.get("canceled_at")))]


StripeProvider.mapping = {
    "customer.created": customer_created,
    "checkout.session.completed": checkout_session_completed,
    "checkout.session.async_payment_succeeded": checkout_session_paid,
    "invoice.paid": invoice_paid,
    "invoice.payment_succeeded": invoice_paid,
    "payment_intent.succeeded": payment_intent_succeeded,
    "charge.succeeded": charge_succeeded,
    "charge.captured": charge_succeeded,
    "charge.refunded": charge_refunded,
    "refund.created": refund_succeeded,
    "refund.updated": refund_succeeded,
    "charge.refund.updated": refund_succeeded,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
    "customer.subscription.deleted": subscription_deleted,
    "invoice_payment.paid": invoice_payment_paid,
}

register(StripeProvider())
