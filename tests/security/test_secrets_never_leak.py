"""Security gate 14 (issue #9): API keys and provider secrets never appear in logs (every logger,
DEBUG level, every attribute of every record), error messages or admin list pages."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from ingestion.models import Delivery
from ingestion.workspaces import CreatedWorkspace, api_key_create, api_key_revoke, provider_secret_set, workspace_create
from tests.testapp.support import stripe_delivery

PROVIDER_SECRET = "whsec_leakcheck_5f0c2e8d1b7a4c6e9f3d2a1b0c9e8d7f"


def _leaks(secret: str, records: list[logging.LogRecord]) -> list[str]:
    """Every record that carries ``secret`` in its message, arguments, traceback or any extra."""
    found = []
    for record in records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "") + repr(vars(record))
        if secret in text:
            found.append(f"{record.name}: {record.getMessage()[:200]}")
    return found


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every logger at DEBUG (the root logger and anything below it)."""
    caplog.set_level(logging.DEBUG)
    for name in ("django", "django.request", "django.db.backends", "ingestion", "refairn", "celery"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.mark.smoke
def test_api_key_creation_and_use_never_log_the_key(db: None, all_logs: pytest.LogCaptureFixture) -> None:
    """Creating a workspace and extra keys, and authenticating with them, logs no key — even with
    every SQL statement and its parameters logged (only the hash ever reaches the database)."""
    previous = connection.force_debug_cursor
    connection.force_debug_cursor = True  # log SQL with parameters at DEBUG, as DEBUG=True would
    try:
        created = workspace_create(name="Leak Ltd")
        extra = api_key_create(workspace=created.workspace, name="second", live=False)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.api_key.secret}")
        assert client.get("/api/events").status_code == 200
    finally:
        connection.force_debug_cursor = previous
    assert any("INSERT" in r.getMessage() for r in all_logs.records), "SQL was not captured"
    for secret in (created.api_key.secret, extra.secret):
        assert _leaks(secret, all_logs.records) == []


@pytest.mark.parametrize("state", ["unknown", "revoked", "malformed"])
def test_auth_failures_never_echo_or_log_the_key(tenant: CreatedWorkspace, all_logs: pytest.LogCaptureFixture,
                                                 state: str) -> None:
    """A request with an unknown, revoked or malformed key gets a 401 whose body does not repeat
    the key, and nothing logged carries it."""
    if state == "revoked":
        issued = api_key_create(workspace=tenant.workspace, name="old")
        api_key_revoke(key=issued.key)
        secret = issued.secret
    elif state == "unknown":
        secret = "rf_live_" + "Q" * 32
    else:
        secret = "sk_live_" + "Z" * 32
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.post("/api/events/payment-succeeded", {"businessId": tenant.workspace.id}, format="json")

    assert response.status_code == 401
    assert secret not in response.content.decode()
    assert secret[8:] not in response.content.decode()
    assert _leaks(secret, all_logs.records) == []
    assert _leaks(secret[8:], all_logs.records) == []


@pytest.mark.parametrize("fault", ["wrong_secret", "tampered_body", "stale_timestamp"])
def test_webhook_verification_failures_never_leak_the_provider_secret(
    tenant: CreatedWorkspace, all_logs: pytest.LogCaptureFixture, fault: str,
) -> None:
    """A Stripe delivery that fails verification is refused (400) without the configured secret in
    the answer, the logs, or the recorded delivery."""
    provider_secret_set(workspace=tenant.workspace, provider="stripe", secret=PROVIDER_SECRET)
    if fault == "wrong_secret":
        body, headers = stripe_delivery("whsec_someone_else_000000000000000000", "evt_leak_1")
    elif fault == "tampered_body":
        body, headers = stripe_delivery(PROVIDER_SECRET, "evt_leak_1")
        body = body.replace(b"Grace Hopper", b"Mallory")
    else:
        body, headers = stripe_delivery(PROVIDER_SECRET, "evt_leak_1", timestamp=1_000_000_000)
    response = Client().post(f"/webhooks/stripe/{tenant.workspace.id}", data=body, content_type="application/json",
                             HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"])

    assert response.status_code == 400
    assert PROVIDER_SECRET not in response.content.decode()
    assert _leaks(PROVIDER_SECRET, all_logs.records) == []
    stored = json.dumps(list(Delivery.objects.values()), default=str)
    assert PROVIDER_SECRET not in stored


def test_provider_secret_errors_do_not_echo_the_secret(tenant: CreatedWorkspace) -> None:
    """Refusing a secret for an unknown provider does not repeat the secret in the error."""
    with pytest.raises(ValueError, match="unknown provider") as info:
        provider_secret_set(workspace=tenant.workspace, provider="stripez", secret=PROVIDER_SECRET)
    assert PROVIDER_SECRET not in str(info.value)


def test_admin_pages_never_show_keys_or_provider_secrets(tenant: CreatedWorkspace) -> None:
    """The console's list pages (and the change pages reached from them) for API keys, provider
    secrets, workspaces and deliveries never show an API key or a provider secret."""
    secret_row = provider_secret_set(workspace=tenant.workspace, provider="stripe", secret=PROVIDER_SECRET)
    body, headers = stripe_delivery(PROVIDER_SECRET, "evt_admin_1")
    Client().post(f"/webhooks/stripe/{tenant.workspace.id}", data=body, content_type="application/json",
                  HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"])
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789")
    client = Client()
    client.force_login(user)
    delivery = Delivery.objects.get()
    pages = [
        "/admin/ingestion/apikey/", f"/admin/ingestion/apikey/{tenant.api_key.key.pk}/change/",
        "/admin/ingestion/providersecret/", f"/admin/ingestion/providersecret/{secret_row.pk}/change/",
        "/admin/ingestion/workspace/", f"/admin/ingestion/workspace/{tenant.workspace.pk}/change/",
        "/admin/ingestion/delivery/", f"/admin/ingestion/delivery/{delivery.pk}/change/",
        "/admin/ingestion/event/",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert tenant.api_key.secret not in html, page
        assert PROVIDER_SECRET not in html, page
