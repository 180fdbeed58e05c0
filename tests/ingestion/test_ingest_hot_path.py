"""The ingest hot path's shortcuts answer exactly as the general code they stand in for."""

from __future__ import annotations

import secrets

import pytest
from django.http.request import HttpHeaders
from django.test import Client
from rest_framework.test import APIClient

from ingestion import ids
from ingestion.models import Delivery, Event
from ingestion.webhooks import _MetaHeaders
from ingestion.workspaces import CreatedWorkspace, provider_secret_set

from ..providers.signing import SECRETS, fixture_bytes, post_body


def test_new_id_drops_bytes_from_252_up_and_maps_the_others_modulo_36(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytes 252-255 would bias the alphabet and are skipped; byte b is the symbol b % 36."""
    draws = iter([bytes([252, 253, 254, 255, 0, 35, 36, 251]), bytes([1, 2, 71])])
    monkeypatch.setattr(secrets, "token_bytes", lambda n: next(draws))
    assert ids.new_id("evt", 7) == "evt_0z0z" + "12z"


def test_new_id_has_the_prefix_length_and_alphabet() -> None:
    made = {ids.new_id("dlv", 24) for _ in range(200)}
    assert len(made) == 200
    assert all(m.startswith("dlv_") and len(m) == 28 and set(m[4:]) <= set(ids._ALPHABET) for m in made)


def test_webhook_headers_from_meta_answer_as_request_headers() -> None:
    """The webhook's header view of ``META`` finds what ``HttpHeaders`` finds, and only that."""
    meta = {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "12", "HTTP_STRIPE_SIGNATURE": "t=1,v1=ab",
            "HTTP_USER_AGENT": "Stripe/1.0", "HTTP_X_PADDLE_SIG": "x", "REMOTE_ADDR": "127.0.0.1"}
    ours, django = _MetaHeaders(meta), HttpHeaders(meta)
    for name in ("stripe-signature", "Stripe-Signature", "content-type", "Content-Length", "user-agent",
                 "x-paddle-sig", "x_paddle_sig", "remote-addr", "verif-hash", "http-user-agent"):
        assert ours.get(name) == django.get(name), name
        assert (name in ours) == (name in django), name
    assert sorted(ours) == sorted(django)


# --- the one-message append (PostgreSQL) -------------------------------------------------------

@pytest.mark.postgres
def test_a_redelivery_outside_a_transaction_is_recorded_duplicate_with_the_original_event_id(
        transactional_db: None, tenant: CreatedWorkspace) -> None:
    """The one-message path (settle statement built once per event count): same verdicts and ids."""
    provider_secret_set(workspace=tenant.workspace, provider="stripe", secret=SECRETS["stripe"], label="test")
    body = fixture_bytes("stripe", "invoice.paid__first")
    client = Client()
    first = post_body(client, "stripe", body, business_id=tenant.workspace.id, secret=SECRETS["stripe"])
    again = post_body(client, "stripe", body, business_id=tenant.workspace.id, secret=SECRETS["stripe"])
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["verdict"], again.json()["verdict"]) == ("accepted", "duplicate")
    assert again.json()["eventIds"] == first.json()["eventIds"]
    rows = {d.id: (d.verdict, d.event_ids) for d in Delivery.objects.all()}
    assert rows == {first.json()["deliveryId"]: ("accepted", first.json()["eventIds"]),
                    again.json()["deliveryId"]: ("duplicate", first.json()["eventIds"])}


# --- content negotiation of the event endpoints ---------------------------------------------------

def _payment(api: APIClient, tenant: CreatedWorkspace, n: int, **extra: str):
    body = {"businessId": tenant.workspace.id, "productId": tenant.product.id, "paymentId": f"pi_neg_{n}",
            "email": "neg@example.com", "amount": "10.00", "currency": "USD"}
    return api.post("/api/events/payment-succeeded", body, format="json", **extra)


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_event_post_answers_json_for_the_usual_accept_headers(api: APIClient, tenant: CreatedWorkspace,
                                                              accept: str | None) -> None:
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    response = _payment(api, tenant, 1, **extra)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["success"] is True


@pytest.mark.django_db
def test_event_post_with_an_unacceptable_accept_header_is_refused_406(api: APIClient,
                                                                     tenant: CreatedWorkspace) -> None:
    response = _payment(api, tenant, 2, HTTP_ACCEPT="text/html")
    assert response.status_code == 406
    assert Event.objects.filter(source="api").exists() is False


@pytest.mark.django_db
def test_event_post_with_an_unknown_format_parameter_is_refused_404(api: APIClient,
                                                                   tenant: CreatedWorkspace) -> None:
    body = {"businessId": tenant.workspace.id, "productId": tenant.product.id, "paymentId": "pi_fmt",
            "email": "neg@example.com", "amount": "10.00", "currency": "USD"}
    response = api.post("/api/events/payment-succeeded?format=xml", body, format="json")
    assert response.status_code == 404
    assert Event.objects.filter(source="api").exists() is False
