"""factory_boy factories for real rows; services are used where a row implies an event."""

from __future__ import annotations

from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from agents.models import Agent, Enrollment, Program
from agents.services import enrollment_apply, enrollment_approve
from ingestion.models import Product, Workspace


class WorkspaceFactory(DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Business {n}")
    base_currency = "USD"


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    url = "https://app.example.com/signup"


class ProgramFactory(DjangoModelFactory):
    class Meta:
        model = Program

    workspace = factory.SelfAttribute("product.workspace")
    product = factory.SubFactory(ProductFactory)
    name = factory.Sequence(lambda n: f"Program {n}")
    referral_type = "percent"
    referral_value = Decimal("20")
    recurring_percent = Decimal("10")
    recurring_duration_months = 12
    support_percent = Decimal("5")


class AgentFactory(DjangoModelFactory):
    class Meta:
        model = Agent

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"agent{n}@partners.example.com")


def approved_enrollment(*, program: Program, agent: Agent | None = None, code: str | None = None,
                        actor: str = "test") -> Enrollment:
    """Enroll and approve through the services, so the enrollment.approved event is in the store."""
    agent = agent or AgentFactory(workspace=program.workspace)
    enrollment = enrollment_apply(agent=agent, program=program, actor=actor)
    if enrollment.status == Enrollment.Status.APPLIED:
        enrollment = enrollment_approve(enrollment=enrollment, referral_code=code, actor=actor)
    return enrollment
