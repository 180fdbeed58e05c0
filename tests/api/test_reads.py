"""Reads: events (cursor by position, type and source filters), customers (email, agent), pagination."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from ingestion.store import NewEvent, event_append, event_append_many
from ingestion.workspaces import CreatedWorkspace
from refairn.pagination import MAX_LIMIT
from tests.api.conftest import Post
from tests.factories import AgentFactory, ProgramFactory, approved_enrollment

pytestmark = pytest.mark.django_db


def _walk(api: APIClient, path: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Follow nextCursor to the end; return every item and the number of pages."""
    items: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = api.get(path, query).json()
        pages += 1
        items.extend(body["data"])
        if not body["hasMore"]:
            assert body["nextCursor"] is None
            return items, pages
        cursor = body["nextCursor"]


def _signups(event: Post, count: int, start: int = 0) -> list[str]:
    return [event("customer-created", email=f"c{n}@example.com").json()["eventId"]
            for n in range(start, start + count)]


# --- events -------------------------------------------------------------------------------------

@pytest.mark.smoke
def test_events_page_through_in_store_order(api: APIClient, event: Post) -> None:
    """Following nextCursor returns every event once, in position order."""
    appended = _signups(event, 7)
    items, pages = _walk(api, "/api/events", limit=3)
    assert [e["eventId"] for e in items] == appended
    assert pages == 3
    assert [e["position"] for e in items] == sorted(e["position"] for e in items)


def test_events_appended_between_pages_are_not_skipped(api: APIClient, event: Post) -> None:
    """A cursor continues after the last row seen, so rows appended meanwhile come on later pages."""
    first_batch = _signups(event, 3)
    page = api.get("/api/events", {"limit": 2}).json()
    later = _signups(event, 2, start=3)
    rest, _ = _walk(api, "/api/events", limit=2, cursor=page["nextCursor"])
    assert [e["eventId"] for e in page["data"] + rest] == first_batch + later


def test_events_filter_by_type_and_source(api: APIClient, event: Post, tenant: CreatedWorkspace) -> None:
    """?type= takes the canonical type or the kind; ?source= filters by origin."""
    event("customer-created", email="a@b.co")
    event("payment-succeeded", paymentId="p1", email="a@b.co", amount="1.00", currency="USD")
    approved_enrollment(program=ProgramFactory(product=tenant.product, workspace=tenant.workspace))
    assert [e["type"] for e in api.get("/api/events", {"type": "payment.succeeded"}).json()["data"]] == [
        "payment.succeeded"]
    assert [e["type"] for e in api.get("/api/events", {"type": "payment-succeeded"}).json()["data"]] == [
        "payment.succeeded"]
    assert [e["type"] for e in api.get("/api/events", {"source": "operator"}).json()["data"]] == [
        "enrollment.approved"]
    assert len(api.get("/api/events", {"source": "api"}).json()["data"]) == 2


def test_unknown_source_filter_is_400(api: APIClient) -> None:
    """A source that does not exist is refused rather than answered with an empty page."""
    response = api.get("/api/events", {"source": "paypal"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "source"


def test_event_detail_shows_data_and_raw(api: APIClient, event: Post) -> None:
    """GET /api/events/<eventId> shows the canonical data and the body as received."""
    event_id = event("customer-created", email="A@b.co").json()["eventId"]
    body = api.get(f"/api/events/{event_id}").json()
    assert body["data"]["email"] == "a@b.co"
    assert body["raw"]["body"]["email"] == "A@b.co"
    assert api.get("/api/events/evt_nope").status_code == 404


# --- pagination limits --------------------------------------------------------------------------

@pytest.mark.parametrize("limit", ["0", str(MAX_LIMIT + 1), "-1", "ten", "1.5"])
def test_page_size_outside_1_to_200_is_400(api: APIClient, limit: str) -> None:
    """limit is capped at 200; anything outside 1..200 is a 400 on limit."""
    response = api.get("/api/events", {"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "limit"


def test_page_size_200_is_allowed_and_default_is_50(api: APIClient, tenant: CreatedWorkspace) -> None:
    """The default page is 50 rows and the largest 200."""
    event_append_many([NewEvent(workspace_id=tenant.workspace.id, source="api", source_event_id=f"bulk:{n}",
                                type="customer.created", occurred_at=timezone.now(), data={"email": f"{n}@b.co"})
                       for n in range(210)])
    assert len(api.get("/api/events").json()["data"]) == 50
    assert len(api.get("/api/events", {"limit": 200}).json()["data"]) == 200


@pytest.mark.parametrize("cursor", ["garbage", "WyJ4Il0", "W10", "eyJhIjoxfQ"])
def test_a_forged_cursor_is_400(api: APIClient, cursor: str) -> None:
    """A cursor this API did not issue is refused on cursor."""
    response = api.get("/api/events", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "cursor"


def test_agents_page_newest_first(api: APIClient, tenant: CreatedWorkspace) -> None:
    """Management lists page too, newest first, each agent once."""
    agents = [AgentFactory(workspace=tenant.workspace) for _ in range(5)]
    items, pages = _walk(api, "/api/agents", limit=2)
    assert sorted(a["agentId"] for a in items) == sorted(a.id for a in agents)
    assert len(items) == 5
    assert pages == 3
    created = [a["createdAt"] for a in items]
    assert created == sorted(created, reverse=True)


# --- customers ----------------------------------------------------------------------------------

@pytest.fixture
def attributed(tenant: CreatedWorkspace, event: Post, project: Callable[[], Any]) -> dict[str, str]:
    """Two customers: one referred by an agent's code, one not; projections run."""
    program = ProgramFactory(product=tenant.product, workspace=tenant.workspace)
    enrollment = approved_enrollment(program=program, code="JANE1")
    assert event("customer-created", customerId="u1", email="Ref@Example.com", referralCode="jane1").status_code == 200
    assert event("customer-created", customerId="u2", email="plain@example.com").status_code == 200
    project()
    return {"agent_id": enrollment.agent_id, "enrollment_id": enrollment.id}


@pytest.mark.smoke
def test_customers_filter_by_email(api: APIClient, attributed: dict[str, str]) -> None:
    """?email= matches trimmed and lower-cased, and shows the attribution."""
    data = api.get("/api/customers", {"email": " REF@example.com"}).json()["data"]
    assert len(data) == 1
    customer = data[0]
    assert customer["customerId"].startswith("cus_")
    assert (customer["email"], customer["customerRef"], customer["status"]) == ("ref@example.com", "u1", "lead")
    assert (customer["agentId"], customer["referralCode"]) == (attributed["agent_id"], "JANE1")
    assert customer["attribution"]["eventId"].startswith("evt_")


def test_customers_filter_by_agent(api: APIClient, attributed: dict[str, str]) -> None:
    """?agentId= returns only that agent's customers."""
    data = api.get("/api/customers", {"agentId": attributed["agent_id"]}).json()["data"]
    assert [c["email"] for c in data] == ["ref@example.com"]
    assert len(api.get("/api/customers").json()["data"]) == 2


def test_unattributed_customer_says_why(api: APIClient, attributed: dict[str, str]) -> None:
    """A customer without an agent has no attribution and an unattributed reason."""
    customer = api.get("/api/customers", {"email": "plain@example.com"}).json()["data"][0]
    assert customer["agentId"] is None
    assert customer["attribution"] is None
    assert customer["unattributedReason"] == "no_referral"


def test_a_referred_customer_names_the_events_behind_its_attribution(
        api: APIClient, tenant: CreatedWorkspace, event: Post, project: Callable[[], Any]) -> None:
    """The answer to "why is this customer that agent's?" names the real events: the credited click,
    the signup that decided it, the first payment, the support assignment and the cancellation."""
    program = ProgramFactory(product=tenant.product, workspace=tenant.workspace)
    enrollment = approved_enrollment(program=program, code="WHY1")
    now = timezone.now()
    clicked = event_append(NewEvent(
        workspace_id=tenant.workspace.id, source="link", source_event_id="clk_why000000001", type="click.recorded",
        occurred_at=now - timedelta(days=1), data={
            "click_id": "clk_why000000001", "referral_code": "WHY1", "landing_url": "https://app.acme.test/",
            "ip_hash": "0" * 64, "user_agent": "test", "first_click_id": "clk_why000000001"}))
    signup = event("customer-created", customerId="why", email="why@example.com", clickId="clk_why000000001")
    paid = event("payment-succeeded", paymentId="pi_why", customerId="why", amount="10.00", currency="USD")
    supported = event("support-assigned", customerId="why", agentId=enrollment.agent_id)
    cancelled = event("subscription-cancelled", customerId="why")
    for response in (signup, paid, supported, cancelled):
        assert response.status_code == 200, response.content
    project()
    customer = api.get("/api/customers", {"email": "why@example.com"}).json()["data"][0]
    signup_id = signup.json()["eventId"]
    assert customer["agentId"] == enrollment.agent_id
    assert (customer["signupEventId"], customer["createdFromEventId"]) == (signup_id, signup_id)
    assert customer["attribution"]["eventId"] == signup_id
    assert (customer["attribution"]["clickId"], customer["attribution"]["clickEventId"]) == (
        "clk_why000000001", clicked.event_id)
    assert customer["firstPaymentEventId"] == paid.json()["eventId"]
    assert customer["supportEventId"] == supported.json()["eventId"]
    assert customer["cancelledEventId"] == cancelled.json()["eventId"]


def test_customer_detail(api: APIClient, attributed: dict[str, str]) -> None:
    """GET /api/customers/<id> returns the same object as the list."""
    listed = api.get("/api/customers", {"email": "ref@example.com"}).json()["data"][0]
    assert api.get(f"/api/customers/{listed['customerId']}").json() == listed
    assert api.get("/api/customers/cus_nope").status_code == 404
