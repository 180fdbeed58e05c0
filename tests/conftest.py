"""Root fixtures, and the rule that PostgreSQL and Redis tests fail, not skip, under CI."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from django.db import connection
from rest_framework.test import APIClient

from ingestion import projections
from ingestion.workspaces import CreatedWorkspace, workspace_create

IN_CI = bool(os.environ.get("CI"))


def redis_url() -> str:
    return os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or ""


def _redis_available() -> bool:
    url = redis_url()
    if not url.startswith("redis"):
        return False
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        message = "needs PostgreSQL: set DATABASE_URL=postgres://…"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    if item.get_closest_marker("redis") and not _redis_available():
        message = "needs Redis: set CELERY_BROKER_URL=redis://…"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def project() -> Callable[[], dict[str, int]]:
    """Run every projection up to the store head, as a worker would."""
    return projections.run_all


@pytest.fixture
def tenant(db: None) -> CreatedWorkspace:
    """A workspace with a product and an API key (``tenant.api_key.secret``)."""
    return workspace_create(name="Acme", base_currency="USD", product_url="https://app.acme.test/signup")


@pytest.fixture
def other_tenant(db: None) -> CreatedWorkspace:
    return workspace_create(name="Globex", base_currency="EUR", product_url="https://globex.test/")


@pytest.fixture
def api(tenant: CreatedWorkspace) -> APIClient:
    """An API client authenticated with the tenant's key."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.api_key.secret}")
    return client
