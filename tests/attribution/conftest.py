"""Fixtures for attribution: a program with two approved agents, and an event helper."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction

from agents.models import Enrollment, Program
from ingestion.ids import new_id
from ingestion.models import ProjectionCheckpoint
from ingestion.projections import get_projector, run_projection
from ingestion.store import Appended, NewEvent, event_append
from ingestion.workspaces import CreatedWorkspace
from tests.factories import AgentFactory, ProgramFactory, approved_enrollment

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def at(days: float = 0) -> datetime:
    """A fixed time line: ``at(3)`` is three days after T0."""
    return T0 + timedelta(days=days)


def emit(workspace_id: str, type_: str, data: dict[str, Any], *, when: datetime | None = None,
         source: str = "api", key: str | None = None, actor: str = "") -> Appended:
    """Append one canonical event as a receiver would."""
    return event_append(NewEvent(
        workspace_id=workspace_id, source=source, source_event_id=key or new_id("k"), type=type_,
        occurred_at=when or T0, data=data, actor=actor,
    ))


def signup(workspace_id: str, email: str, *, when: datetime | None = None, **extra: Any) -> Appended:
    return emit(workspace_id, "customer.created", {"email": email, "name": email.split("@")[0], **extra}, when=when)


def pay(workspace_id: str, payment_ref: str, *, amount: int = 9900, currency: str = "USD",
        when: datetime | None = None, source: str = "api", **extra: Any) -> Appended:
    return emit(workspace_id, "payment.succeeded",
                {"payment_ref": payment_ref, "amount": amount, "currency": currency, **extra},
                when=when, source=source)


def click(workspace_id: str, code: str, click_id: str, *, first_click_id: str | None = None,
          when: datetime | None = None) -> Appended:
    return emit(workspace_id, "click.recorded", {
        "click_id": click_id, "referral_code": code, "landing_url": "https://app.acme.test/signup",
        "ip_hash": "0" * 64, "user_agent": "test", "first_click_id": first_click_id or click_id,
    }, when=when, source="link", key=click_id)


def rebuild_attribution() -> int:
    """Clear the attribution tables and replay the store, as ``rebuild_projections attribution`` does.

    The runner's ``rebuild`` also clears the projections that depend on attribution (the ledger);
    these tests concern attribution alone, so they rebuild only it.
    """
    with transaction.atomic():
        get_projector("attribution").reset()
        ProjectionCheckpoint.objects.filter(name="attribution").update(position=0)
    return run_projection("attribution")


@pytest.fixture
def project() -> Callable[[], int]:
    """Run the attribution projection to the store head (alone: these tests concern it only)."""
    return lambda: run_projection("attribution")


@pytest.fixture
def program(tenant: CreatedWorkspace) -> Program:
    return ProgramFactory(workspace=tenant.workspace, product=tenant.product, attribution_window_days=30)


@pytest.fixture
def ann(program: Program) -> Enrollment:
    agent = AgentFactory(workspace=program.workspace, name="Ann Agent", email="ann@partners.test")
    return approved_enrollment(program=program, agent=agent, code="ANN")


@pytest.fixture
def bob(program: Program) -> Enrollment:
    agent = AgentFactory(workspace=program.workspace, name="Bob Agent", email="bob@partners.test")
    return approved_enrollment(program=program, agent=agent, code="BOB")
