"""The event endpoints: canonical data, field checks, statuses, idempotency, size limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from agents.models import Agent
from ingestion.models import Event, Product
from ingestion.workspaces import CreatedWorkspace
from tests.api.conftest import Post
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def _only_event() -> Event:
    return Event.objects.get()


# --- each kind maps to its canonical event ------------------------------------------------------

@pytest.mark.smoke
def test_customer_created_appends_canonical_signup(event: Post, tenant: CreatedWorkspace) -> None:
    """A signup answers 200 with the event's id and position, and stores snake_case canonical data."""
    response = event("customer-created", customerId="user_1", email="  Jane+pro@Example.COM ", name="Jane",
                     referralCode="jane2024", clickId="clk_1", occurredAt="2024-05-01T12:00:00Z")
    assert response.status_code == 200
    body = response.json()
    stored = _only_event()
    assert body == {"success": True, "eventId": stored.event_id, "position": stored.position}
    assert stored.type == "customer.created"
    assert stored.source == "api"
    assert stored.data == {"customer_ref": "user_1", "email": "jane+pro@example.com", "name": "Jane",
                           "product_id": tenant.product.id, "referral_code": "JANE2024", "click_id": "clk_1"}
    assert stored.occurred_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert stored.actor == f"api-key:{tenant.api_key.key.id}"
    assert stored.raw["body"]["email"] == "  Jane+pro@Example.COM "


@pytest.mark.smoke
def test_payment_succeeded_converts_major_units_to_minor(event: Post, tenant: CreatedWorkspace) -> None:
    """amount "99.00" USD is stored as 9900 minor units; paymentDate is the event's time."""
    response = event("payment-succeeded", paymentId="pi_1", customerId="user_1", email="jane@example.com",
                     amount="99.00", currency="usd", subscriptionId="sub_1", plan="Pro",
                     paymentDate="2024-05-01T14:00:00+02:00")
    assert response.status_code == 200
    stored = _only_event()
    assert stored.type == "payment.succeeded"
    assert stored.data == {"payment_ref": "pi_1", "amount": 9900, "currency": "USD", "product_id": tenant.product.id,
                           "customer_ref": "user_1", "email": "jane@example.com", "subscription_ref": "sub_1",
                           "plan": "Pro"}
    assert stored.occurred_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_payment_refunded_maps_refund(event: Post) -> None:
    """A refund carries its payment, its own id and this refund's amount in minor units."""
    response = event("payment-refunded", paymentId="pi_1", refundId="re_1", amount="40.00", currency="USD",
                     refundedTotal="60.00", refundedAt="2024-05-09")
    assert response.status_code == 200
    stored = _only_event()
    assert stored.type == "payment.refunded"
    assert stored.data["payment_ref"] == "pi_1"
    assert stored.data["refund_ref"] == "re_1"
    assert stored.data["amount"] == 4000
    assert stored.data["refunded_total"] == 6000
    assert stored.occurred_at == datetime(2024, 5, 9, tzinfo=UTC)


def test_payment_disputed_maps_outcome(event: Post) -> None:
    """An opened dispute has outcome null; "opened" is read as null too."""
    assert event("payment-disputed", paymentId="pi_1", disputeId="dp_1", amountMinor=9900, currency="USD",
                 outcome="opened").status_code == 200
    stored = _only_event()
    assert stored.data["outcome"] is None
    assert stored.data["dispute_ref"] == "dp_1"
    assert stored.data["amount"] == 9900


def test_dispute_opened_and_lost_are_two_events(event: Post) -> None:
    """The same dispute opened then lost is two events, not a duplicate."""
    base = {"paymentId": "pi_1", "disputeId": "dp_1", "amount": "99.00", "currency": "USD"}
    assert event("payment-disputed", **base).status_code == 200
    assert event("payment-disputed", **base, outcome="lost").status_code == 200
    assert event("payment-disputed", **base, outcome="lost").status_code == 409
    assert [e.data["outcome"] for e in Event.objects.order_by("position")] == [None, "lost"]


def test_subscription_cancelled_maps_refs(event: Post) -> None:
    """A cancellation carries the subscription and customer refs it was given."""
    assert event("subscription-cancelled", subscriptionId="sub_1", customerId="user_1").status_code == 200
    stored = _only_event()
    assert stored.type == "subscription.cancelled"
    assert stored.data["subscription_ref"] == "sub_1"
    assert stored.data["customer_ref"] == "user_1"


def test_support_assigned_and_unassigned_map_agent(event: Post, tenant: CreatedWorkspace) -> None:
    """Support assignment events carry the agent and the customer."""
    agent = AgentFactory(workspace=tenant.workspace)
    assert event("support-assigned", customerId="user_1", agentId=agent.id).status_code == 200
    assert event("support-unassigned", email="jane@example.com", agentId=agent.id).status_code == 200
    assigned, unassigned = Event.objects.order_by("position")
    assert (assigned.type, assigned.data["agent_id"], assigned.data["customer_ref"]) == (
        "support.assigned", agent.id, "user_1")
    assert (unassigned.type, unassigned.data["email"]) == ("support.unassigned", "jane@example.com")


def test_support_assigned_to_an_unknown_agent_is_404(event: Post, other_tenant: CreatedWorkspace) -> None:
    """An agentId that is not the workspace's (another workspace's included) answers 404."""
    foreign = AgentFactory(workspace=other_tenant.workspace)
    response = event("support-assigned", customerId="user_1", agentId=foreign.id)
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "agentId"
    assert Agent.objects.count() == 1
    assert Event.objects.exists() is False


# --- money --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("500", "JPY", 500), ("99", "USD", 9900), ("0.5", "USD", 50), ("1.234", "KWD", 1234), ("0", "USD", 0),
])
def test_amount_follows_the_currency_exponent(event: Post, amount: str, currency: str, minor: int) -> None:
    """Amounts are exact in the currency's own exponent (JPY 0, USD 2, KWD 3)."""
    response = event("payment-succeeded", paymentId="p", email="a@b.co", amount=amount, currency=currency)
    assert response.status_code == 200
    assert _only_event().data["amount"] == minor


@pytest.mark.smoke
@pytest.mark.parametrize(("amount", "currency"), [("99.999", "USD"), ("1.5", "JPY"), ("1.2345", "KWD")])
def test_more_decimals_than_the_currency_has_is_400(event: Post, amount: str, currency: str) -> None:
    """An amount with more decimals than its currency allows is refused, naming the field amount."""
    response = event("payment-succeeded", paymentId="p", email="a@b.co", amount=amount, currency=currency)
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid_field", "field": "amount",
                                        "message": response.json()["error"]["message"]}
    assert "decimal place" in response.json()["error"]["message"]
    assert Event.objects.exists() is False


@pytest.mark.parametrize("amount", ["-1.00", "1e3", "12,00", "$5", "", " ", "NaN", "0x10"])
def test_malformed_or_negative_amount_is_400(event: Post, amount: str) -> None:
    """Negative, exponent, comma, symbol and empty amounts are refused on the amount field."""
    response = event("payment-succeeded", paymentId="p", email="a@b.co", amount=amount, currency="USD")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "amount"


def test_a_json_number_amount_is_400(event: Post) -> None:
    """amount must be a decimal string: a JSON number could be a float, so it is refused."""
    response = event("payment-succeeded", paymentId="p", email="a@b.co", amount=99.5, currency="USD")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "amount"


def test_amount_minor_alone_is_accepted(event: Post) -> None:
    """amountMinor (integer minor units) can replace amount."""
    assert event("payment-succeeded", paymentId="p", email="a@b.co", amountMinor=9900,
                 currency="USD").status_code == 200
    assert _only_event().data["amount"] == 9900


def test_amount_and_amount_minor_must_agree(event: Post) -> None:
    """Both given and equal is fine; both given and different is a 400 on amountMinor."""
    assert event("payment-succeeded", paymentId="p1", email="a@b.co", amount="99.00", amountMinor=9900,
                 currency="USD").status_code == 200
    response = event("payment-succeeded", paymentId="p2", email="a@b.co", amount="99.00", amountMinor=990,
                     currency="USD")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "amountMinor"


@pytest.mark.parametrize("minor", [-1, 1.5, "9900", True])
def test_bad_amount_minor_is_400(event: Post, minor: object) -> None:
    """amountMinor must be a non-negative integer."""
    response = event("payment-succeeded", paymentId="p", email="a@b.co", amountMinor=minor, currency="USD")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "amountMinor"


def test_missing_amount_is_400(event: Post) -> None:
    """A payment without amount or amountMinor is refused on amount."""
    response = event("payment-succeeded", paymentId="p", email="a@b.co", currency="USD")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "amount"


@pytest.mark.parametrize("currency", ["XYZ", "US", "", 840, None])
def test_unknown_currency_is_400(event: Post, currency: object) -> None:
    """A currency that is not an ISO 4217 code is refused on currency."""
    response = event("payment-succeeded", paymentId="p", email="a@b.co", amount="1.00", currency=currency)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "currency"


# --- other fields -------------------------------------------------------------------------------

@pytest.mark.parametrize("email", ["not-an-email", "a@b", "a b@c.com", "@c.com", 42, ""])
def test_invalid_email_is_400(event: Post, email: object) -> None:
    """A malformed email is refused on email."""
    response = event("customer-created", email=email)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "email"


@pytest.mark.parametrize("when", ["yesterday", "2024-13-01", "01/05/2024", 1714564800, "2024-05-01T25:00:00Z"])
def test_invalid_date_is_400(event: Post, when: object) -> None:
    """A time that is not ISO 8601 is refused on its field."""
    response = event("customer-created", email="a@b.co", occurredAt=when)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "occurredAt"


def test_date_aliases_are_accepted(event: Post) -> None:
    """signedUpAt, paymentDate and the other aliases set the event's time."""
    assert event("customer-created", email="a@b.co", signedUpAt="2024-05-01T10:00:00Z").status_code == 200
    assert _only_event().occurred_at == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_two_date_aliases_at_once_are_400(event: Post) -> None:
    """occurredAt and an alias together are ambiguous, so refused."""
    response = event("payment-succeeded", paymentId="p", email="a@b.co", amount="1.00", currency="USD",
                     occurredAt="2024-05-01T10:00:00Z", paymentDate="2024-05-01")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "paymentDate"


def test_missing_date_defaults_to_now(event: Post) -> None:
    """Without a time the event happened now."""
    before = datetime.now(UTC)
    assert event("customer-created", email="a@b.co").status_code == 200
    assert before - timedelta(seconds=1) <= _only_event().occurred_at <= datetime.now(UTC) + timedelta(seconds=1)


def test_a_date_days_in_the_future_is_400(event: Post) -> None:
    """An event dated days ahead is a mistake, not a fact."""
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    response = event("customer-created", email="a@b.co", occurredAt=later)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "occurredAt"


@pytest.mark.smoke
@pytest.mark.parametrize("field", ["position", "status", "recordedAt", "amount_minor", "source"])
def test_unknown_fields_are_400(event: Post, field: str) -> None:
    """A field the client may not set is refused, naming it, and nothing is appended."""
    response = event("customer-created", email="a@b.co", **{field: "x"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert Event.objects.exists() is False


def test_a_field_of_another_kind_is_400(event: Post) -> None:
    """amount on a signup is not silently dropped."""
    response = event("customer-created", email="a@b.co", amount="10.00")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "amount"


def test_missing_product_id_is_400(post: Post, tenant: CreatedWorkspace) -> None:
    """Every event body carries productId."""
    response = post("/api/events/customer-created", {"businessId": tenant.workspace.id, "email": "a@b.co"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "productId"


def test_unknown_product_id_is_404(event: Post) -> None:
    """A productId that does not exist answers 404 on productId."""
    response = event("customer-created", email="a@b.co", productId="prod_nope")
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "unknown productId 'prod_nope'",
                                        "field": "productId"}


def test_another_workspaces_product_is_404(event: Post, other_tenant: CreatedWorkspace) -> None:
    """Another workspace's productId is as unknown as a made-up one."""
    response = event("customer-created", email="a@b.co", productId=other_tenant.product.id)
    assert response.status_code == 404
    assert Event.objects.exists() is False


def test_a_product_created_after_the_cache_filled_is_found(event: Post, tenant: CreatedWorkspace) -> None:
    """The product cache reloads on a miss, so a new product works at once."""
    assert event("customer-created", email="a@b.co").status_code == 200
    second = Product.objects.create(workspace=tenant.workspace, name="Second")
    assert event("customer-created", email="b@b.co", productId=second.id).status_code == 200


def test_a_payment_without_any_customer_identifier_is_400(event: Post) -> None:
    """A payment must name its customer somehow (customerId, email or providerCustomerId)."""
    response = event("payment-succeeded", paymentId="p", amount="1.00", currency="USD")
    assert response.status_code == 400


def test_a_refund_without_any_id_is_400(event: Post) -> None:
    """A refund needs refundId (or an eventId / Idempotency-Key) so a retry cannot refund twice."""
    response = event("payment-refunded", paymentId="pi_1", amount="1.00", currency="USD")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "refundId"


# --- body ---------------------------------------------------------------------------------------

def test_invalid_json_is_400(api: APIClient) -> None:
    """A body that is not JSON is refused with invalid_json."""
    response = api.post("/api/events/customer-created", data=b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_a_json_array_body_is_400(api: APIClient) -> None:
    """The body must be a JSON object."""
    response = api.post("/api/events/customer-created", data=b"[]", content_type="application/json")
    assert response.status_code == 400


def test_a_form_body_is_415(api: APIClient) -> None:
    """Only JSON bodies are read."""
    response = api.post("/api/events/customer-created", data="email=a@b.co",
                        content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_a_body_over_256_kib_is_413(event: Post) -> None:
    """A body over 256 KiB answers 413 and appends nothing."""
    response = event("customer-created", email="a@b.co", name="x" * (256 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert Event.objects.exists() is False


def test_a_declared_length_over_256_kib_is_413_before_reading(api: APIClient) -> None:
    """The Content-Length header alone is enough to refuse, before the body is read."""
    response = api.generic("POST", "/api/events/customer-created", b"{}", content_type="application/json",
                           CONTENT_LENGTH=str(300 * 1024))
    assert response.status_code == 413


def test_a_body_just_under_the_limit_is_read(event: Post) -> None:
    """The limit is on size, not on content: a large valid body under 256 KiB is accepted."""
    response = event("customer-created", email="a@b.co", name="x" * 400)
    assert response.status_code == 200


# --- idempotency --------------------------------------------------------------------------------

@pytest.mark.smoke
def test_same_event_id_is_409_with_the_original(event: Post) -> None:
    """A retried eventId answers 409 duplicate_event with the original's id and appends nothing."""
    first = event("customer-created", eventId="e-1", email="a@b.co")
    again = event("customer-created", eventId="e-1", email="other@b.co")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_event"
    assert again.json()["eventId"] == first.json()["eventId"]
    assert Event.objects.count() == 1


def test_same_idempotency_key_is_409(event: Post) -> None:
    """The Idempotency-Key header dedupes when there is no eventId."""
    first = event("payment-succeeded", email="a@b.co", amount="1.00", currency="USD",
                  headers={"HTTP_IDEMPOTENCY_KEY": "k-1"})
    again = event("payment-succeeded", email="a@b.co", amount="2.00", currency="USD",
                  headers={"HTTP_IDEMPOTENCY_KEY": "k-1"})
    assert first.status_code == 200
    assert again.status_code == 409
    assert again.json()["eventId"] == first.json()["eventId"]


def test_same_payment_id_is_409(event: Post) -> None:
    """Without eventId or key, a payment dedupes on paymentId."""
    first = event("payment-succeeded", paymentId="pi_1", email="a@b.co", amount="1.00", currency="USD")
    again = event("payment-succeeded", paymentId="pi_1", email="a@b.co", amount="1.00", currency="USD")
    assert again.status_code == 409
    assert again.json()["eventId"] == first.json()["eventId"]


def test_natural_key_dedupes_a_payment_without_id(event: Post) -> None:
    """Without paymentId, email + payment date + amount + currency identify the payment."""
    body = {"email": "A@b.co", "amount": "99.00", "currency": "USD", "paymentDate": "2024-05-01"}
    first = event("payment-succeeded", **body)
    again = event("payment-succeeded", **{**body, "email": "a@b.co", "paymentDate": "2024-05-01T18:00:00Z"})
    other_day = event("payment-succeeded", **{**body, "paymentDate": "2024-05-02"})
    assert first.status_code == 200
    assert again.status_code == 409
    assert again.json()["eventId"] == first.json()["eventId"]
    assert other_day.status_code == 200
    assert Event.objects.get(event_id=first.json()["eventId"]).data["payment_ref"] == "nk:a@b.co|2024-05-01|9900|USD"


def test_event_id_takes_precedence_over_payment_id(event: Post) -> None:
    """Two different eventIds are two events even for one paymentId (attribution dedupes the payment)."""
    body = {"paymentId": "pi_1", "email": "a@b.co", "amount": "1.00", "currency": "USD"}
    assert event("payment-succeeded", eventId="e-1", **body).status_code == 200
    assert event("payment-succeeded", eventId="e-2", **body).status_code == 200
    assert Event.objects.count() == 2


def test_same_refund_id_is_409(event: Post) -> None:
    """A refund dedupes on refundId."""
    body = {"paymentId": "pi_1", "refundId": "re_1", "amount": "1.00", "currency": "USD"}
    assert event("payment-refunded", **body).status_code == 200
    assert event("payment-refunded", **body).status_code == 409


def test_same_signup_is_409(event: Post) -> None:
    """A signup dedupes on customerId, or on email without one."""
    assert event("customer-created", customerId="u1", email="a@b.co").status_code == 200
    assert event("customer-created", customerId="u1", email="changed@b.co").status_code == 409
    assert event("customer-created", email="x@b.co").status_code == 200
    assert event("customer-created", email=" X@b.co").status_code == 409


def test_ids_of_different_kinds_never_collide(event: Post) -> None:
    """A refund id equal to a payment id is a different event (namespaced keys)."""
    assert event("payment-succeeded", paymentId="same", email="a@b.co", amount="1.00",
                 currency="USD").status_code == 200
    assert event("payment-refunded", paymentId="same", refundId="same", amount="1.00",
                 currency="USD").status_code == 200


def test_same_event_id_in_two_workspaces_is_two_events(
        event: Post, other_api: APIClient, other_tenant: CreatedWorkspace) -> None:
    """Idempotency is per workspace: another business's eventId never suppresses ours."""
    assert event("customer-created", eventId="e-1", email="a@b.co").status_code == 200
    response = other_api.post("/api/events/customer-created", {
        "businessId": other_tenant.workspace.id, "productId": other_tenant.product.id, "eventId": "e-1",
        "email": "a@b.co"}, format="json")
    assert response.status_code == 200


def test_an_oversized_idempotency_key_is_400(event: Post) -> None:
    """An Idempotency-Key over 200 characters is refused rather than truncated."""
    response = event("customer-created", email="a@b.co", headers={"HTTP_IDEMPOTENCY_KEY": "k" * 201})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "Idempotency-Key"


# --- the hot path -------------------------------------------------------------------------------

def test_an_event_costs_one_lookup_and_one_insert(event: Post) -> None:
    """Once the key was used and the product seen, an event runs only the key lookup and the insert."""
    assert event("customer-created", email="warm@b.co").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert event("payment-succeeded", paymentId="pi_1", email="a@b.co", amount="9.00",
                     currency="USD").status_code == 200
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries
                  if "SAVEPOINT" not in q["sql"].upper() and "pg_advisory_xact_lock" not in q["sql"]]
    assert statements == ["SELECT", "INSERT"]
