"""Re-normalising stored deliveries from the console: same service, results deduped like any event."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from django.contrib.admin.utils import quote
from django.test import Client

from ingestion import webhooks
from ingestion.errors import ApplicationError
from ingestion.models import Delivery, Event
from ingestion.providers import get_provider, paddle
from ingestion.providers.base import SignatureError
from ingestion.providers.paddle import PaddleProvider
from ingestion.webhooks import delivery_renormalise

from .signing import SECRETS, WRONG, post_fixture

pytestmark = pytest.mark.django_db


def _renormalise(admin_client: Client, *ids: str) -> str:
    response = admin_client.post("/admin/ingestion/delivery/", {"action": "renormalise", "_selected_action": ids},
                                 follow=True)
    assert response.status_code == 200
    return " ".join(str(m) for m in response.context["messages"])


@pytest.mark.smoke
def test_error_delivery_is_recovered_after_its_dependency_arrives(client: Client, biz: str, admin_client) -> None:
    """A Flutterwave refund received before its charge is re-normalised into a refund later."""
    refund = post_fixture(client, "flutterwave", "refund", business_id=biz).json()["deliveryId"]
    post_fixture(client, "flutterwave", "charge.completed__v3", business_id=biz)
    message = _renormalise(admin_client, refund)
    assert "1 new event(s)" in message
    delivery = Delivery.objects.get(pk=refund)
    assert (delivery.verdict, delivery.error) == ("accepted", "")
    event = Event.objects.get(event_id=delivery.event_ids[0])
    assert (event.type, event.data["amount"], event.raw["delivery_id"]) == ("payment.refunded", 100050, refund)
    assert event.actor == "user:root"


def test_renormalising_an_accepted_delivery_appends_nothing(client: Client, biz: str, admin_client) -> None:
    """Running an accepted delivery through the mapping again matches its stored events."""
    first = post_fixture(client, "stripe", "checkout.session.completed__subscription", business_id=biz).json()
    count = Event.objects.count()
    message = _renormalise(admin_client, first["deliveryId"])
    assert "0 new event(s), 2 already stored" in message
    assert Event.objects.count() == count
    delivery = Delivery.objects.get(pk=first["deliveryId"])
    assert (delivery.verdict, delivery.event_ids) == ("accepted", first["eventIds"])


def test_rejected_delivery_cannot_be_renormalised(client: Client, biz: str, admin_client) -> None:
    """A delivery whose signature failed was never verified: the console refuses to process it."""
    rejected = post_fixture(client, "paystack", "charge.success", business_id=biz, secret=WRONG).json()
    message = _renormalise(admin_client, rejected["deliveryId"])
    assert "only verified deliveries" in message
    assert Event.objects.exists() is False


def test_service_refuses_unverified_deliveries(client: Client, biz: str) -> None:
    """delivery_renormalise raises for a rejected delivery (the admin action calls the same service)."""
    rejected = post_fixture(client, "paddle", "transaction.completed", business_id=biz, secret=WRONG).json()
    with pytest.raises(ApplicationError, match="only verified deliveries"):
        delivery_renormalise(delivery=Delivery.objects.get(pk=rejected["deliveryId"]))


def test_stale_signature_does_not_block_renormalisation(client: Client, biz: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-normalising does not re-check a signature timestamp that has long expired.

    The delivery is received with a fresh signature (verified, accepted), then the clock moves an
    hour on: the stored body and headers would now fail Paddle's 300 s window, yet re-normalising
    works. Were the signature checked again, with the webhook module's clock, it would be refused.
    """
    signed_at = int(time.time())
    accepted = post_fixture(client, "paddle", "customer.created", business_id=biz, timestamp=signed_at).json()
    delivery = Delivery.objects.get(pk=accepted["deliveryId"])
    body, headers = delivery.body.encode(), {k.lower(): v for k, v in delivery.headers.items()}
    provider = get_provider("paddle")
    assert provider is not None
    provider.verify(body, headers, [SECRETS["paddle"]], float(signed_at))  # what was stored is what was signed
    later = signed_at + 3600.0
    with pytest.raises(SignatureError) as stale:
        provider.verify(body, headers, [SECRETS["paddle"]], later)
    assert stale.value.code == "stale_signature"

    monkeypatch.setattr(webhooks, "time", SimpleNamespace(time=lambda: later))
    result = delivery_renormalise(delivery=delivery)
    assert (result.status, result.verdict, result.created) == (200, Delivery.Verdict.ACCEPTED, 0)


def test_renormalising_after_a_mapping_fix_appends_the_newly_mapped_event_once(
        client: Client, biz: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A type kept as provider.ignored becomes a real event once the mapping table covers it, and only once.

    Paddle's transaction.created is unmapped (stored as provider.ignored). Mapping it to the
    transaction normaliser, as a fix would, and re-normalising appends its payment.succeeded next
    to the ignored twin (the canonical type is part of the source_event_id); a second
    re-normalisation matches what is stored and appends nothing.
    """
    delivery_id = post_fixture(client, "paddle", "transaction.created", business_id=biz).json()["deliveryId"]
    assert list(Event.objects.filter(workspace_id=biz).values_list("type", flat=True)) == ["provider.ignored"]
    monkeypatch.setitem(PaddleProvider.mapping, "transaction.created", paddle.transaction_completed)

    fixed = delivery_renormalise(delivery=Delivery.objects.get(pk=delivery_id))
    assert (fixed.status, fixed.created, fixed.verdict) == (200, 1, Delivery.Verdict.ACCEPTED)
    payments = Event.objects.filter(workspace_id=biz, type="payment.succeeded")
    assert [(e.event_id, e.data["payment_ref"], e.data["amount"]) for e in payments] == [
        (fixed.event_ids[0], "txn_01hv8wptq8987qeep44cyrewp9", 4900)]
    assert Delivery.objects.get(pk=delivery_id).event_ids == fixed.event_ids

    again = delivery_renormalise(delivery=Delivery.objects.get(pk=delivery_id))
    assert (again.status, again.created, again.event_ids) == (200, 0, fixed.event_ids)
    assert Event.objects.filter(workspace_id=biz).count() == 2


def test_deliveries_admin_is_read_only(admin_client: Client, client: Client, biz: str) -> None:
    """Deliveries can be listed and viewed, never added or changed."""
    delivery_id = post_fixture(client, "stripe", "customer.created", business_id=biz).json()["deliveryId"]
    assert admin_client.get("/admin/ingestion/delivery/?verdict__exact=accepted").status_code == 200
    assert admin_client.get(f"/admin/ingestion/delivery/{quote(delivery_id)}/change/").status_code == 200
    assert admin_client.get("/admin/ingestion/delivery/add/").status_code == 403
