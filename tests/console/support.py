"""A small world built from events, for the console and dashboard tests.

Everything goes through the same services and event types the receivers use (enrollment
approval, ``/r/<code>`` clicks, ``customer.created``, ``payment.succeeded``, a refund), then the
projections run: the pages under test read real projection rows, never rows typed in by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from agents.models import Agent, Enrollment, Program
from attribution.services import click_record
from ingestion import projections
from ingestion.ids import new_id
from ingestion.models import Product, Workspace
from ingestion.store import NewEvent, event_append
from tests.factories import AgentFactory, ProgramFactory, approved_enrollment

PASSWORD = "correct horse battery staple"


@dataclass
class AgentWorld:
    """One agent of one workspace with a program, a click, two leads, payments and a refund."""

    workspace: Workspace
    program: Program
    agent: Agent
    enrollment: Enrollment
    username: str
    customer_emails: list[str]


def emit(workspace_id: str, type_: str, data: dict[str, Any], *, at: datetime, source: str = "api") -> None:
    event_append(NewEvent(workspace_id=workspace_id, source=source, source_event_id=new_id("k"), type=type_,
                          occurred_at=at, data=data))


def agent_user(agent: Agent, username: str) -> str:
    """Give the agent a dashboard login (``Agent.user``) and return its username."""
    user = get_user_model().objects.create_user(username, agent.email, PASSWORD)
    agent.user = user
    agent.save(update_fields=["user"])
    return username


def build_agent_world(workspace: Workspace, product: Product, *, code: str, prefix: str,
                      now: datetime | None = None) -> AgentWorld:
    """Build the world and run the projections.

    ``prefix`` keeps emails and payment refs apart between two worlds in one test. The agent has:
    one click; ``<prefix>-old@…`` signed up with the code 40 days ago and paid 99.00 (past the
    14-day hold: payable), renewed 10 days ago (recurring, in hold) and got half of the renewal
    refunded; ``<prefix>-lead@…`` signed up and never paid (a lead).
    """
    now = now or timezone.now()
    program = ProgramFactory(workspace=workspace, product=product, hold_days=14, name=f"{prefix} program")
    agent = AgentFactory(workspace=workspace, email=f"{prefix}-agent@partners.example.com", name=f"{prefix} Agent")
    enrollment = approved_enrollment(program=program, agent=agent, code=code)
    click_record(enrollment=enrollment, ip="203.0.113.7", user_agent="pytest", occurred_at=now - timedelta(days=41))
    ws = workspace.id
    old, lead = f"{prefix}-old@customer.example.com", f"{prefix}-lead@customer.example.com"
    for email, days in ((old, 40), (lead, 5)):
        emit(ws, "customer.created", {"email": email, "name": email.split("@")[0], "product_id": product.id,
                                      "customer_ref": email.split("@")[0], "referral_code": code},
             at=now - timedelta(days=days))
    emit(ws, "payment.succeeded", {"payment_ref": f"pi_{prefix}_1", "customer_ref": old.split("@")[0],
                                   "email": old, "amount": 9900, "currency": "USD"}, at=now - timedelta(days=39))
    emit(ws, "payment.succeeded", {"payment_ref": f"pi_{prefix}_2", "customer_ref": old.split("@")[0],
                                   "email": old, "amount": 9900, "currency": "USD"}, at=now - timedelta(days=9))
    emit(ws, "payment.refunded", {"payment_ref": f"pi_{prefix}_2", "refund_ref": f"re_{prefix}_2", "amount": 4950,
                                  "currency": "USD"}, at=now - timedelta(days=8))
    emit(ws, "payment.succeeded", {"payment_ref": f"pi_{prefix}_stray", "email": f"{prefix}-stray@example.com",
                                   "amount": 2500, "currency": "USD"}, at=now - timedelta(days=2))
    projections.run_all()
    username = agent_user(agent, f"{prefix}-agent")
    return AgentWorld(workspace, program, agent, enrollment, username, [old, lead])
