"""From a referred checkout to a commission and its refund reversal, through each provider's webhooks.

The agent's enrollment carries the code PARTNER7 (20 % referral, 10 % recurring); every payment
fixture carries ``refairn_code: PARTNER7`` in the provider's metadata or custom data.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from agents.models import Enrollment
from attribution.models import PaymentAttribution
from commissions.models import LedgerEntry
from tests.factories import ProgramFactory, approved_enrollment

from .signing import post_fixture

pytestmark = pytest.mark.django_db

CODE = "PARTNER7"


@pytest.fixture
def enrollment(connected) -> Enrollment:
    program = ProgramFactory(product=connected.product)
    return approved_enrollment(program=program, code=CODE)


def _deliver(client: Client, biz: str, provider: str, *names: str, **kwargs: object) -> None:
    for name in names:
        response = post_fixture(client, provider, name, business_id=biz, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 200, response.content


def _entries(payment_ref: str) -> list[tuple[str, int, str]]:
    return sorted(LedgerEntry.objects.filter(payment_ref=payment_ref).values_list("kind", "amount", "currency"))


def _assert_earned_then_reversed(client: Client, biz: str, project: Callable[[], object], enrollment: Enrollment, *,
                                 provider: str, payment: list[str], refund: list[str], payment_ref: str,
                                 amount: int, currency: str, commission: int, after_refund: int,
                                 **kwargs: object) -> None:
    _deliver(client, biz, provider, *payment, **kwargs)
    project()
    attribution = PaymentAttribution.objects.get(payment_ref=payment_ref)
    assert (attribution.agent_id, attribution.enrollment_id) == (enrollment.agent_id, enrollment.id)
    assert (attribution.amount, attribution.currency, attribution.sequence) == (amount, currency, 1)
    assert _entries(payment_ref) == [("referral", commission, currency)]
    _deliver(client, biz, provider, *refund, **kwargs)
    project()
    entries = LedgerEntry.objects.filter(payment_ref=payment_ref)
    assert sum(e.amount for e in entries) == after_refund
    assert entries.filter(kind="reversal").exists()


@pytest.mark.smoke
def test_stripe_one_off_checkout_earns_once_and_refunds_reverse(client: Client, biz: str, project, enrollment) -> None:
    """Session, PaymentIntent and Charge name one payment: one commission; two refunds reverse it all."""
    _assert_earned_then_reversed(
        client, biz, project, enrollment, provider="stripe",
        payment=["checkout.session.completed__payment", "payment_intent.succeeded", "charge.succeeded"],
        refund=["charge.refunded__partial", "charge.refunded__full"],
        payment_ref="pi_3QxOneOff0002", amount=9900, currency="USD", commission=1980, after_refund=0)


def test_stripe_partial_refund_reverses_its_share(client: Client, biz: str, project, enrollment) -> None:
    """A 30.00 refund of a 99.00 payment reverses 30/99 of the 19.80 commission (6.00)."""
    _assert_earned_then_reversed(
        client, biz, project, enrollment, provider="stripe",
        payment=["checkout.session.completed__payment"], refund=["charge.refunded__partial"],
        payment_ref="pi_3QxOneOff0002", amount=9900, currency="USD", commission=1980, after_refund=1380)


def test_stripe_subscription_checkout_and_first_invoice_earn_once(client: Client, biz: str, project,
                                                                  enrollment) -> None:
    """checkout.session.completed + invoice.paid (first): one attribution, one referral commission;
    the renewal invoice earns the recurring commission."""
    _deliver(client, biz, "stripe", "checkout.session.completed__subscription", "invoice.paid__first",
             "invoice.paid__renewal_basil")
    project()
    assert PaymentAttribution.objects.filter(payment_ref="in_1QxFirstInv0001").count() == 1
    assert _entries("in_1QxFirstInv0001") == [("referral", 980, "USD")]
    assert _entries("in_1QxRenewInv0002") == [("recurring", 490, "USD")]


def test_paystack_charge_earns_and_refund_reverses(client: Client, biz: str, project, enrollment) -> None:
    """charge.success (5,000.00 NGN) earns 1,000.00; refund.processed of 2,000.00 reverses 400.00."""
    _assert_earned_then_reversed(
        client, biz, project, enrollment, provider="paystack", payment=["charge.success"],
        refund=["refund.processed"], payment_ref="T8ZK3J0QXN", amount=500000, currency="NGN",
        commission=100000, after_refund=60000)


def test_flutterwave_charge_earns_and_refund_reverses(client: Client, biz: str, project, enrollment) -> None:
    """v3 charge of 2,500.50 NGN earns 500.10; a 1,000.50 refund reverses 200.10."""
    _assert_earned_then_reversed(
        client, biz, project, enrollment, provider="flutterwave", payment=["charge.completed__v3"],
        refund=["refund"], payment_ref="acme-sub-2026-0001", amount=250050, currency="NGN",
        commission=50010, after_refund=30000)


def test_paddle_transaction_earns_and_approved_refund_reverses(client: Client, biz: str, project,
                                                               enrollment) -> None:
    """A 49.00 transaction earns 9.80; the pending adjustment changes nothing, the approved 15.00 reverses 3.00."""
    _assert_earned_then_reversed(
        client, biz, project, enrollment, provider="paddle", payment=["transaction.completed"],
        refund=["adjustment.created__refund_pending", "adjustment.updated__refund_approved"],
        payment_ref="txn_01hv8wptq8987qeep44cyrewp9", amount=4900, currency="USD", commission=980,
        after_refund=680)


def test_lemonsqueezy_order_earns_and_refunds_reverse(client: Client, biz: str, project, enrollment) -> None:
    """A 9.99 order earns 2.00 (rounded half up); partial then full cumulative refunds reverse it all."""
    _assert_earned_then_reversed(
        client, biz, project, enrollment, provider="lemonsqueezy", payment=["order_created"],
        refund=["order_refunded__partial", "order_refunded__full"], payment_ref="ls_order_1234567",
        amount=999, currency="USD", commission=200, after_refund=0)


def test_stripe_lost_dispute_reverses_the_commission(client: Client, biz: str, project, enrollment) -> None:
    """A dispute opened then lost reverses the whole commission."""
    _deliver(client, biz, "stripe", "checkout.session.completed__payment", "charge.dispute.created",
             "charge.dispute.closed__lost")
    project()
    assert sum(LedgerEntry.objects.filter(payment_ref="pi_3QxOneOff0002").values_list("amount", flat=True)) == 0


# --- a referred signup, a first payment, a renewal, and a refund, provider by provider --------------


def test_stripe_basil_renewal_refund_reverses_the_recurring_commission(client: Client, biz: str, project,
                                                                        enrollment) -> None:
    """Checkout (signup with the code) and first invoice earn once; the basil renewal earns recurring;
    its refund, which names only pi_/ch_, reverses it through the invoice_payment.paid link."""
    _deliver(client, biz, "stripe", "checkout.session.completed__subscription", "invoice.paid__first",
             "invoice.paid__renewal_basil", "invoice_payment.paid")
    project()
    assert _entries("in_1QxFirstInv0001") == [("referral", 980, "USD")]
    assert _entries("in_1QxRenewInv0002") == [("recurring", 490, "USD")]
    _deliver(client, biz, "stripe", "charge.refunded__basil_subscription")
    project()
    assert _entries("in_1QxRenewInv0002") == [("recurring", 490, "USD"), ("reversal", -490, "USD")]
    assert _entries("in_1QxFirstInv0001") == [("referral", 980, "USD")]


def test_paystack_two_refunds_reverse_the_whole_commission(client: Client, biz: str, project, enrollment) -> None:
    """5,000.00 NGN earns 1,000.00; refunds of 2,000.00 and 3,000.00 reverse 400.00 then 600.00."""
    _deliver(client, biz, "paystack", "charge.success")
    project()
    _deliver(client, biz, "paystack", "refund.processed", "refund.processed__rest")
    project()
    assert _entries("T8ZK3J0QXN") == [("referral", 100000, "NGN"), ("reversal", -60000, "NGN"),
                                      ("reversal", -40000, "NGN")]


def test_flutterwave_plan_renewal_earns_recurring_through_the_customer(client: Client, biz: str, project,
                                                                       enrollment) -> None:
    """The renewal charge carries no code: the Flutterwave customer id ties it to the referred customer."""
    _deliver(client, biz, "flutterwave", "charge.completed__v3", "charge.completed__v3_renewal")
    project()
    assert _entries("acme-sub-2026-0001") == [("referral", 50010, "NGN")]
    assert _entries("acme-sub-2026-0001-r1") == [("recurring", 25005, "NGN")]
    _deliver(client, biz, "flutterwave", "refund", "refund__rest")
    project()
    assert sum(amount for _, amount, _ in _entries("acme-sub-2026-0001")) == 0
    assert _entries("acme-sub-2026-0001-r1") == [("recurring", 25005, "NGN")]


def test_paddle_signup_first_payment_renewal_and_full_refund(client: Client, biz: str, project,
                                                             enrollment) -> None:
    """customer.created carries the code (signup); the first transaction earns the referral, the renewal
    the recurring commission, and the renewal's full refund reverses exactly that."""
    _deliver(client, biz, "paddle", "customer.created", "transaction.completed", "transaction.completed__renewal")
    project()
    assert _entries("txn_01hv8wptq8987qeep44cyrewp9") == [("referral", 980, "USD")]
    assert _entries("txn_01hxa0b8y6z2c4e6g8j0l2n4p6") == [("recurring", 490, "USD")]
    _deliver(client, biz, "paddle", "adjustment.updated__refund_full")
    project()
    assert _entries("txn_01hxa0b8y6z2c4e6g8j0l2n4p6") == [("recurring", 490, "USD"), ("reversal", -490, "USD")]


def test_lemonsqueezy_signup_order_renewal_and_invoice_refund(client: Client, biz: str, project,
                                                              enrollment) -> None:
    """subscription_created (signup, code in custom data), order_created earns once with its initial
    invoice, the renewal invoice earns recurring, and its refund reverses it."""
    _deliver(client, biz, "lemonsqueezy", "subscription_created", "order_created",
             "subscription_payment_success__initial", "subscription_payment_success__renewal")
    project()
    assert _entries("ls_order_1234567") == [("referral", 200, "USD")]
    assert _entries("ls_invoice_3300001") == []
    assert _entries("ls_invoice_3300002") == [("recurring", 100, "USD")]
    _deliver(client, biz, "lemonsqueezy", "subscription_payment_refunded")
    project()
    assert _entries("ls_invoice_3300002") == [("recurring", 100, "USD"), ("reversal", -100, "USD")]
