"""Fixtures for the webhook tests: a workspace connected to every provider with its test secret."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from ingestion.workspaces import CreatedWorkspace, provider_secret_set

from .signing import SECRETS


@pytest.fixture
def connected(tenant: CreatedWorkspace) -> CreatedWorkspace:
    """The tenant with one signing secret per provider."""
    for provider, secret in SECRETS.items():
        provider_secret_set(workspace=tenant.workspace, provider=provider, secret=secret, label="test")
    return tenant


@pytest.fixture
def biz(connected: CreatedWorkspace) -> str:
    return connected.workspace.id


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def admin_client(db: None) -> Client:
    """A superuser's console session."""
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    console = Client()
    console.force_login(user)
    return console
