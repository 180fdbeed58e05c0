"""A referral code's shape never loses an event: odd codes are stored, then judged "unknown code".

PRODUCT.md (Attribution): an unknown referralCode on a signup is kept as an unattributed customer
with the reason recorded, never an error that loses the signup. Only a value that cannot be a
code given by a person at all (not a string, control characters, absurdly long) is a 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from attribution.models import AttributionRefusal, Customer
from ingestion.models import Event
from tests.api.conftest import Post

pytestmark = pytest.mark.django_db


def test_a_signup_with_a_dashed_code_is_kept_as_unattributed_unknown_code(
        event: Post, project: Callable[[], Any]) -> None:
    """"SUMMER-24" is no enrollment's code, but the signup must be accepted and kept, with the why."""
    response = event("customer-created", customerId="user_s24", email="summer@example.com", referralCode="SUMMER-24")
    assert response.status_code == 200, response.content
    assert Event.objects.get(event_id=response.json()["eventId"]).data["referral_code"] == "SUMMER-24"
    project()
    customer = Customer.objects.get(email="summer@example.com")
    assert (customer.agent_id, customer.status) == ("", Customer.Status.LEAD)
    assert customer.unattributed_reason == Customer.Unattributed.UNKNOWN_CODE
    assert customer.signup_event_id == response.json()["eventId"]
    assert AttributionRefusal.objects.get(customer_id=customer.id).referral_code == "SUMMER-24"


def test_a_payment_with_a_dashed_code_is_kept_as_unattributed_unknown_code(
        event: Post, project: Callable[[], Any]) -> None:
    """A payment's metadata code of any shape is evidence too: the payment and its customer are kept."""
    response = event("payment-succeeded", paymentId="pi_s24", email="payer@example.com", amount="10.00",
                     currency="USD", referralCode="summer-24")
    assert response.status_code == 200, response.content
    project()
    customer = Customer.objects.get(email="payer@example.com")
    assert (customer.agent_id, customer.status) == ("", Customer.Status.CUSTOMER)
    assert customer.unattributed_reason == Customer.Unattributed.UNKNOWN_CODE
    assert AttributionRefusal.objects.get(customer_id=customer.id).referral_code == "SUMMER-24"


def test_a_long_code_within_the_bound_is_accepted(event: Post, project: Callable[[], Any]) -> None:
    """A 200-character code is odd but possible (a pasted campaign tag); it is not a reason to drop a signup."""
    response = event("customer-created", email="long@example.com", referralCode="x" * 200)
    assert response.status_code == 200, response.content
    project()
    customer = Customer.objects.get(email="long@example.com")
    assert customer.unattributed_reason == Customer.Unattributed.UNKNOWN_CODE


@pytest.mark.parametrize("code", ["x" * 201, 2024, ["ANN"], "AN\nN", "ANN\x00"])
def test_a_value_that_cannot_be_a_typed_code_is_400_naming_referral_code(event: Post, code: object) -> None:
    """Over 200 characters, not a string, or with control characters is a caller's bug, answered 400."""
    response = event("customer-created", email="bad@example.com", referralCode=code)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == "referralCode"
    assert not Event.objects.exists()
