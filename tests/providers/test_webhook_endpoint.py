"""The webhook endpoint: routing, delivery records, error answers, secrets kept out of every record."""

from __future__ import annotations

import logging

import pytest
from django.test import Client, override_settings

from ingestion.models import Delivery, Event
from ingestion.webhooks import MAX_WEBHOOK_BYTES
from ingestion.workspaces import workspace_create

from .signing import SECRETS, WRONG, dump, fixture_bytes, fixture_json, post_body, post_fixture

pytestmark = pytest.mark.django_db


@pytest.mark.smoke
def test_unknown_workspace_answers_404_and_is_recorded(client: Client, connected) -> None:
    """A businessId that does not exist answers 404; the request is still recorded."""
    response = post_fixture(client, "stripe", "invoice.paid__first", business_id="biz_doesnotexist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_workspace"
    delivery = Delivery.objects.get()
    assert (delivery.verdict, delivery.workspace_id, delivery.provider) == ("rejected", None, "stripe")
    assert Event.objects.exists() is False


def test_unknown_provider_answers_404(client: Client, biz: str) -> None:
    """A provider name that is not registered answers 404 and appends nothing."""
    response = client.post(f"/webhooks/paypal/{biz}", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_provider"
    assert Delivery.objects.get().verdict == "rejected"


def test_workspace_without_a_secret_answers_400_with_a_clear_message(client: Client, tenant) -> None:
    """A workspace that never entered a Paddle secret gets a 400 that says what to do."""
    response = post_fixture(client, "paddle", "transaction.completed", business_id=tenant.workspace.id)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "no_provider_secret"
    assert "set_provider_secret" in error["message"]
    assert "paddle" in error["message"]
    delivery = Delivery.objects.get()
    assert (delivery.verdict, delivery.workspace_id) == ("rejected", tenant.workspace.id)


def test_secret_of_another_workspace_does_not_verify(client: Client, connected) -> None:
    """Secrets are per workspace: another business's delivery is refused with its own 400."""
    other = workspace_create(name="Initech")
    response = post_fixture(client, "stripe", "invoice.paid__first", business_id=other.workspace.id)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_provider_secret"


def test_get_is_not_allowed(client: Client, biz: str) -> None:
    """Webhooks are POST only; a GET answers 405 JSON and records nothing."""
    response = client.get(f"/webhooks/stripe/{biz}")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert Delivery.objects.exists() is False


def test_trailing_slash_is_accepted(client: Client, biz: str) -> None:
    """Dashboards often add a trailing slash; the same receiver answers."""
    from .signing import sign

    body = fixture_bytes("lemonsqueezy", "order_created")
    response = client.post(f"/webhooks/lemonsqueezy/{biz}/", data=body, content_type="application/json",
                           headers=sign("lemonsqueezy", body, SECRETS["lemonsqueezy"]))
    assert response.status_code == 200


def test_oversized_body_answers_413_without_reading_it(client: Client, biz: str) -> None:
    """A body above the webhook limit is refused with 413 and recorded without its body."""
    body = b'{"pad": "' + b"x" * (MAX_WEBHOOK_BYTES + 10) + b'"}'
    response = post_body(client, "paystack", body, business_id=biz, secret=SECRETS["paystack"])
    assert response.status_code == 413
    delivery = Delivery.objects.get()
    assert (delivery.verdict, delivery.body) == ("rejected", "")


@override_settings(REFAIRN_MAX_BODY_BYTES=1024)
def test_large_body_is_stored_bounded_and_kept_whole_with_its_events(client: Client, biz: str) -> None:
    """The delivery keeps a bounded prefix; the events' raw keeps the full body for re-normalisation."""
    payload = fixture_json("lemonsqueezy", "order_created")
    payload["data"]["attributes"]["notes"] = "n" * 4000
    body = dump(payload)
    response = post_body(client, "lemonsqueezy", body, business_id=biz, secret=SECRETS["lemonsqueezy"])
    assert response.status_code == 200
    delivery = Delivery.objects.get()
    assert delivery.body_truncated is True
    assert len(delivery.body.encode()) == 1024
    event = Event.objects.get()
    assert event.raw["body"] == body.decode()
    assert event.raw["delivery_id"] == delivery.id


def test_delivery_records_headers_body_ip_and_verdict(client: Client, biz: str) -> None:
    """A delivery row holds the relevant headers, the raw body, the remote IP and the verdict."""
    body = fixture_bytes("paystack", "charge.success")
    response = post_fixture(client, "paystack", "charge.success", business_id=biz,
                            headers={"Cookie": "session=abc", "Authorization": "Bearer nope"})
    delivery = Delivery.objects.get(pk=response.json()["deliveryId"])
    assert delivery.body == body.decode()
    assert delivery.body_truncated is False
    assert delivery.remote_ip == "127.0.0.1"
    assert set(delivery.headers) == {"x-paystack-signature", "content-type"}
    assert delivery.verdict == "accepted"
    assert delivery.error == ""


def test_unparseable_verified_body_is_recorded_as_error(client: Client, biz: str) -> None:
    """A correctly signed body that is not JSON answers 422 and keeps an error delivery."""
    response = post_body(client, "lemonsqueezy", b"not json at all", business_id=biz,
                         secret=SECRETS["lemonsqueezy"])
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unprocessable_payload"
    delivery = Delivery.objects.get()
    assert delivery.verdict == "error"
    assert "not valid JSON" in delivery.error
    assert Event.objects.exists() is False


def test_inexact_amount_is_an_error_not_a_rounding(client: Client, biz: str) -> None:
    """A Flutterwave amount with more decimals than the currency has is refused, never rounded."""
    payload = fixture_json("flutterwave", "charge.completed__v3")
    body = dump(payload).replace(b"2500.5", b"2500.555")
    response = post_body(client, "flutterwave", body, business_id=biz, secret=SECRETS["flutterwave"])
    assert response.status_code == 422
    assert "NGN has 2 decimal places" in response.json()["error"]["message"]
    assert Event.objects.exists() is False


def test_unknown_currency_is_an_error(client: Client, biz: str) -> None:
    """A currency outside ISO 4217 makes the delivery an error (422), nothing appended."""
    body = fixture_bytes("paystack", "charge.success").replace(b'"NGN"', b'"XYZ"')
    response = post_body(client, "paystack", body, business_id=biz, secret=SECRETS["paystack"])
    assert response.status_code == 422
    assert Delivery.objects.get().verdict == "error"


def test_secrets_never_reach_logs_records_or_answers(client: Client, biz: str, caplog) -> None:
    """Neither a valid nor a wrong secret appears in a log line, a delivery row or a response."""
    caplog.set_level(logging.DEBUG)
    answers = []
    for provider in SECRETS:
        for secret in (SECRETS[provider], WRONG):
            name = {"stripe": "invoice.paid__first", "paystack": "charge.success",
                    "flutterwave": "charge.completed__v3", "paddle": "transaction.completed",
                    "lemonsqueezy": "order_created"}[provider]
            answers.append(post_fixture(client, provider, name, business_id=biz, secret=secret).content.decode())
    recorded = " ".join(f"{d.headers} {d.error} {d.body}" for d in Delivery.objects.all())
    everything = caplog.text + recorded + " ".join(answers)
    for secret in [*SECRETS.values(), WRONG]:
        assert secret not in everything


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_database_outage_answers_503(client: Client, connected) -> None:
    """With the database unreachable the receiver answers 503 so the provider retries."""
    from django.db import connection

    biz = connected.workspace.id
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["PORT"] = "1"
    connection.settings_dict["OPTIONS"] = {**saved.get("OPTIONS", {}), "connect_timeout": 1}
    try:
        response = post_fixture(client, "stripe", "invoice.paid__first", business_id=biz)
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response["Retry-After"] == "5"
    # Back up: the provider's retry is accepted.
    assert post_fixture(client, "stripe", "invoice.paid__first", business_id=biz).status_code == 200


def test_hot_path_secret_read_matches_the_secret_service(connected) -> None:
    """active_secrets (the webhook's plain query) returns what workspaces.provider_secrets returns."""
    from ingestion.webhooks import active_secrets
    from ingestion.workspaces import provider_secret_set, provider_secrets

    workspace = connected.workspace
    provider_secret_set(workspace=workspace, provider="paddle", secret="pdl_ntfset_second")
    provider_secret_set(workspace=workspace, provider="paddle", secret="pdl_ntfset_third", replace=False)
    provider_secret_set(workspace=workspace, provider="stripe", secret="whsec_replaced", replace=True)
    for provider in SECRETS:
        assert active_secrets(workspace_id=workspace.id, provider=provider) == provider_secrets(
            workspace_id=workspace.id, provider=provider)
    assert active_secrets(workspace_id=workspace.id, provider="stripe") == ["whsec_replaced"]
    assert active_secrets(workspace_id="biz_nope", provider="stripe") == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_redeliveries_store_the_events_once(connected) -> None:
    """Two copies of one webhook arriving at the same moment append one set of events."""
    import threading

    from django.db import connection

    biz = connected.workspace.id
    barrier = threading.Barrier(4)
    answers: list[dict] = []

    def deliver() -> None:
        try:
            barrier.wait()
            response = post_fixture(Client(), "stripe", "checkout.session.completed__subscription", business_id=biz)
            answers.append(response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a["verdict"] for a in answers) == ["accepted", "duplicate", "duplicate", "duplicate"]
    assert Event.objects.filter(source="stripe").count() == 2
    assert len({tuple(a["eventIds"]) for a in answers}) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_redelivery_costs_the_round_trips_of_a_new_delivery_and_is_recorded_as_duplicate(
        client: Client, biz: str) -> None:
    """On PostgreSQL a webhook is two queries (its secrets, then one message that stores the
    delivery, appends and, for a redelivery, settles the row), so a provider retrying costs no more
    than a new event; the duplicate's row names the original events."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = post_fixture(client, "stripe", "invoice.paid__first", business_id=biz).json()
    with CaptureQueriesContext(connection) as queries:
        again = post_fixture(client, "stripe", "invoice.paid__first", business_id=biz).json()

    assert (first["verdict"], again["verdict"]) == ("accepted", "duplicate")
    assert again["eventIds"] == first["eventIds"]
    assert len(queries) == 2
    stored = Delivery.objects.get(pk=again["deliveryId"])
    assert (stored.verdict, stored.event_ids) == ("duplicate", first["eventIds"])
    assert Delivery.objects.get(pk=first["deliveryId"]).verdict == "accepted"
    assert Event.objects.count() == len(first["eventIds"])
