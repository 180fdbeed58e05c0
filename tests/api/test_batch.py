"""``POST /api/events/batch``: up to 1,000 events, a result per item, one bad item sinks nothing."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from ingestion import api as ingestion_api
from ingestion.models import Event
from ingestion.store import event_append_many
from ingestion.workspaces import CreatedWorkspace
from tests.api.conftest import Post

pytestmark = pytest.mark.django_db
BATCH = "/api/events/batch"


def _payment(n: int, **extra: Any) -> dict[str, Any]:
    return {"type": "payment-succeeded", "paymentId": f"pi_{n}", "email": f"c{n}@example.com", "amount": "10.00",
            "currency": "USD", **extra}


@pytest.mark.smoke
def test_each_item_gets_its_own_result(post: Post, ids: dict[str, str], other_tenant: CreatedWorkspace) -> None:
    """Good items are appended; a bad amount, an unknown type, a foreign product and a duplicate are
    answered on their own lines without stopping the rest."""
    events = [
        {"type": "customer-created", "email": "jane@example.com"},
        _payment(1, amount="99.999"),
        {"type": "no-such-kind"},
        _payment(2),
        _payment(2),
        _payment(3, productId=other_tenant.product.id),
        {"type": "payment.refunded", "paymentId": "pi_2", "refundId": "re_1", "amountMinor": 500, "currency": "USD"},
    ]
    response = post(BATCH, {**ids, "events": events})
    assert response.status_code == 200
    body = response.json()
    statuses = [(r["index"], r["status"]) for r in body["results"]]
    assert statuses == [(0, 200), (1, 400), (2, 400), (3, 200), (4, 409), (5, 404), (6, 200)]
    assert body["results"][1]["error"]["field"] == "amount"
    assert body["results"][2]["error"]["field"] == "type"
    assert body["results"][4]["eventId"] == body["results"][3]["eventId"]
    assert (body["accepted"], body["duplicates"], body["rejected"], body["success"]) == (3, 1, 3, False)
    stored = list(Event.objects.order_by("position").values_list("type", flat=True))
    assert stored == ["customer.created", "payment.succeeded", "payment.refunded"]


def test_accepted_items_are_appended_together(post: Post, ids: dict[str, str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The valid items of a batch go to the store in one event_append_many call."""
    calls: list[int] = []

    def spy(news: list[Any]) -> Any:
        calls.append(len(news))
        return event_append_many(news)

    monkeypatch.setattr(ingestion_api, "event_append_many", spy)
    response = post(BATCH, {**ids, "events": [_payment(n) for n in range(5)]})
    assert response.status_code == 200
    assert calls == [5]
    assert Event.objects.count() == 5


def test_a_retried_batch_is_all_duplicates(post: Post, ids: dict[str, str]) -> None:
    """Sending the same batch twice appends nothing the second time; every item is 409."""
    events = [_payment(n) for n in range(3)]
    first = post(BATCH, {**ids, "events": events}).json()
    again = post(BATCH, {**ids, "events": events}).json()
    assert [r["status"] for r in again["results"]] == [409, 409, 409]
    assert [r["eventId"] for r in again["results"]] == [r["eventId"] for r in first["results"]]
    assert again["success"] is True
    assert Event.objects.count() == 3


def test_an_idempotency_key_covers_each_item(post: Post, ids: dict[str, str]) -> None:
    """With an Idempotency-Key item i is keyed '<key>:<i>', so a retried batch is all duplicates."""
    events = [{"type": "payment-succeeded", "email": "a@b.co", "amount": "1.00", "currency": "USD"},
              {"type": "payment-succeeded", "email": "a@b.co", "amount": "1.00", "currency": "USD"}]
    first = post(BATCH, {**ids, "events": events}, HTTP_IDEMPOTENCY_KEY="batch-7").json()
    assert [r["status"] for r in first["results"]] == [200, 200]
    again = post(BATCH, {**ids, "events": events}, HTTP_IDEMPOTENCY_KEY="batch-7").json()
    assert [r["status"] for r in again["results"]] == [409, 409]


def test_item_product_defaults_to_the_batch_product(post: Post, tenant: CreatedWorkspace) -> None:
    """An item without productId takes the batch's; an item without businessId takes the key's."""
    response = post(BATCH, {"businessId": tenant.workspace.id, "productId": tenant.product.id,
                            "events": [{"type": "customer-created", "email": "a@b.co"}]})
    assert response.json()["results"][0]["status"] == 200
    assert Event.objects.get().data["product_id"] == tenant.product.id


def test_item_without_any_product_is_400(post: Post, tenant: CreatedWorkspace) -> None:
    """Without a batch productId each item needs its own."""
    response = post(BATCH, {"businessId": tenant.workspace.id,
                            "events": [{"type": "customer-created", "email": "a@b.co"}]})
    assert response.json()["results"][0]["status"] == 400
    assert response.json()["results"][0]["error"]["field"] == "productId"


def test_an_item_naming_another_business_is_403(post: Post, ids: dict[str, str],
                                                other_tenant: CreatedWorkspace) -> None:
    """An item's businessId must be the key's workspace too."""
    response = post(BATCH, {**ids, "events": [
        {"type": "customer-created", "email": "a@b.co", "businessId": other_tenant.workspace.id}]})
    assert response.json()["results"][0]["status"] == 403
    assert Event.objects.exists() is False


def test_a_batch_of_1000_is_accepted(post: Post, ids: dict[str, str]) -> None:
    """A batch of exactly 1,000 realistic events fits the limits and is appended."""
    response = post(BATCH, {**ids, "events": [_payment(n, paymentDate="2024-05-01T12:00:00Z")
                                              for n in range(1000)]})
    assert response.status_code == 200
    assert response.json()["accepted"] == 1000
    assert Event.objects.count() == 1000


def test_a_batch_over_1000_is_400(post: Post, ids: dict[str, str]) -> None:
    """1,001 events are refused as a whole, naming events."""
    response = post(BATCH, {**ids, "events": [{"type": "customer-created"}] * 1001})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "events"


@pytest.mark.parametrize("events", [[], {}, "x", None])
def test_events_must_be_a_non_empty_list(post: Post, ids: dict[str, str], events: object) -> None:
    """A batch without a list of events is a 400 on events."""
    response = post(BATCH, {**ids, "events": events})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "events"


def test_unknown_batch_fields_are_400(post: Post, ids: dict[str, str]) -> None:
    """The batch envelope refuses unknown fields too."""
    response = post(BATCH, {**ids, "events": [_payment(1)], "dryRun": True})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "dryRun"


def test_batch_business_id_mismatch_is_403(post: Post, ids: dict[str, str], other_tenant: CreatedWorkspace) -> None:
    """The batch's businessId must be the key's workspace."""
    response = post(BATCH, {**ids, "businessId": other_tenant.workspace.id, "events": [_payment(1)]})
    assert response.status_code == 403


def test_unknown_batch_product_is_404(post: Post, ids: dict[str, str]) -> None:
    """A batch-level productId that is not the workspace's answers 404."""
    response = post(BATCH, {**ids, "productId": "prod_nope", "events": [_payment(1)]})
    assert response.status_code == 404


def test_a_batch_over_1_mib_is_413(api: APIClient, ids: dict[str, str]) -> None:
    """The batch body limit is 1 MiB."""
    response = api.post(BATCH, {**ids, "events": [{"type": "customer-created", "name": "x" * 2048,
                                                   "email": "a@b.co"}] * 600}, format="json")
    assert response.status_code == 413
    assert Event.objects.exists() is False
