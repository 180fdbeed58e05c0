"""Stripe normalisation: each mapped event type, asserted exactly (amounts in ISO minor units)."""

from __future__ import annotations

import pytest
from django.test import Client

from .events import appended, at
from .signing import post_fixture

pytestmark = pytest.mark.django_db


def _post(client: Client, biz: str, *names: str) -> None:
    for name in names:
        response = post_fixture(client, "stripe", name, business_id=biz)
        assert response.status_code == 200, response.content


def test_customer_created(client: Client, biz: str) -> None:
    """customer.created carries the customer id, the normalised email and the metadata code."""
    _post(client, biz, "customer.created")
    assert appended(biz, "stripe") == [{
        "type": "customer.created",
        "source_event_id": "evt_1QxCustCreated0001:customer.created",
        "occurred_at": at(1767225600),
        "data": {"provider": "stripe", "provider_customer_id": "cus_RkT3mB9vWq2Lx1",
                 "email": "grace.hopper@example.com", "name": "Grace Hopper", "referral_code": "PARTNER7"},
    }]


@pytest.mark.smoke
def test_subscription_checkout_gives_the_signup_and_the_first_payment(client: Client, biz: str) -> None:
    """A paid subscription checkout is a customer.created plus a payment.succeeded named by its invoice."""
    _post(client, biz, "checkout.session.completed__subscription")
    assert appended(biz, "stripe") == [
        {"type": "customer.created",
         "source_event_id": "evt_1QxCheckoutSub0001:customer.created",
         "occurred_at": at(1767225760),
         "data": {"provider": "stripe", "provider_customer_id": "cus_RkT3mB9vWq2Lx1", "customer_ref": "user_42",
                  "email": "grace.hopper@example.com", "name": "Grace Hopper", "referral_code": "PARTNER7"}},
        {"type": "payment.succeeded",
         "source_event_id": "evt_1QxCheckoutSub0001:payment.succeeded",
         "occurred_at": at(1767225760),
         "data": {"payment_ref": "in_1QxFirstInv0001", "provider": "stripe",
                  "provider_customer_id": "cus_RkT3mB9vWq2Lx1", "customer_ref": "user_42",
                  "email": "grace.hopper@example.com", "amount": 4900, "currency": "USD",
                  "subscription_ref": "sub_1QxSubA0001", "referral_code": "PARTNER7", "renewal": False}},
    ]


@pytest.mark.smoke
def test_checkout_and_first_invoice_name_the_same_payment(client: Client, biz: str) -> None:
    """checkout.session.completed and invoice.paid for the first invoice share one payment_ref."""
    _post(client, biz, "checkout.session.completed__subscription", "invoice.paid__first")
    refs = [e["data"]["payment_ref"] for e in appended(biz, "stripe") if e["type"] == "payment.succeeded"]
    assert refs == ["in_1QxFirstInv0001", "in_1QxFirstInv0001"]


def test_first_invoice_paid(client: Client, biz: str) -> None:
    """invoice.paid (pre-basil shape): subscription, plan, code from subscription_details, aliases."""
    _post(client, biz, "invoice.paid__first")
    assert appended(biz, "stripe") == [{
        "type": "payment.succeeded",
        "source_event_id": "evt_1QxInvoicePaid0001:payment.succeeded",
        "occurred_at": at(1767225755),
        "data": {"payment_ref": "in_1QxFirstInv0001", "provider": "stripe",
                 "provider_customer_id": "cus_RkT3mB9vWq2Lx1", "email": "grace.hopper@example.com",
                 "amount": 4900, "currency": "USD", "subscription_ref": "sub_1QxSubA0001",
                 "plan": "price_1QxPro49", "referral_code": "PARTNER7", "renewal": False,
                 "payment_aliases": ["pi_3QxInvIntent0001", "ch_3QxInvCharge0001"]},
    }]


def test_renewal_invoice_in_the_basil_shape(client: Client, biz: str) -> None:
    """A basil invoice names its subscription under parent.subscription_details; it is a renewal."""
    _post(client, biz, "invoice.paid__renewal_basil")
    assert appended(biz, "stripe") == [{
        "type": "payment.succeeded",
        "source_event_id": "evt_1QxInvoicePaid0002:payment.succeeded",
        "occurred_at": at(1769904155),
        "data": {"payment_ref": "in_1QxRenewInv0002", "provider": "stripe",
                 "provider_customer_id": "cus_RkT3mB9vWq2Lx1", "email": "grace.hopper@example.com",
                 "amount": 4900, "currency": "USD", "subscription_ref": "sub_1QxSubA0001",
                 "plan": "price_1QxPro49", "renewal": True},
    }]


def test_zero_amount_invoice_is_no_payment(client: Client, biz: str) -> None:
    """A 0 invoice (trial) is acknowledged as provider.ignored, so it can never be a 'first payment'."""
    _post(client, biz, "invoice.paid__zero_trial")
    assert [e["type"] for e in appended(biz, "stripe")] == ["provider.ignored"]


def test_one_off_payment_events_share_the_payment_intent(client: Client, biz: str) -> None:
    """Payment-mode checkout, payment_intent.succeeded and charge.succeeded all name pi_…."""
    _post(client, biz, "checkout.session.completed__payment", "payment_intent.succeeded", "charge.succeeded")
    payments = [e["data"] for e in appended(biz, "stripe") if e["type"] == "payment.succeeded"]
    assert [p["payment_ref"] for p in payments] == ["pi_3QxOneOff0002"] * 3
    assert [p["amount"] for p in payments] == [9900, 9900, 9900]
    assert payments[1] == {"payment_ref": "pi_3QxOneOff0002", "provider": "stripe",
                           "provider_customer_id": "cus_RkT9pQ7wXy3Mn2", "email": "ada@example.org",
                           "amount": 9900, "currency": "USD", "referral_code": "PARTNER7",
                           "payment_aliases": ["ch_3QxOneOff0002"]}
    assert payments[2]["payment_aliases"] == ["ch_3QxOneOff0002"]


def test_stripe_zero_decimal_override_is_reexpressed_in_iso_minor_units(client: Client, biz: str) -> None:
    """Stripe counts MGA in whole ariary; ISO gives MGA two decimals: 50000 becomes 5000000."""
    _post(client, biz, "charge.succeeded__mga")
    (event,) = appended(biz, "stripe")
    assert (event["data"]["amount"], event["data"]["currency"]) == (5000000, "MGA")


def test_partial_then_full_refund_report_running_totals(client: Client, biz: str) -> None:
    """charge.refunded's cumulative amount_refunded becomes refunded_total; amount is this refund."""
    _post(client, biz, "charge.refunded__partial", "charge.refunded__full")
    assert appended(biz, "stripe") == [
        {"type": "payment.refunded", "source_event_id": "evt_3QxRefundPart0002:payment.refunded",
         "occurred_at": at(1767398400),
         "data": {"payment_ref": "pi_3QxOneOff0002", "refund_ref": "ch_3QxOneOff0002:refunded:3000",
                  "amount": 3000, "currency": "USD", "refunded_total": 3000, "provider": "stripe",
                  "payment_aliases": ["ch_3QxOneOff0002"]}},
        {"type": "payment.refunded", "source_event_id": "evt_3QxRefundFull0002:payment.refunded",
         "occurred_at": at(1767484800),
         "data": {"payment_ref": "pi_3QxOneOff0002", "refund_ref": "ch_3QxOneOff0002:refunded:9900",
                  "amount": 6900, "currency": "USD", "refunded_total": 9900, "provider": "stripe",
                  "payment_aliases": ["ch_3QxOneOff0002"]}},
    ]


def test_refund_object_counts_once_succeeded(client: Client, biz: str) -> None:
    """refund.created with status succeeded is this refund; a pending one is only acknowledged."""
    _post(client, biz, "refund.created", "refund.created__pending")
    assert appended(biz, "stripe") == [
        {"type": "payment.refunded", "source_event_id": "evt_3QxRefundObj0002:payment.refunded",
         "occurred_at": at(1767398399),
         "data": {"payment_ref": "pi_3QxOneOff0002", "refund_ref": "re_3QxOneOff0002a", "amount": 3000,
                  "currency": "USD", "provider": "stripe", "payment_aliases": ["ch_3QxOneOff0002"]}},
        {"type": "provider.ignored", "source_event_id": "evt_3QxRefundObj0003:provider.ignored",
         "occurred_at": at(1767398501), "data": {"provider": "stripe", "provider_type": "refund.created"}},
    ]


@pytest.mark.parametrize(("name", "outcome"), [
    ("charge.dispute.created", None), ("charge.dispute.closed__won", "won"), ("charge.dispute.closed__lost", "lost"),
])
def test_dispute_lifecycle(client: Client, biz: str, name: str, outcome: str | None) -> None:
    """A dispute opens with outcome null and closes won or lost."""
    _post(client, biz, name)
    (event,) = appended(biz, "stripe")
    assert event["type"] == "payment.disputed"
    assert event["data"] == {"payment_ref": "pi_3QxOneOff0002", "dispute_ref": "du_1QxDispute0002", "amount": 9900,
                             "currency": "USD", "provider": "stripe", "payment_aliases": ["ch_3QxOneOff0002"],
                             "outcome": outcome}


def test_subscription_deleted_is_a_cancellation(client: Client, biz: str) -> None:
    """customer.subscription.deleted becomes subscription.cancelled at its ended_at."""
    _post(client, biz, "customer.subscription.deleted")
    assert appended(biz, "stripe") == [{
        "type": "subscription.cancelled", "source_event_id": "evt_1QxSubDeleted0001:subscription.cancelled",
        "occurred_at": at(1772323200),
        "data": {"subscription_ref": "sub_1QxSubA0001", "provider": "stripe",
                 "provider_customer_id": "cus_RkT3mB9vWq2Lx1"},
    }]


def test_invoice_payment_paid_is_kept_as_the_basil_link(client: Client, biz: str) -> None:
    """invoice_payment.paid earns nothing (invoice.paid does) but records which invoice a pi_ paid."""
    _post(client, biz, "invoice_payment.paid")
    assert [(e["type"], e["data"]) for e in appended(biz, "stripe")] == [
        ("provider.ignored", {"provider": "stripe", "provider_type": "invoice_payment.paid",
                              "link": {"payment_ref": "in_1QxRenewInv0002", "alias": "pi_3QxRenewIntent0002"}})]


def test_basil_refund_names_the_invoice_it_was_linked_to(client: Client, biz: str) -> None:
    """A basil charge names no invoice: the stored invoice_payment.paid link makes the refund in_…."""
    _post(client, biz, "invoice_payment.paid", "charge.refunded__basil_subscription")
    refund = appended(biz, "stripe")[-1]
    assert refund["data"] == {"payment_ref": "in_1QxRenewInv0002", "refund_ref": "ch_3QxRenewCharge0002:refunded:4900",
                              "amount": 4900, "currency": "USD", "refunded_total": 4900, "provider": "stripe",
                              "payment_aliases": ["pi_3QxRenewIntent0002", "ch_3QxRenewCharge0002"]}


def test_basil_refund_without_a_link_falls_back_to_the_payment_intent(client: Client, biz: str) -> None:
    """Without the link event the refund names the PaymentIntent (as a one-off payment would be named)."""
    _post(client, biz, "charge.refunded__basil_subscription")
    (refund,) = appended(biz, "stripe")
    assert refund["data"]["payment_ref"] == "pi_3QxRenewIntent0002"


def test_running_total_without_previous_attributes_steps_from_the_stored_total(client: Client, biz: str) -> None:
    """When previous_attributes is absent, this refund's amount is the step from what is stored."""
    from .signing import SECRETS, dump, fixture_json, post_body

    _post(client, biz, "charge.refunded__partial")
    payload = fixture_json("stripe", "charge.refunded__full")
    del payload["data"]["previous_attributes"]
    assert post_body(client, "stripe", dump(payload), business_id=biz, secret=SECRETS["stripe"]).status_code == 200
    assert [(e["data"]["amount"], e["data"]["refunded_total"]) for e in appended(biz, "stripe")] == [
        (3000, 3000), (6900, 9900)]


def test_unmapped_event_is_ignored(client: Client, biz: str) -> None:
    """invoice.finalized (nothing paid yet) is kept as provider.ignored with its type."""
    _post(client, biz, "invoice.finalized")
    assert [(e["type"], e["data"]) for e in appended(biz, "stripe")] == [
        ("provider.ignored", {"provider": "stripe", "provider_type": "invoice.finalized"})]
