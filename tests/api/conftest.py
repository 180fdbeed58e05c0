"""Fixtures for the HTTP API tests: ids of the tenant, posting helpers, a second workspace's client, and
``first``: a workspace that owns an object behind every route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from ingestion.workspaces import CreatedWorkspace

Post = Callable[..., Any]


@pytest.fixture
def ids(tenant: CreatedWorkspace) -> dict[str, str]:
    """The businessId and productId every event body of the tenant carries."""
    return {"businessId": tenant.workspace.id, "productId": tenant.product.id}


@pytest.fixture
def post(api: APIClient) -> Post:
    """POST a JSON body with the tenant's key: ``post("/api/events/…", {...}, HTTP_IDEMPOTENCY_KEY=…)``."""

    def _post(path: str, body: Any, **extra: Any) -> Any:
        return api.post(path, body, format="json", **extra)

    return _post


@pytest.fixture
def event(post: Post, ids: dict[str, str]) -> Post:
    """POST one event of ``kind`` with the tenant's businessId and productId filled in."""

    def _event(kind: str, **fields: Any) -> Any:
        extra = fields.pop("headers", {})
        return post(f"/api/events/{kind}", {**ids, **fields}, **extra)

    return _event


@pytest.fixture
def other_api(other_tenant: CreatedWorkspace) -> APIClient:
    """An API client authenticated with the second workspace's key."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_tenant.api_key.secret}")
    return client


@pytest.fixture
def first(tenant: CreatedWorkspace, api: APIClient, project: Callable[[], Any],
          django_capture_on_commit_callbacks: Any) -> CreatedWorkspace:
    """The first workspace, with a program, an approved agent and an applicant, a referred customer, a
    payment, a refund, a support assignment, a payout and a CSV import: an object behind every id route."""
    ids = {"businessId": tenant.workspace.id}
    program = api.post("/api/programs", {**ids, "productId": tenant.product.id, "name": "P", "holdDays": 0},
                       format="json").json()
    agent = api.post("/api/agents", {**ids, "email": "secret-agent@first.example", "name": "Agent A"},
                     format="json").json()
    enrollment = api.post("/api/enrollments", {**ids, "agentId": agent["agentId"], "programId": program["programId"]},
                          format="json").json()
    approved = api.post(f"/api/enrollments/{enrollment['enrollmentId']}/approve", {**ids, "referralCode": "FIRSTCODE"},
                        format="json")
    assert approved.status_code == 200, approved.content
    applied = api.post("/api/agents", {**ids, "email": "applied@first.example", "name": "Applicant"},
                       format="json").json()
    api.post("/api/enrollments", {**ids, "agentId": applied["agentId"], "programId": program["programId"]},
             format="json")
    events = {"productId": tenant.product.id, **ids}
    for kind, body in [
        ("customer-created", {"customerId": "first-user", "email": "customer@first.example",
                              "referralCode": "FIRSTCODE", "occurredAt": "2024-01-01T00:00:00Z"}),
        ("payment-succeeded", {"paymentId": "first-pay", "customerId": "first-user", "amount": "100.00",
                               "currency": "USD", "occurredAt": "2024-01-02T00:00:00Z"}),
        ("payment-refunded", {"paymentId": "first-pay", "refundId": "first-refund", "amount": "10.00",
                              "currency": "USD", "occurredAt": "2024-01-03T00:00:00Z"}),
        ("support-assigned", {"customerId": "first-user", "agentId": agent["agentId"]}),
    ]:
        assert api.post(f"/api/events/{kind}", {**events, **body}, format="json").status_code == 200
    project()
    payout = api.post("/api/payouts", {**ids, "agentId": agent["agentId"], "currency": "USD"}, format="json")
    assert payout.status_code == 201, payout.content
    csv_file = SimpleUploadedFile("customers.csv", b"Customer Name,Customer Email,Plan,Amount Paid,Subscription Status,"
                                  b"Agent Code,Payment Date,Currency\r\n"
                                  b"Ada,imported@first.example,Pro,49.00,active,FIRSTCODE,2024-05-03,USD\r\n",
                                  content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        upload = api.post("/api/imports", {**ids, "file": csv_file}, format="multipart")
    assert upload.status_code == 202, upload.content
    project()
    return tenant
