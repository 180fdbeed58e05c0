"""Flutterwave: v3 ``verif-hash`` and v4 ``flutterwave-signature``; legacy, v3 and v4 payloads.

PROVIDERS.md §3. Authenticity: a request passes when ``flutterwave-signature`` equals
base64(HMAC-SHA256(raw body, secret hash)) (v4), or when ``verif-hash`` equals the secret hash
itself (v3 and the legacy flat shape), both compared in constant time. ``verif-hash`` carries the
secret verbatim, so a delivery row keeps only the fact that it was present.

Payload generations (an account setting decides which one arrives):

* v4 ``{"webhook_id", "timestamp", "type", "data"}``: dedupe on ``webhook_id``;
* v3 ``{"event", "data", "event.type", "meta_data"?}``: no event id; the key is
  ``(event, data.id, data.status)`` (the status too, because a pending charge that later
  succeeds sends ``charge.completed`` again for the same transaction);
* legacy flat ``{"id", "txRef", "event.type": "CARD_TRANSACTION", …}``: ``(event.type, id, status)``;
* refunds, a flat PascalCase object (``AmountRefunded``, ``TransactionId``), typed ``refund``.

Amounts are JSON numbers in MAJOR units, parsed as ``Decimal`` and converted exactly with the
currency's exponent. ``payment_ref`` is the merchant's ``tx_ref`` (v4 ``reference``), falling
back to the transaction id; ``provider_payment_id`` keeps the transaction id, which refunds name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import register
from .base import (
    Canonical,
    Envelope,
    Mapper,
    PayloadError,
    Provider,
    SignatureError,
    compact,
    currency,
    dig,
    email,
    from_iso,
    from_unix_ms,
    major_to_minor,
    referral_code,
    require,
    same,
    text,
)

NAME = "flutterwave"
REFUND_TYPE = "refund"


class FlutterwaveProvider(Provider):
    name = NAME
    recorded_headers = ("flutterwave-signature", "content-type", "user-agent")
    redacted_headers = ("verif-hash",)
    secret_hint = "the dashboard Secret Hash (Settings → Webhooks)"

    def verify(self, body: bytes, headers: Mapping[str, str], secrets: Sequence[str], now: float) -> None:
        signature = (headers.get("flutterwave-signature") or "").strip()
        verif_hash = headers.get("verif-hash") or ""
        if not signature and not verif_hash:
            raise SignatureError("missing_signature", "missing flutterwave-signature or verif-hash header")
        for secret in secrets:
            if signature:
                digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
                if same(signature, base64.b64encode(digest).decode("ascii")):
                    return
            if verif_hash and same(verif_hash, secret):
                return
        raise SignatureError("invalid_signature",
                             "flutterwave-signature / verif-hash does not match a configured secret hash")

    def event_type(self, payload: Any, headers: Mapping[str, str]) -> str:
        shape = _shape(payload)
        if shape == "v4":
            return text(require(payload, "type"))
        if shape == "v3":
            return text(require(payload, "event"))
        if shape == "refund":
            return REFUND_TYPE
        return text(payload.get("event.type")) or "unknown"

    def event_key(self, payload: Any, event_type: str, body: bytes) -> str:
        shape = _shape(payload)
        if shape == "v4":
            return text(require(payload, "webhook_id"))
        if shape == "v3":
            data = payload["data"]
            parts = (data.get("id"), data.get("status"))
        elif shape == "refund":
            parts = (payload.get("id"), payload.get("status"))
        else:
            parts = (payload.get("id"), payload.get("status"))
        if all(p not in (None, "") for p in parts):
            return ":".join([event_type, *(text(p) for p in parts)])
        return f"{event_type}:sha256:{hashlib.sha256(body).hexdigest()}"

    def occurred_at(self, payload: Any, event_type: str) -> datetime | None:
        shape = _shape(payload)
        if shape == "v4":
            return from_iso(dig(payload, "data.created_datetime")) or from_unix_ms(payload.get("timestamp"))
        if shape == "v3":
            return from_iso(dig(payload, "data.created_at")) or from_iso(dig(payload, "data.createdAt"))
        return from_iso(payload.get("updatedAt")) or from_iso(payload.get("createdAt"))

    def mapper_for(self, provider_type: str) -> Mapper | None:
        # Legacy flat payloads name the payment channel (CARD_TRANSACTION, ACCOUNT_TRANSACTION,
        # MPESA_TRANSACTION, …): every one of them is a charge.
        if provider_type.endswith("_TRANSACTION"):
            return legacy_charge
        return super().mapper_for(provider_type)


def _shape(payload: dict[str, Any]) -> str:
    if "webhook_id" in payload and "type" in payload:
        return "v4"
    if "event" in payload and isinstance(payload.get("data"), dict):
        return "v3"
    if "AmountRefunded" in payload or "TransactionId" in payload:
        return "refund"
    return "legacy"


def _meta_code(*carriers: Any) -> str | None:
    """``meta_data``/``meta`` objects, or the older ``[{metaname, metavalue}]`` list."""
    flat: list[Any] = []
    for carrier in carriers:
        if isinstance(carrier, list):
            flat.append({item.get("metaname"): item.get("metavalue") for item in carrier if isinstance(item, dict)})
        else:
            flat.append(carrier)
    return referral_code(*flat)


def _payment(*, ref: Any, transaction_id: Any, amount: Any, code_value: Any, customer: Any,
             meta: tuple[Any, ...], plan: Any = None) -> list[Canonical]:
    code = currency(code_value)
    customer = customer if isinstance(customer, dict) else {}
    transaction = text(transaction_id)
    return [Canonical("payment.succeeded", compact({
        "payment_ref": text(ref) or transaction,
        "provider_payment_id": transaction,
        "provider": NAME,
        "provider_customer_id": text(customer.get("id")),
        "email": email(customer.get("email") or customer.get("customer_email")),
        "amount": major_to_minor(amount, code, path="amount"),
        "currency": code,
        "plan": text(plan.get("id") if isinstance(plan, dict) else plan),
        "referral_code": _meta_code(*meta),
    }))]


def charge_completed(env: Envelope) -> list[Canonical]:
    """``charge.completed`` also reports failures: only a successful charge is a payment."""
    payload = env.payload
    data = payload.get("data")
    if not isinstance(data, dict):
        raise PayloadError("missing data")
    if data.get("status") not in ("successful", "succeeded"):
        return []
    if _shape(payload) == "v4":
        return _payment(ref=data.get("reference"), transaction_id=require(data, "id"), amount=data.get("amount"),
                        code_value=data.get("currency"), customer=data.get("customer"), meta=(data.get("meta"),))
    return _payment(ref=data.get("tx_ref"), transaction_id=require(data, "id"), amount=data.get("amount"),
                    code_value=data.get("currency"), customer=data.get("customer"),
                    meta=(payload.get("meta_data"), data.get("meta")), plan=data.get("plan"))


def legacy_charge(env: Envelope) -> list[Canonical]:
    payload = env.payload
    if payload.get("status") != "successful":
        return []
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    return _payment(ref=payload.get("txRef"), transaction_id=require(payload, "id"), amount=payload.get("amount"),
                    code_value=payload.get("currency"), customer=customer,
                    meta=(payload.get("meta"), payload.get("meta_data")))


def refund(env: Envelope) -> list[Canonical]:
    """A flat refund object; it has no currency, so the original charge supplies it."""
    payload = env.payload
    if text(payload.get("status")).lower() != "completed":
        return []
    transaction = text(require(payload, "TransactionId"))
    original = env.context.find_payment(NAME, transaction)
    if original is None:
        raise PayloadError(f"refund of transaction {transaction}, which has not been received: its currency is "
                           "unknown; re-normalise this delivery once the charge has arrived")
    code = original["currency"]
    return [Canonical("payment.refunded", compact({
        "payment_ref": original["payment_ref"],
        "refund_ref": text(require(payload, "id")),
        "amount": major_to_minor(payload.get("AmountRefunded"), code, path="AmountRefunded"),
        "currency": code,
        "provider": NAME,
    }))]


def subscription_cancelled(env: Envelope) -> list[Canonical]:
    data = env.payload.get("data")
    if not isinstance(data, dict):
        raise PayloadError("missing data")
    customer = data.get("customer") if isinstance(data.get("customer"), dict) else {}
    return [Canonical("subscription.cancelled", compact({
        "subscription_ref": text(require(data, "id")),
        "provider": NAME,
        "provider_customer_id": text(customer.get("id")),
        "email": email(customer.get("customer_email") or customer.get("email")),
    }))]


FlutterwaveProvider.mapping = {
    "charge.completed": charge_completed,
    "subscription.cancelled": subscription_cancelled,
    REFUND_TYPE: refund,
}

register(FlutterwaveProvider())
