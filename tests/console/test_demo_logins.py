"""The demo's agents get dashboard logins, printed with the demo's other details."""

from __future__ import annotations

import pytest

from refairn.demo import DemoInfo, seed_partners

pytestmark = pytest.mark.django_db


def test_demo_agents_get_logins_that_open_their_dashboard(client, tenant, project) -> None:
    """Each demo agent has a username (its email) and password that log in to its own dashboard."""
    info = DemoInfo(tenant.workspace.id, tenant.product.id, tenant.api_key.secret, "admin", "pw", True)
    seed_partners(info)
    project()
    assert [username for username, _ in info.agent_logins] == ["ada@partners.example.com",
                                                               "grace@partners.example.com"]
    username, password = info.agent_logins[0]
    response = client.post("/agent/login/", {"username": username, "password": password})
    assert response["Location"] == "/agent/"
    page = client.get("/agent/")
    assert page.context["agent"].email == "ada@partners.example.com"
    assert [card["code"] for card in page.context["cards"]] == ["ADA"]
