"""Fixtures for the console and the agent dashboard: two workspaces, each with an agent world."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from ingestion.workspaces import CreatedWorkspace

from .support import AgentWorld, build_agent_world


@pytest.fixture
def world(tenant: CreatedWorkspace) -> AgentWorld:
    return build_agent_world(tenant.workspace, tenant.product, code="ACMEONE", prefix="acme")


@pytest.fixture
def other_world(other_tenant: CreatedWorkspace) -> AgentWorld:
    return build_agent_world(other_tenant.workspace, other_tenant.product, code="GLOBEX1", prefix="globex")


@pytest.fixture
def superuser(db: None):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw")


@pytest.fixture
def operator(tenant: CreatedWorkspace):
    """A staff user (not superuser) who operates the tenant's workspace only."""
    user = get_user_model().objects.create_user("op", "op@example.com", "pw", is_staff=True)
    tenant.workspace.operators.add(user)
    return user
