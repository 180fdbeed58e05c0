"""Security gate 14 (issue #9): API keys and provider secrets never appear in logs (every logger,
DEBUG level, every attribute of every record), error messages or admin list pages."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from ingestion.models import Delivery, Event
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
        "/admin/ingestion/apikey/", f"/admin/ingestion/apikey/{quote(tenant.api_key.key.pk)}/change/",
        "/admin/ingestion/providersecret/", f"/admin/ingestion/providersecret/{quote(secret_row.pk)}/change/",
        "/admin/ingestion/workspace/", f"/admin/ingestion/workspace/{quote(tenant.workspace.pk)}/change/",
        "/admin/ingestion/delivery/", f"/admin/ingestion/delivery/{quote(delivery.pk)}/change/",
        "/admin/ingestion/event/",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert tenant.api_key.secret not in html, page
        assert PROVIDER_SECRET not in html, page


# --- every provider, and the error reports of unexpected failures --------------------------------

FIXTURE = {"stripe": "invoice.paid__first", "paystack": "charge.success", "flutterwave": "charge.completed__v3",
           "paddle": "transaction.completed", "lemonsqueezy": "order_created"}


def _stored_text() -> str:
    """Every delivery and event row as text (headers, bodies, raw): what the console can show."""
    rows = list(Delivery.objects.values()) + list(Event.objects.values())
    return json.dumps(rows, default=str)


@pytest.mark.parametrize("provider", list(FIXTURE))
def test_no_provider_secret_is_logged_answered_or_stored_for_any_delivery(
    tenant: CreatedWorkspace, all_logs: pytest.LogCaptureFixture, provider: str,
) -> None:
    """For each provider, an accepted delivery and one signed with the wrong secret: the configured
    secret is in no log record, no answer and no stored delivery or event (Flutterwave v3 sends the
    secret itself in ``verif-hash``, so this also checks that header is never kept)."""
    from tests.providers.signing import SECRETS, WRONG, post_fixture

    secret = SECRETS[provider]
    provider_secret_set(workspace=tenant.workspace, provider=provider, secret=secret)
    client = Client()
    accepted = post_fixture(client, provider, FIXTURE[provider], business_id=tenant.workspace.id)
    refused = post_fixture(client, provider, FIXTURE[provider], business_id=tenant.workspace.id, secret=WRONG)

    assert (accepted.status_code, refused.status_code) == (200, 400)
    assert Event.objects.filter(source=provider).exists()
    for response in (accepted, refused):
        assert secret not in response.content.decode()
    assert _leaks(secret, all_logs.records) == []
    assert secret not in _stored_text()


def _error_reports(records: list[logging.LogRecord]) -> list[str]:
    """The error report Django's AdminEmailHandler mails for each logged 500 (its text body: the
    request's headers and settings through the configured filter; HTML, with every frame's local
    variables, is only mailed with ``include_html`` and shown with DEBUG, both off in production)."""
    from django.views.debug import ExceptionReporter

    reports = []
    for record in records:
        if record.name == "django.request" and record.exc_info and hasattr(record, "request"):
            reporter = ExceptionReporter(record.request, *record.exc_info, is_email=True)
            reports.append(reporter.get_traceback_text())
    assert reports, "no 500 was logged: the failure was not exercised"
    assert all("META:" in report for report in reports)  # the request's headers are part of the report
    return reports


class Boom(RuntimeError):
    """An unexpected failure deep in request handling."""


def test_a_webhook_that_fails_unexpectedly_leaks_no_secret_in_its_answer_logs_or_error_report(
    tenant: CreatedWorkspace, all_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Flutterwave v3 delivery (whose ``verif-hash`` header IS the secret) that hits an unexpected
    error after verification: the 500 answer, the logs and the error report mailed to ADMINS do not
    contain the secret (Django's own filter hides ``Authorization`` and ``*SIGNATURE*`` headers
    but not ``Verif-Hash``)."""
    from ingestion import webhooks
    from tests.providers.signing import SECRETS, post_fixture

    def boom(*args: object, **kwargs: object) -> None:
        raise Boom("normalising failed")

    monkeypatch.setattr(webhooks, "_process", boom)
    secret = SECRETS["flutterwave"]
    provider_secret_set(workspace=tenant.workspace, provider="flutterwave", secret=secret)
    response = post_fixture(Client(raise_request_exception=False), "flutterwave", FIXTURE["flutterwave"],
                            business_id=tenant.workspace.id)

    assert response.status_code == 500
    assert secret not in response.content.decode()
    assert _leaks(secret, all_logs.records) == []
    for report in _error_reports(all_logs.records):
        assert secret not in report


def test_an_api_request_that_fails_unexpectedly_leaks_no_key_in_its_answer_logs_or_error_report(
    tenant: CreatedWorkspace, all_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An API event whose append fails unexpectedly: the 500 answer, the logs and the error report
    mailed to ADMINS do not contain the API key sent in ``Authorization``."""
    from ingestion import api

    def boom(*args: object, **kwargs: object) -> None:
        raise Boom("append failed")

    monkeypatch.setattr(api, "event_append", boom)
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.api_key.secret}")
    response = client.post("/api/events/customer-created", {
        "businessId": tenant.workspace.id, "productId": tenant.product.id, "email": "a@b.co"}, format="json")

    assert response.status_code == 500
    secret = tenant.api_key.secret
    assert secret not in response.content.decode()
    assert _leaks(secret, all_logs.records) == []
    for report in _error_reports(all_logs.records):
        assert secret not in report
