"""Sign webhook bodies exactly as each provider does, and post them to the receiver.

``post_fixture(client, provider, name, secret=..., business_id=...)`` sends the fixture file's
bytes untouched, so what is verified is what is on disk. Nothing here touches the server-side
verifier: for Stripe the header comes from the ``stripe`` package itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import stripe
from django.test import Client

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# One test secret per provider, in each provider's own format.
SECRETS = {
    "stripe": "whsec_test_9c1f4b2e7a6d5c3b1a0f9e8d7c6b5a49",
    "paystack": "sk_test_5b8f0e2d4c6a8b0d2f4e6a8c0b2d4f6e8a0c2b4d",
    "flutterwave": "acme-flw-secret-hash-2026",
    "paddle": "pdl_ntfset_01hv8wq1t8c4z9g3xj2k5m6n7p_Vq7q0lXc5kZs1N2b3C4d5E6f7G8h9I0j",
    "lemonsqueezy": "ls-acme-signing-secret-42",
}
ROTATED = {
    "stripe": "whsec_test_new_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "paystack": "sk_test_new_0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d",
    "flutterwave": "acme-flw-secret-hash-2026-rotated",
    "paddle": "pdl_ntfset_01hw0000000000000000000000_NewSecretKey0123456789abcdef",
    "lemonsqueezy": "ls-acme-signing-secret-rotated",
}
WRONG = "not-the-configured-secret-0000"


def fixture_bytes(provider: str, name: str) -> bytes:
    return (FIXTURES / provider / f"{name}.json").read_bytes()


def fixture_json(provider: str, name: str) -> dict[str, Any]:
    return json.loads(fixture_bytes(provider, name), parse_float=Decimal)


def dump(payload: dict[str, Any]) -> bytes:
    """Serialise a (modified) fixture compactly."""
    return json.dumps(payload, default=_decimal, separators=(",", ":")).encode()


def _decimal(value: object) -> object:
    # Test amounts are short decimals whose shortest float repr is the same text (2500.5).
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(type(value))


def sign(provider: str, body: bytes, secret: str, *, timestamp: int | None = None,
         scheme: str | None = None) -> dict[str, str]:
    """Return the headers the provider would send with ``body`` signed by ``secret``."""
    ts = int(time.time()) if timestamp is None else timestamp
    if provider == "stripe":
        payload = body.decode()
        if hasattr(stripe.WebhookSignature, "generate_signature_header"):
            header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=ts)
        else:  # older SDKs: the documented scheme
            mac = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
            header = f"t={ts},v1={mac}"
        return {"Stripe-Signature": header}
    if provider == "paystack":
        return {"x-paystack-signature": hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()}
    if provider == "flutterwave":
        if scheme is None:
            scheme = "v4" if b'"webhook_id"' in body else "v3"
        if scheme == "v4":
            digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
            return {"flutterwave-signature": base64.b64encode(digest).decode()}
        return {"verif-hash": secret}
    if provider == "paddle":
        mac = hmac.new(secret.encode(), f"{ts}:".encode() + body, hashlib.sha256).hexdigest()
        return {"Paddle-Signature": f"ts={ts};h1={mac}"}
    if provider == "lemonsqueezy":
        try:
            event_name = json.loads(body).get("meta", {}).get("event_name", "")
        except ValueError:
            event_name = ""
        return {"X-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
                "X-Event-Name": event_name}
    raise ValueError(provider)


def post_body(client: Client, provider: str, body: bytes, *, business_id: str, secret: str | None = None,
              timestamp: int | None = None, headers: dict[str, str] | None = None, scheme: str | None = None) -> Any:
    """Sign ``body`` (unless ``secret`` is None) and POST it to the provider's webhook URL."""
    sent = sign(provider, body, secret, timestamp=timestamp, scheme=scheme) if secret is not None else {}
    sent.update(headers or {})
    return client.post(f"/webhooks/{provider}/{business_id}", data=body, content_type="application/json",
                       headers=sent)


def post_fixture(client: Client, provider: str, name: str, *, business_id: str, secret: str | None = None,
                 timestamp: int | None = None, headers: dict[str, str] | None = None,
                 scheme: str | None = None) -> Any:
    """POST the fixture ``tests/fixtures/<provider>/<name>.json`` signed with the provider's real scheme.

    ``secret`` defaults to the test secret of that provider; pass ``secret=None`` explicitly
    through ``post_body`` to send no signature at all.
    """
    body = fixture_bytes(provider, name)
    return post_body(client, provider, body, business_id=business_id, secret=secret or SECRETS[provider],
                     timestamp=timestamp, headers=headers, scheme=scheme)
