"""Fixtures for the HTTP API tests: ids of the tenant, posting helpers, a second workspace's client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
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
