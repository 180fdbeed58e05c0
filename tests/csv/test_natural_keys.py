"""The natural key of a payment, shared by the CSV import and the API (one payment, one payment_ref)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from rest_framework.test import APIClient

from ingestion.csv_import import ImportResult
from ingestion.models import Event
from ingestion.natural_keys import payment_natural_key
from ingestion.workspaces import CreatedWorkspace

from .conftest import make_csv, row


def test_the_natural_key_format_is_email_date_minor_amount_currency() -> None:
    """The key is nk:<normalised email>|<UTC date>|<minor units>|<ISO code>."""
    key = payment_natural_key(email=" Ada@Example.COM ", paid_at=date(2024, 5, 3), amount=4900, currency="usd")
    assert key == "nk:ada@example.com|2024-05-03|4900|USD"


def test_the_natural_key_takes_the_utc_date_of_a_payment_time() -> None:
    """23:30 at UTC-2 on 1 May is 2 May in UTC, the date the key uses."""
    paid_at = datetime(2024, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    key = payment_natural_key(email="a@b.co", paid_at=paid_at, amount=1, currency="USD")
    assert key == "nk:a@b.co|2024-05-02|1|USD"


def test_the_natural_key_refuses_a_naive_time_and_a_non_integer_amount() -> None:
    """A naive datetime has no UTC date and a float is not minor units: both are refused."""
    with pytest.raises(ValueError, match="timezone-aware"):
        payment_natural_key(email="a@b.co", paid_at=datetime(2024, 5, 1), amount=1, currency="USD")  # noqa: DTZ001
    with pytest.raises(TypeError):
        payment_natural_key(email="a@b.co", paid_at=date(2024, 5, 1), amount=49.0, currency="USD")  # type: ignore[arg-type]


def test_a_very_long_email_gives_a_bounded_stable_key() -> None:
    """An email too long for the column is hashed: the same inputs still give the same key."""
    email = "x" * 240 + "@example.com"
    key = payment_natural_key(email=email, paid_at=date(2024, 5, 3), amount=1, currency="USD")
    assert key.startswith("nk:sha256:")
    assert len(key) <= 200
    assert key == payment_natural_key(email=email.upper(), paid_at=date(2024, 5, 3), amount=1, currency="USD")


@pytest.mark.django_db
@pytest.mark.smoke
def test_a_payment_sent_through_the_api_and_a_csv_row_share_one_payment_ref(
        api: APIClient, tenant: CreatedWorkspace, run: Callable[..., ImportResult]) -> None:
    """The API's payment without paymentId and the CSV row of the same payment get the same payment_ref."""
    response = api.post("/api/events/payment-succeeded", {
        "businessId": tenant.workspace.id, "productId": tenant.product.id, "email": "ada@example.com",
        "amount": "49.00", "currency": "USD", "occurredAt": "2024-05-03T15:20:00Z",
    }, format="json")
    assert response.status_code == 200, response.content
    run(make_csv([row(amount="49", code="")]))
    refs = {e.source: e.data["payment_ref"] for e in Event.objects.filter(type="payment.succeeded")}
    assert refs == {"api": "nk:ada@example.com|2024-05-03|4900|USD", "csv": "nk:ada@example.com|2024-05-03|4900|USD"}


@pytest.mark.django_db
def test_a_payment_reported_by_the_api_and_by_csv_earns_once(
        api: APIClient, tenant: CreatedWorkspace, run: Callable[..., ImportResult],
        project: Callable[[], dict[str, int]]) -> None:
    """The same referred payment, through the API and a CSV row, is attributed and commissioned once."""
    from attribution.models import PaymentAttribution
    from commissions.models import LedgerEntry

    run(make_csv([row(amount="49.00", code="ANNA")]))
    response = api.post("/api/events/payment-succeeded", {
        "businessId": tenant.workspace.id, "productId": tenant.product.id, "email": "ada@example.com",
        "amount": "49.00", "currency": "USD", "occurredAt": "2024-05-03T09:00:00Z",
    }, format="json")
    assert response.status_code == 200, response.content
    project()
    assert Event.objects.filter(type="payment.succeeded").count() == 2
    attribution = PaymentAttribution.objects.get(workspace=tenant.workspace)
    assert attribution.payment_ref == "nk:ada@example.com|2024-05-03|4900|USD"
    assert attribution.occurred_at == datetime(2024, 5, 3, tzinfo=UTC)
    entry = LedgerEntry.objects.get(workspace=tenant.workspace)
    assert (entry.kind, entry.amount, entry.currency) == ("referral", 980, "USD")


def _webhook_payment(workspace_id: str, *, ref: str = "pi_3PQ1x2", amount: int = 4900,
                     at: datetime = datetime(2024, 5, 3, 15, 20, tzinfo=UTC)) -> None:
    """The canonical event the Stripe receiver appends for a paid invoice (its own payment id, an email)."""
    from ingestion.store import NewEvent, event_append

    event_append(NewEvent(workspace_id=workspace_id, source="stripe", source_event_id=f"evt_stripe_{ref}",
                          type="payment.succeeded", occurred_at=at,
                          data={"payment_ref": ref, "email": "ada@example.com", "amount": amount,
                                "currency": "USD", "provider": "stripe"}))


@pytest.mark.django_db
def test_a_row_of_a_payment_a_webhook_already_reported_is_not_appended_and_earns_once(
        tenant: CreatedWorkspace, run: Callable[..., ImportResult], project: Callable[[], dict[str, int]]) -> None:
    """Stripe reported pi_… first; the CSV row of that payment adds the referred customer, not a payment."""
    from commissions.models import LedgerEntry

    _webhook_payment(tenant.workspace.id)
    result = run(make_csv([row(amount="49.00", code="ANNA")]))
    assert (result.events_appended, result.events_duplicate) == (1, 1)
    assert result.appended_by_type == {"customer.created": 1}
    project()
    entries = list(LedgerEntry.objects.filter(workspace=tenant.workspace))
    assert [(e.kind, e.amount, e.payment_ref) for e in entries] == [("referral", 980, "pi_3PQ1x2")]


@pytest.mark.django_db
def test_a_payment_the_api_reported_with_its_payment_id_is_not_imported_again(
        api: APIClient, tenant: CreatedWorkspace, run: Callable[..., ImportResult]) -> None:
    """An API payment with paymentId and the CSV row of the same payment: the row appends no payment."""
    response = api.post("/api/events/payment-succeeded", {
        "businessId": tenant.workspace.id, "productId": tenant.product.id, "email": "Ada@Example.com",
        "paymentId": "order-1001", "amount": "49.00", "currency": "USD", "occurredAt": "2024-05-03T23:59:00Z",
    }, format="json")
    assert response.status_code == 200, response.content
    plan: list[dict] = []
    result = run(make_csv([row(amount="49", code="")]), dry_run=True, plan=plan.append)
    assert result.appended_by_type == {"customer.created": 1}
    payment = plan[0]["events"][1]
    assert (payment["outcome"], payment["reportedAs"]) == ("duplicate", "api order-1001")


@pytest.mark.django_db
@pytest.mark.parametrize(("amount", "at"), [
    (4800, datetime(2024, 5, 3, 15, 20, tzinfo=UTC)),
    (4900, datetime(2024, 5, 2, 23, 59, tzinfo=UTC)),
])
def test_a_webhook_payment_of_another_amount_or_day_is_a_different_payment(
        tenant: CreatedWorkspace, run: Callable[..., ImportResult], amount: int, at: datetime) -> None:
    """Only the same email, UTC day, amount and currency make a twin; anything else is imported."""
    _webhook_payment(tenant.workspace.id, amount=amount, at=at)
    result = run(make_csv([row(amount="49.00", code="")]))
    assert result.appended_by_type == {"customer.created": 1, "payment.succeeded": 1}
