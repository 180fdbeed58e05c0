"""Adding a provider is one module and its registration: the receiver needs nothing else."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from django.test import Client

from ingestion import providers
from ingestion.models import Delivery, Event
from ingestion.providers.base import (
    Canonical,
    Envelope,
    Provider,
    SignatureError,
    currency,
    minor_units,
    referral_code,
    require,
    same,
    text,
)
from ingestion.workspaces import provider_secret_set

pytestmark = pytest.mark.django_db

SECRET = "mollie-test-signing-secret"
BODY = (b'{"id":"tr_7UhSN1zuXS","status":"paid","amount":{"value":"1250","currency":"EUR"},'
        b'"metadata":{"refairn_code":"partner7"},"customerId":"cst_8wmqcHMN4U"}')


class MollieLike(Provider):
    """What a sixth provider module holds: its verifier, its keys and its mapping table."""

    name = "mollie"
    recorded_headers = ("x-mollie-signature", "content-type")

    def verify(self, body: bytes, headers: Mapping[str, str], secrets: Sequence[str], now: float) -> None:
        given = headers.get("x-mollie-signature") or ""
        if not given:
            raise SignatureError("missing_signature", "missing X-Mollie-Signature header")
        if not any(same(given, hmac.new(s.encode(), body, hashlib.sha256).hexdigest()) for s in secrets):
            raise SignatureError("invalid_signature", "X-Mollie-Signature does not match")

    def event_type(self, payload: Any, headers: Mapping[str, str]) -> str:
        return f"payment.{text(require(payload, 'status'))}"

    def event_key(self, payload: Any, event_type: str, body: bytes) -> str:
        return f"{text(require(payload, 'id'))}:{event_type}"


def _paid(env: Envelope) -> list[Canonical]:
    payload = env.payload
    code = currency(require(payload, "amount.currency"))
    return [Canonical("payment.succeeded", {
        "payment_ref": text(payload["id"]), "provider": "mollie", "provider_customer_id": text(payload["customerId"]),
        "amount": minor_units(require(payload, "amount.value"), code, path="amount.value"), "currency": code,
        "referral_code": referral_code(payload.get("metadata")),
    })]


MollieLike.mapping = {"payment.paid": _paid}


@pytest.fixture
def mollie() -> Iterator[None]:
    providers.register(MollieLike())
    yield
    providers._registry.pop("mollie")


def test_registered_module_receives_verified_webhooks(client: Client, tenant, mollie) -> None:
    """Registered, with a secret set through the usual service: verified, normalised, stored, deduped."""
    biz = tenant.workspace.id
    provider_secret_set(workspace=tenant.workspace, provider="mollie", secret=SECRET)
    signature = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    for _ in range(2):
        response = client.post(f"/webhooks/mollie/{biz}", data=BODY, content_type="application/json",
                               headers={"X-Mollie-Signature": signature})
        assert response.status_code == 200
    event = Event.objects.get(source="mollie")
    assert (event.type, event.source_event_id) == ("payment.succeeded", "tr_7UhSN1zuXS:payment.paid:payment.succeeded")
    assert event.data["amount"] == 1250
    assert event.data["referral_code"] == "PARTNER7"
    assert list(Delivery.objects.order_by("received_at").values_list("verdict", flat=True)) == ["accepted",
                                                                                                 "duplicate"]


def test_unregistered_provider_secret_is_refused(tenant) -> None:
    """Without its registration the name is unknown to the secret service."""
    with pytest.raises(ValueError, match="unknown provider 'mollie'"):
        provider_secret_set(workspace=tenant.workspace, provider="mollie", secret=SECRET)
