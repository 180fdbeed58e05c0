"""Paddle Billing normalisation: string amounts, origin, approved adjustments only, chargebacks."""

from __future__ import annotations

import pytest
from django.test import Client

from .events import appended, at
from .signing import post_fixture

pytestmark = pytest.mark.django_db


def _post(client: Client, biz: str, *names: str) -> None:
    for name in names:
        response = post_fixture(client, "paddle", name, business_id=biz)
        assert response.status_code == 200, response.content


def test_customer_created(client: Client, biz: str) -> None:
    """customer.created: ctm_ id, email, and a code in custom_data."""
    _post(client, biz, "customer.created")
    assert appended(biz, "paddle") == [{
        "type": "customer.created",
        "source_event_id": "evt_01hv8wq1t8c4z9g3xj2k5m6n7p:customer.created",
        "occurred_at": at("2026-01-12T10:18:47.635628Z"),
        "data": {"provider": "paddle", "provider_customer_id": "ctm_01hv8wt8nffez4p2t6tgt9ssj3",
                 "email": "sam@example.com", "name": "Sam Miller", "referral_code": "PARTNER7"},
    }]


@pytest.mark.smoke
def test_first_transaction_completed(client: Client, biz: str) -> None:
    """transaction.completed from checkout (origin web): txn_ id, grand_total string in cents."""
    _post(client, biz, "transaction.completed")
    assert appended(biz, "paddle") == [{
        "type": "payment.succeeded",
        "source_event_id": "evt_01hv8x2ptd7j2c4j4nfv1dr9d3:payment.succeeded",
        "occurred_at": at("2026-01-12T10:18:53.125914Z"),
        "data": {"payment_ref": "txn_01hv8wptq8987qeep44cyrewp9", "provider": "paddle",
                 "provider_customer_id": "ctm_01hv8wt8nffez4p2t6tgt9ssj3", "amount": 4900, "currency": "USD",
                 "subscription_ref": "sub_01hv8x29kz0t586xy6zn1a62ny", "plan": "pri_01gsz8x8sawmvhz1pv30nge1ke",
                 "referral_code": "PARTNER7", "renewal": False},
    }]


def test_renewal_transaction(client: Client, biz: str) -> None:
    """origin subscription_recurring marks a renewal; no custom data is needed."""
    _post(client, biz, "transaction.completed__renewal")
    (event,) = appended(biz, "paddle")
    assert event["data"] == {"payment_ref": "txn_01hxa0b8y6z2c4e6g8j0l2n4p6", "provider": "paddle",
                             "provider_customer_id": "ctm_01hv8wt8nffez4p2t6tgt9ssj3", "amount": 4900,
                             "currency": "USD", "subscription_ref": "sub_01hv8x29kz0t586xy6zn1a62ny",
                             "plan": "pri_01gsz8x8sawmvhz1pv30nge1ke", "renewal": True}


def test_trial_checkout_is_a_signup_with_the_code(client: Client, biz: str) -> None:
    """A zero-total transaction is no payment, but its referral code is kept as the signup."""
    _post(client, biz, "transaction.completed__trial")
    assert appended(biz, "paddle") == [{
        "type": "customer.created",
        "source_event_id": "evt_01hv9a1b2c3d4e5f6g7h8j9k0m:customer.created",
        "occurred_at": at("2026-01-13T08:00:02.001Z"),
        "data": {"provider": "paddle", "provider_customer_id": "ctm_01hv8wt8nffez4p2t6tgt9ssj3",
                 "referral_code": "PARTNER7"},
    }]


def test_refund_counts_only_when_approved(client: Client, biz: str) -> None:
    """adjustment.created pending_approval is acknowledged; adjustment.updated approved is the refund."""
    _post(client, biz, "adjustment.created__refund_pending", "adjustment.updated__refund_approved")
    events = appended(biz, "paddle")
    assert [e["type"] for e in events] == ["provider.ignored", "payment.refunded"]
    assert events[1]["data"] == {"payment_ref": "txn_01hv8wptq8987qeep44cyrewp9",
                                 "refund_ref": "adj_01hvgf2s84dr6reszzg29zbvcm", "amount": 1500,
                                 "currency": "USD", "provider": "paddle"}


def test_chargeback_opens_and_its_reverse_wins(client: Client, biz: str) -> None:
    """A chargeback adjustment holds the payment; chargeback_reverse closes the dispute as won."""
    _post(client, biz, "adjustment.created__chargeback", "adjustment.created__chargeback_reverse")
    assert [e["data"] for e in appended(biz, "paddle")] == [
        {"payment_ref": "txn_01hv8wptq8987qeep44cyrewp9", "dispute_ref": "chargeback:txn_01hv8wptq8987qeep44cyrewp9",
         "amount": 4900, "currency": "USD", "provider": "paddle", "outcome": None},
        {"payment_ref": "txn_01hv8wptq8987qeep44cyrewp9", "dispute_ref": "chargeback:txn_01hv8wptq8987qeep44cyrewp9",
         "amount": 4900, "currency": "USD", "provider": "paddle", "outcome": "won"},
    ]


def test_subscription_canceled(client: Client, biz: str) -> None:
    """subscription.canceled (US spelling) becomes subscription.cancelled at canceled_at."""
    _post(client, biz, "subscription.canceled")
    assert appended(biz, "paddle") == [{
        "type": "subscription.cancelled",
        "source_event_id": "evt_01hy2e3f4g5h6j7k8m9n0p1q2r:subscription.cancelled",
        "occurred_at": at("2026-03-12T10:20:00.095Z"),
        "data": {"subscription_ref": "sub_01hv8x29kz0t586xy6zn1a62ny", "provider": "paddle",
                 "provider_customer_id": "ctm_01hv8wt8nffez4p2t6tgt9ssj3"},
    }]


def test_full_refund_of_a_renewal(client: Client, biz: str) -> None:
    """An approved full adjustment refunds the whole renewal transaction."""
    _post(client, biz, "adjustment.updated__refund_full")
    assert appended(biz, "paddle") == [{
        "type": "payment.refunded",
        "source_event_id": "evt_01hy9k3m5n7p9r1t3v5x7z9b1d:payment.refunded",
        "occurred_at": at("2026-02-20T09:31:02.118Z"),
        "data": {"payment_ref": "txn_01hxa0b8y6z2c4e6g8j0l2n4p6", "refund_ref": "adj_01hy9k2w7e5r3t1y9u7i5o3p1a",
                 "amount": 4900, "currency": "USD", "provider": "paddle"},
    }]


def test_unmapped_event_is_ignored(client: Client, biz: str) -> None:
    """transaction.created (a checkout opened, nothing paid) is kept as provider.ignored."""
    _post(client, biz, "transaction.created")
    assert [(e["type"], e["data"]) for e in appended(biz, "paddle")] == [
        ("provider.ignored", {"provider": "paddle", "provider_type": "transaction.created"})]
