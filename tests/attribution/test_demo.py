"""The demo's partner side: a program, two approved agents, clicks and leads, attributed."""

from __future__ import annotations

import pytest

from attribution.models import Click, Customer
from ingestion.models import Event
from refairn.demo import DemoInfo, seed_partners

pytestmark = pytest.mark.django_db


def test_the_demo_seeds_agents_clicks_and_leads_that_attribute(tenant, project):
    """seed_partners leaves leads of both agents, an unknown code and a refused self-referral."""
    info = DemoInfo(tenant.workspace.id, tenant.product.id, tenant.api_key.secret, "admin", "pw", True)
    seed_partners(info)
    project()
    assert Event.objects.filter(type="enrollment.approved").count() == 2
    assert Click.objects.count() == 6
    reasons = dict(Customer.objects.values_list("email", "unattributed_reason"))
    via = dict(Customer.objects.values_list("email", "attributed_via"))
    assert via["maria@customer.example.com"] == "click"
    assert via["sam+trial@customer.example.com"] == "code"
    assert reasons["jo@customer.example.com"] == "unknown_code"
    assert reasons["grace@partners.example.com"] == "self_referral"
    assert len({c.agent_id for c in Customer.objects.exclude(agent_id="")}) == 2
