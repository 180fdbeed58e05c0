"""Paddle Billing: ``Paddle-Signature: ts=<unix>;h1=<hex>`` = HMAC-SHA256 of ``"<ts>:" + raw body``.

PROVIDERS.md §4.1. The key is the notification destination's secret (``pdl_ntfset_…``). Several
``h1`` values may arrive during Paddle's own rotation; any configured secret matching any ``h1``
passes.

Timestamp tolerance: **300 seconds, both ways**. Paddle's SDK uses 5 s, which queueing and clock
skew exceed in practice; Paddle signs every attempt afresh, so a real retry is never stale, and a
replay inside the window is only a duplicate (dedupe on ``event_id``) that appends nothing. A
timestamp more than 300 s in the future is refused as well, as the SDK does.

Amounts are strings of integers in the lowest denomination. ``payment_ref`` is the transaction id
(``txn_…``); adjustments (refunds, chargebacks) name it as ``transaction_id``. Paddle Classic
(form-encoded, RSA ``p_signature``) is not accepted: its body is refused as unsigned.
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

NAME = "paddle"
TOLERANCE_SECONDS = 300


class PaddleProvider(Provider):
    name = NAME
    recorded_headers = ("paddle-signature", "content-type", "user-agent")
    secret_hint = "the notification destination's secret key (pdl_ntfset_…)"

    def verify(self, body: bytes, headers: Mapping[str, str], secrets: Sequence[str], now: float) -> None:
        header = headers.get("paddle-signature")
        if not header:
            raise SignatureError("missing_signature", "missing Paddle-Signature header")
        timestamp, signatures = _parse(header)
        signed = f"{timestamp}:".encode() + body
        matched = False
        for secret in secrets:
            expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
            # Compare against every h1 without stopping early, so timing says nothing about which.
            if any([same(given, expected) for given in signatures]):
                matched = True
                break
        if not matched:
            raise SignatureError("invalid_signature", "no Paddle-Signature h1 matches a configured secret")
        if timestamp < now - TOLERANCE_SECONDS:
            raise SignatureError("stale_signature", f"signature timestamp is older than {TOLERANCE_SECONDS} s")
        if timestamp > now + TOLERANCE_SECONDS:
            raise SignatureError("future_signature",
                                 f"signature timestamp is more than {TOLERANCE_SECONDS} s in the future")

    def event_type(self, payload: Any, headers: Mapping[str, str]) -> str:
        return text(require(payload, "event_type"))

    def event_key(self, payload: Any, event_type: str, body: bytes) -> str:
        return text(require(payload, "event_id"))

    def occurred_at(self, payload: Any, event_type: str) -> datetime | None:
        return from_iso(payload.get("occurred_at"))


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(";"):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("malformed_signature", "Paddle-Signature is not ts=…;h1=…")
        if key == "ts":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("malformed_signature", "Paddle-Signature ts is not a number") from None
        elif key == "h1":
            signatures.append(value.strip().lower())
        else:
            raise SignatureError("malformed_signature", f"unexpected Paddle-Signature item {key[:20]!r}")
    if timestamp is None or not signatures:
        raise SignatureError("malformed_signature", "Paddle-Signature needs ts and at least one h1")
    return timestamp, signatures


def _data(env: Envelope) -> dict[str, Any]:
    data = env.payload.get("data")
    if not isinstance(data, dict):
        raise PayloadError("missing data")
    return data


def customer_created(env: Envelope) -> list[Canonical]:
    data = _data(env)
    return [Canonical("customer.created", compact({
        "provider": NAME,
        "provider_customer_id": text(require(data, "id")),
        "email": email(data.get("email")),
        "name": text(data.get("name")),
        "referral_code": referral_code(data.get("custom_data")),
    }))]


def transaction_completed(env: Envelope) -> list[Canonical]:
    """A completed transaction is a payment; ``origin`` says first purchase or renewal.

    A zero total (a trial checkout) is no payment, but it still carries the referral code in
    ``custom_data``: it becomes the customer's signup so the code is not lost.
    """
    data = _data(env)
    code = currency(require(data, "currency_code"))
    totals = dig(data, "details.totals") or {}
    field = "grand_total" if totals.get("grand_total") not in (None, "") else "total"
    amount = minor_units(totals.get(field), code, path=f"data.details.totals.{field}")
    customer_id = text(data.get("customer_id"))
    code_found = referral_code(data.get("custom_data"))
    if amount == 0:
        if not customer_id:
            return []
        return [Canonical("customer.created", compact({
            "provider": NAME,
            "provider_customer_id": customer_id,
            "referral_code": code_found,
        }))]
    items = data.get("items")
    first = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}
    return [Canonical("payment.succeeded", compact({
        "payment_ref": text(require(data, "id")),
        "provider": NAME,
        "provider_customer_id": customer_id,
        "amount": amount,
        "currency": code,
        "subscription_ref": text(data.get("subscription_id")),
        "plan": text(dig(first, "price.id")),
        "referral_code": code_found,
        "renewal": data.get("origin") == "subscription_recurring",
    }))]


def adjustment(env: Envelope) -> list[Canonical]:
    """Refunds count only once ``approved``; an approved chargeback is a lost dispute.

    PROVIDERS.md §4.1: a ``chargeback`` adjustment is created already ``approved`` (the money has
    left) and Paddle sends no later "lost" notification, so it is the dispute's outcome, ``lost``:
    the payment's commissions are reversed in full. Mapping it to an *opened* dispute left them
    on hold for ever.

    ``chargeback_reverse`` (Paddle won the chargeback back) is mapped as before, to ``won`` on the
    same dispute. The ledger keeps a dispute's first outcome (commissions/domain.py): after a
    ``lost`` it records the ``won`` in the entry's history as ignored and the reversal stands; a
    reversal cannot be undone by a later win, so an operator who wants the agent paid again does
    it by hand. If the reverse is stored first (Paddle does not order notifications), the dispute
    is won and the chargeback that follows is ignored: the commission stands, as the money did.

    ``chargeback_warning`` moves no money and ``credit`` is not a refund of a payment.
    """
    data = _data(env)
    action = data.get("action")
    if data.get("status") != "approved" or action not in ("refund", "chargeback", "chargeback_reverse"):
        return []
    code = currency(require(data, "currency_code"))
    transaction = text(require(data, "transaction_id"))
    amount = minor_units(dig(data, "totals.total"), code, path="data.totals.total")
    if action == "refund":
        return [Canonical("payment.refunded", compact({
            "payment_ref": transaction,
            "refund_ref": text(require(data, "id")),
            "amount": amount,
            "currency": code,
            "provider": NAME,
        }))]
    disputed = compact({
        "payment_ref": transaction,
        # A chargeback and its reversal are separate adjustments: the transaction links them.
        "dispute_ref": f"chargeback:{transaction}",
        "amount": amount,
        "currency": code,
        "provider": NAME,
    })
    disputed["outcome"] = "lost" if action == "chargeback" else "won"
    return [Canonical("payment.disputed", disputed)]


def subscription_canceled(env: Envelope) -> list[Canonical]:
    data = _data(env)
    return [Canonical("subscription.cancelled", compact({
        "subscription_ref": text(require(data, "id")),
        "provider": NAME,
        "provider_customer_id": text(data.get("customer_id")),
    }), from_iso(data.get("canceled_at")))]


PaddleProvider.mapping = {
    "customer.created": customer_created,
    "transaction.completed": transaction_completed,
    "adjustment.created": adjustment,
    "adjustment.updated": adjustment,
    "subscription.canceled": subscription_canceled,
}

register(PaddleProvider())
