"""LemonSqueezy normalisation: orders, renewal invoices, cumulative refunds, composite dedupe."""

from __future__ import annotations

import pytest
from django.test import Client

from ingestion.models import Event

from .events import appended, at
from .signing import SECRETS, dump, fixture_json, post_body, post_fixture

pytestmark = pytest.mark.django_db


def _post(client: Client, biz: str, *names: str) -> None:
    for name in names:
        response = post_fixture(client, "lemonsqueezy", name, business_id=biz)
        assert response.status_code == 200, response.content


@pytest.mark.smoke
def test_order_created_is_the_first_payment(client: Client, biz: str) -> None:
    """order_created: ls_order_<id>, cents, the code from meta.custom_data."""
    _post(client, biz, "order_created")
    assert appended(biz, "lemonsqueezy") == [{
        "type": "payment.succeeded",
        "source_event_id": "order_created:orders:1234567:2026-01-14T12:43:48.000000Z:payment.succeeded",
        "occurred_at": at("2026-01-14T12:43:46Z"),
        "data": {"payment_ref": "ls_order_1234567", "provider": "lemonsqueezy", "provider_customer_id": "987654",
                 "email": "lin.wei@example.com", "amount": 999, "currency": "USD", "plan": "445566",
                 "referral_code": "PARTNER7", "renewal": False},
    }]


def test_subscription_created_is_the_signup(client: Client, biz: str) -> None:
    """subscription_created carries the checkout's custom data: the signup with its code."""
    _post(client, biz, "subscription_created")
    (event,) = appended(biz, "lemonsqueezy")
    assert event["type"] == "customer.created"
    assert event["data"] == {"provider": "lemonsqueezy", "provider_customer_id": "987654",
                             "email": "lin.wei@example.com", "name": "Lin Wei", "referral_code": "PARTNER7"}


def test_initial_invoice_does_not_count_the_first_payment_twice(client: Client, biz: str) -> None:
    """The initial subscription invoice is the same money as order_created: acknowledged only."""
    _post(client, biz, "order_created", "subscription_payment_success__initial")
    assert [e["type"] for e in appended(biz, "lemonsqueezy")] == ["payment.succeeded", "provider.ignored"]


def test_renewal_invoice_is_a_payment(client: Client, biz: str) -> None:
    """A renewal subscription-invoice is its own payment, ls_invoice_<id>."""
    _post(client, biz, "subscription_payment_success__renewal")
    (event,) = appended(biz, "lemonsqueezy")
    assert event["data"] == {"payment_ref": "ls_invoice_3300002", "provider": "lemonsqueezy",
                             "provider_customer_id": "987654", "email": "lin.wei@example.com", "amount": 999,
                             "currency": "USD", "subscription_ref": "445577", "referral_code": "PARTNER7",
                             "renewal": True}


def test_partial_then_full_refund_report_running_totals(client: Client, biz: str) -> None:
    """refunded_amount is cumulative: it is refunded_total; amount is the step from the stored total."""
    _post(client, biz, "order_refunded__partial", "order_refunded__full")
    assert [e["data"] for e in appended(biz, "lemonsqueezy")] == [
        {"payment_ref": "ls_order_1234567", "refund_ref": "ls_order_1234567:refunded:300", "amount": 300,
         "currency": "USD", "refunded_total": 300, "provider": "lemonsqueezy"},
        {"payment_ref": "ls_order_1234567", "refund_ref": "ls_order_1234567:refunded:999", "amount": 699,
         "currency": "USD", "refunded_total": 999, "provider": "lemonsqueezy"},
    ]


def test_running_total_arriving_after_a_higher_one_refunds_nothing_more(client: Client, biz: str) -> None:
    """Out of order (full, then the older partial): the late partial's own amount is 0, its total kept."""
    _post(client, biz, "order_refunded__full", "order_refunded__partial")
    assert [(e["data"]["amount"], e["data"]["refunded_total"]) for e in appended(biz, "lemonsqueezy")] == [
        (999, 999), (0, 300)]


def test_subscription_cancelled_grace_period_is_only_acknowledged(client: Client, biz: str) -> None:
    """subscription_cancelled may still be resumed: kept as provider.ignored, subscription_expired cancels."""
    _post(client, biz, "subscription_cancelled")
    assert [(e["type"], e["data"]) for e in appended(biz, "lemonsqueezy")] == [
        ("provider.ignored", {"provider": "lemonsqueezy", "provider_type": "subscription_cancelled"})]


def test_renewal_invoice_refund(client: Client, biz: str) -> None:
    """subscription_payment_refunded refunds the renewal invoice."""
    _post(client, biz, "subscription_payment_refunded")
    (event,) = appended(biz, "lemonsqueezy")
    assert event["data"]["payment_ref"] == "ls_invoice_3300002"
    assert event["data"]["refunded_total"] == 999


def test_subscription_expired_is_the_cancellation(client: Client, biz: str) -> None:
    """subscription_expired (the end, not the resumable grace period) becomes subscription.cancelled."""
    _post(client, biz, "subscription_expired")
    assert appended(biz, "lemonsqueezy") == [{
        "type": "subscription.cancelled",
        "source_event_id": "subscription_expired:subscriptions:445577:2026-04-14T12:43:55.000000Z:"
                           "subscription.cancelled",
        "occurred_at": at("2026-04-14T12:43:46Z"),
        "data": {"subscription_ref": "445577", "provider": "lemonsqueezy", "provider_customer_id": "987654",
                 "email": "lin.wei@example.com"},
    }]


def test_same_resource_updated_later_is_a_new_event(client: Client, biz: str) -> None:
    """The composite key includes updated_at: a later change to the same order is not a duplicate."""
    _post(client, biz, "order_refunded__partial")
    payload = fixture_json("lemonsqueezy", "order_refunded__partial")
    payload["data"]["attributes"]["updated_at"] = "2026-01-20T09:05:00.000000Z"
    response = post_body(client, "lemonsqueezy", dump(payload), business_id=biz, secret=SECRETS["lemonsqueezy"])
    assert response.json()["verdict"] == "accepted"
    assert Event.objects.filter(source="lemonsqueezy").count() == 2


def test_unmapped_event_is_ignored(client: Client, biz: str) -> None:
    """license_key_created is kept as provider.ignored with its type."""
    _post(client, biz, "license_key_created")
    assert [(e["type"], e["data"]) for e in appended(biz, "lemonsqueezy")] == [
        ("provider.ignored", {"provider": "lemonsqueezy", "provider_type": "license_key_created"})]
