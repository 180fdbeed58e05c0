"""Flutterwave normalisation: legacy, v3 and v4 shapes; major units parsed as Decimal, converted exactly."""

from __future__ import annotations

import pytest
from django.test import Client

from ingestion.models import Delivery

from .events import appended, at
from .signing import post_fixture

pytestmark = pytest.mark.django_db


def _post(client: Client, biz: str, *names: str, scheme: str | None = None) -> None:
    for name in names:
        response = post_fixture(client, "flutterwave", name, business_id=biz, scheme=scheme)
        assert response.status_code == 200, response.content


@pytest.mark.smoke
def test_v3_charge_completed(client: Client, biz: str) -> None:
    """v3: tx_ref is the payment, 2500.5 NGN is 250050 kobo, the code comes from meta_data."""
    _post(client, biz, "charge.completed__v3")
    assert appended(biz, "flutterwave") == [{
        "type": "payment.succeeded",
        "source_event_id": "charge.completed:285959875:successful:payment.succeeded",
        "occurred_at": at("2026-01-07T19:17:04Z"),
        "data": {"payment_ref": "acme-sub-2026-0001", "provider_payment_id": "285959875", "provider": "flutterwave",
                 "provider_customer_id": "215604089", "email": "yemi@example.com", "amount": 250050,
                 "currency": "NGN", "referral_code": "PARTNER7"},
    }]


def test_v3_failed_charge_is_only_acknowledged(client: Client, biz: str) -> None:
    """charge.completed with status failed is no payment."""
    _post(client, biz, "charge.completed__v3_failed")
    assert [e["type"] for e in appended(biz, "flutterwave")] == ["provider.ignored"]


def test_v4_charge_completed(client: Client, biz: str) -> None:
    """v4: webhook_id dedupes, data.reference is the payment, 2500.25 KES is 250025."""
    _post(client, biz, "charge.completed__v4", scheme="v4")
    assert appended(biz, "flutterwave") == [{
        "type": "payment.succeeded",
        "source_event_id": "wbk_ksQ3W7HqQ9nS2cUwB1xF:payment.succeeded",
        "occurred_at": at("2026-01-08T19:03:07.540Z"),
        "data": {"payment_ref": "acme-ke-2026-0042", "provider_payment_id": "chg_Kx7bR2vT9m",
                 "provider": "flutterwave", "provider_customer_id": "cus_Xy9RkP2qW1",
                 "email": "wanjiku@example.co.ke", "amount": 250025, "currency": "KES", "referral_code": "PARTNER7"},
    }]


def test_legacy_flat_payload(client: Client, biz: str) -> None:
    """The legacy flat shape (txRef, event.type CARD_TRANSACTION, meta list) is a payment."""
    _post(client, biz, "legacy__card_transaction")
    assert appended(biz, "flutterwave") == [{
        "type": "payment.succeeded",
        "source_event_id": "CARD_TRANSACTION:1165373:successful:payment.succeeded",
        "occurred_at": at("2026-01-09T13:48:24Z"),
        "data": {"payment_ref": "acme-legacy-771", "provider_payment_id": "1165373", "provider": "flutterwave",
                 "provider_customer_id": "309012", "email": "kofi@example.com.gh", "amount": 100000,
                 "currency": "GHS", "referral_code": "PARTNER7"},
    }]


def test_refund_takes_its_currency_from_the_original_charge(client: Client, biz: str) -> None:
    """A flat refund names TransactionId only: the stored charge supplies payment_ref and currency."""
    _post(client, biz, "charge.completed__v3", "refund")
    refund = appended(biz, "flutterwave")[-1]
    assert refund == {
        "type": "payment.refunded", "source_event_id": "refund:75923:completed:payment.refunded",
        "occurred_at": at("2026-01-10T10:21:07Z"),
        "data": {"payment_ref": "acme-sub-2026-0001", "refund_ref": "75923", "amount": 100050, "currency": "NGN",
                 "provider": "flutterwave"},
    }


def test_refund_before_its_charge_is_an_error_to_renormalise_later(client: Client, biz: str) -> None:
    """Without the charge the refund's currency is unknown: 422, an error delivery, nothing appended."""
    response = post_fixture(client, "flutterwave", "refund", business_id=biz)
    assert response.status_code == 422
    assert "re-normalise" in response.json()["error"]["message"]
    assert Delivery.objects.get().verdict == "error"
    assert appended(biz, "flutterwave") == []


def test_subscription_cancelled(client: Client, biz: str) -> None:
    """subscription.cancelled names the subscription and the customer's email."""
    _post(client, biz, "subscription.cancelled")
    (event,) = appended(biz, "flutterwave")
    assert event["type"] == "subscription.cancelled"
    assert event["data"] == {"subscription_ref": "6143", "provider": "flutterwave",
                             "provider_customer_id": "215604089", "email": "yemi@example.com"}


def test_plan_renewal_charge_carries_the_plan_and_no_code(client: Client, biz: str) -> None:
    """A payment-plan charge is another charge.completed: its own tx_ref, the plan id, no meta."""
    _post(client, biz, "charge.completed__v3_renewal")
    assert appended(biz, "flutterwave") == [{
        "type": "payment.succeeded",
        "source_event_id": "charge.completed:291733402:successful:payment.succeeded",
        "occurred_at": at("2026-02-07T19:17:09Z"),
        "data": {"payment_ref": "acme-sub-2026-0001-r1", "provider_payment_id": "291733402",
                 "provider": "flutterwave", "provider_customer_id": "215604089", "email": "yemi@example.com",
                 "amount": 250050, "currency": "NGN", "plan": "6143"},
    }]


def test_partial_then_remaining_refund(client: Client, biz: str) -> None:
    """Two refunds of one charge (1,000.50 then 1,500.00 of 2,500.50) each carry their own amount."""
    _post(client, biz, "charge.completed__v3", "refund", "refund__rest")
    refunds = [e["data"] for e in appended(biz, "flutterwave") if e["type"] == "payment.refunded"]
    assert [(r["refund_ref"], r["amount"], r["payment_ref"]) for r in refunds] == [
        ("75923", 100050, "acme-sub-2026-0001"), ("75988", 150000, "acme-sub-2026-0001")]


def test_unmapped_event_is_ignored(client: Client, biz: str) -> None:
    """transfer.completed is kept as provider.ignored with its type."""
    _post(client, biz, "transfer.completed")
    assert [(e["type"], e["data"]) for e in appended(biz, "flutterwave")] == [
        ("provider.ignored", {"provider": "flutterwave", "provider_type": "transfer.completed"})]
