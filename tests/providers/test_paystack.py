"""Paystack normalisation: composite dedupe keys, subunit amounts, metadata in every shape."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from .events import appended, at
from .signing import SECRETS, dump, fixture_json, post_body, post_fixture

pytestmark = pytest.mark.django_db


def _post(client: Client, biz: str, *names: str) -> None:
    for name in names:
        response = post_fixture(client, "paystack", name, business_id=biz)
        assert response.status_code == 200, response.content


@pytest.mark.smoke
def test_charge_success(client: Client, biz: str) -> None:
    """charge.success: reference as payment_ref, kobo amount, customer_code, metadata code."""
    _post(client, biz, "charge.success")
    assert appended(biz, "paystack") == [{
        "type": "payment.succeeded",
        "source_event_id": "charge.success:3041587712:payment.succeeded",
        "occurred_at": at("2026-01-05T10:15:42Z"),
        "data": {"payment_ref": "T8ZK3J0QXN", "provider": "paystack", "provider_customer_id": "CUS_xnxdt6s1zg1f4nx",
                 "email": "chidi@example.ng", "amount": 500000, "currency": "NGN", "referral_code": "PARTNER7"},
    }]


@pytest.mark.parametrize(("name", "amount"), [
    ("charge.success__metadata_string", 250050), ("charge.success__custom_fields", 100000),
])
def test_referral_code_in_json_string_and_custom_fields(client: Client, biz: str, name: str, amount: int) -> None:
    """Metadata sent as a JSON string, or as a payment page's custom_fields, still yields the code."""
    _post(client, biz, name)
    (event,) = appended(biz, "paystack")
    assert (event["data"]["referral_code"], event["data"]["amount"]) == ("PARTNER7", amount)


def test_plan_charge_without_metadata(client: Client, biz: str) -> None:
    """A plan (renewal) charge with metadata 0 carries the plan code and no referral code."""
    _post(client, biz, "charge.success__renewal_plan")
    (event,) = appended(biz, "paystack")
    assert event["data"] == {"payment_ref": "8n1w6xrn5b", "provider": "paystack",
                             "provider_customer_id": "CUS_xnxdt6s1zg1f4nx", "email": "chidi@example.ng",
                             "amount": 500000, "currency": "NGN", "plan": "PLN_gx2wn530m0i3w3m"}


def test_processed_refund_with_string_amount(client: Client, biz: str) -> None:
    """refund.processed (amount as a string) refunds the original reference; pending is acknowledged."""
    _post(client, biz, "refund.pending", "refund.processed")
    assert appended(biz, "paystack") == [
        {"type": "provider.ignored", "source_event_id": "refund.pending:T8ZK3J0QXN:pending:provider.ignored",
         "occurred_at": appended(biz, "paystack")[0]["occurred_at"],
         "data": {"provider": "paystack", "provider_type": "refund.pending"}},
        {"type": "payment.refunded", "source_event_id": "refund.processed:T8ZK3J0QXN:1xqY9tK0Gz:payment.refunded",
         "occurred_at": appended(biz, "paystack")[1]["occurred_at"],
         "data": {"payment_ref": "T8ZK3J0QXN", "refund_ref": "1xqY9tK0Gz", "amount": 200000, "currency": "NGN",
                  "provider": "paystack"}},
    ]


@pytest.mark.parametrize(("name", "outcome"), [
    ("charge.dispute.create", None), ("charge.dispute.resolve__declined", "won"),
    ("charge.dispute.resolve__merchant_accepted", "lost"),
])
def test_dispute_lifecycle(client: Client, biz: str, name: str, outcome: str | None) -> None:
    """A chargeback opens (null), and resolves won (declined) or lost (merchant-accepted)."""
    _post(client, biz, name)
    (event,) = appended(biz, "paystack")
    assert event["type"] == "payment.disputed"
    assert event["data"] == {"payment_ref": "T8ZK3J0QXN", "dispute_ref": "358950", "amount": 500000,
                             "currency": "NGN", "provider": "paystack", "outcome": outcome}


def _disputed_amount(client: Client, biz: str, payload: dict[str, Any]) -> int:
    """Post a (changed) charge.dispute.create, signed, and return the disputed amount it normalised to."""
    response = post_body(client, "paystack", dump(payload), business_id=biz, secret=SECRETS["paystack"])
    assert response.status_code == 200, response.content
    (event,) = appended(biz, "paystack")
    assert (event["type"], event["data"]["currency"]) == ("payment.disputed", "NGN")
    return event["data"]["amount"]


def test_dispute_amount_is_the_refund_amount_not_the_transactions(client: Client, biz: str) -> None:
    """PROVIDERS.md §2.3: the disputed amount is data.refund_amount, which can be less than the transaction."""
    payload = fixture_json("paystack", "charge.dispute.create")
    payload["data"]["refund_amount"] = 200000
    assert payload["data"]["transaction"]["amount"] == 500000
    assert _disputed_amount(client, biz, payload) == 200000


@pytest.mark.parametrize("refund_amount", ["null", "absent"])
def test_dispute_without_a_refund_amount_falls_back_to_the_transaction_amount(client: Client, biz: str,
                                                                               refund_amount: str) -> None:
    """A dispute whose refund_amount is null or missing is taken as disputing the whole transaction."""
    payload = fixture_json("paystack", "charge.dispute.create")
    if refund_amount == "null":
        payload["data"]["refund_amount"] = None
    else:
        del payload["data"]["refund_amount"]
    assert _disputed_amount(client, biz, payload) == 500000


def test_dispute_events_dedupe_on_id_and_status(client: Client, biz: str) -> None:
    """Paystack has no event id: the dispute key is (event, data.id, data.status)."""
    _post(client, biz, "charge.dispute.create")
    assert appended(biz, "paystack")[0]["source_event_id"] == (
        "charge.dispute.create:358950:awaiting-merchant-feedback:payment.disputed")


def test_subscription_create_is_the_signup(client: Client, biz: str) -> None:
    """subscription.create names the customer (Paystack has no customer webhook)."""
    _post(client, biz, "subscription.create")
    assert appended(biz, "paystack") == [{
        "type": "customer.created",
        "source_event_id": "subscription.create:SUB_vsyqdmlzble3uii:active:customer.created",
        "occurred_at": at("2026-01-05T10:15:45Z"),
        "data": {"provider": "paystack", "provider_customer_id": "CUS_xnxdt6s1zg1f4nx",
                 "email": "chidi@example.ng", "name": "Chidi Anagonye"},
    }]


def test_subscription_disable_is_a_cancellation(client: Client, biz: str) -> None:
    """subscription.disable (the subscription has ended) becomes subscription.cancelled."""
    _post(client, biz, "subscription.disable")
    (event,) = appended(biz, "paystack")
    assert event["type"] == "subscription.cancelled"
    assert event["occurred_at"] == at("2026-06-05T00:00:03Z")
    assert event["data"] == {"subscription_ref": "SUB_vsyqdmlzble3uii", "provider": "paystack",
                             "provider_customer_id": "CUS_xnxdt6s1zg1f4nx", "email": "chidi@example.ng"}


def test_second_refund_completes_a_full_refund(client: Client, biz: str) -> None:
    """Paystack refunds carry their own amount (no running total): 2,000.00 then 3,000.00 of 5,000.00."""
    _post(client, biz, "refund.processed", "refund.processed__rest")
    assert [e["data"] for e in appended(biz, "paystack")] == [
        {"payment_ref": "T8ZK3J0QXN", "refund_ref": "1xqY9tK0Gz", "amount": 200000, "currency": "NGN",
         "provider": "paystack"},
        {"payment_ref": "T8ZK3J0QXN", "refund_ref": "7hVb2mQ4Lp", "amount": 300000, "currency": "NGN",
         "provider": "paystack"},
    ]


def test_unmapped_event_is_ignored(client: Client, biz: str) -> None:
    """transfer.success has no meaning for commissions: kept as provider.ignored with its type."""
    _post(client, biz, "transfer.success")
    assert [(e["type"], e["data"]) for e in appended(biz, "paystack")] == [
        ("provider.ignored", {"provider": "paystack", "provider_type": "transfer.success"})]
