"""The ledger API: lists, filters, scoping, balances, payouts, void, explain and the schema."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import Agent
from commissions.models import LedgerEntry, Payout
from ingestion.models import Event
from ingestion.workspaces import CreatedWorkspace
from tests.factories import AgentFactory

from .support import decide, pay, refund, run_ledger, terms

pytestmark = pytest.mark.django_db

NOW = timezone.now()
PAST = NOW - timedelta(days=40)


@pytest.fixture
def agent(tenant):
    return AgentFactory(workspace=tenant.workspace)


@pytest.fixture
def ledger(tenant, agent):
    """Two payable USD referrals and one pending EUR one for ``agent``."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1", at=PAST), agent_id=agent.id, customer_id="cus_1")
    decide(pay(ws, "pi_2", 5000, at=PAST + timedelta(hours=1)), agent_id=agent.id, customer_id="cus_2")
    decide(pay(ws, "pi_3", 10000, "EUR", at=NOW - timedelta(days=1)), agent_id=agent.id, customer_id="cus_3")
    run_ledger()
    return {e.payment_ref: e for e in LedgerEntry.objects.all()}


def body(tenant, **fields):
    return {"businessId": tenant.workspace.id, **fields}


@pytest.mark.smoke
def test_list_returns_entries_with_the_contract_fields(api, ledger) -> None:
    """GET /api/commissions answers each entry with the documented fields and a derived status."""
    response = api.get("/api/commissions")
    assert response.status_code == 200
    data = response.json()
    assert data["hasMore"] is False
    by_ref = {row["paymentRef"]: row for row in data["data"]}
    row = by_ref["pi_1"]
    for field in ("commissionId", "agentId", "customerId", "kind", "amount", "amountMinor", "currency", "status",
                  "paymentRef", "createdFromEventId"):
        assert field in row
    assert (row["amount"], row["amountMinor"], row["currency"], row["status"], row["kind"]) == (
        "19.80", 1980, "USD", "payable", "referral")
    assert by_ref["pi_3"]["status"] == "pending"


def test_list_is_cursor_paginated(api, ledger) -> None:
    """limit and nextCursor page through every entry exactly once, newest first."""
    seen = []
    cursor = None
    while True:
        response = api.get("/api/commissions", {"limit": 1, **({"cursor": cursor} if cursor else {})})
        page = response.json()
        seen += [row["paymentRef"] for row in page["data"]]
        cursor = page["nextCursor"]
        if not page["hasMore"]:
            break
    assert seen == ["pi_3", "pi_2", "pi_1"]


def test_list_filters_by_status_currency_kind_and_agent(api, ledger, agent) -> None:
    """status, currency, kind and agentId filter the list."""
    def refs(**params):
        return sorted(row["paymentRef"] for row in api.get("/api/commissions", params).json()["data"])

    assert refs(status="payable") == ["pi_1", "pi_2"]
    assert refs(status="pending") == ["pi_3"]
    assert refs(currency="eur") == ["pi_3"]
    assert refs(kind="reversal") == []
    assert refs(agentId=agent.id) == ["pi_1", "pi_2", "pi_3"]
    assert refs(agentId="agt_nobody") == []


def test_list_refuses_an_unknown_status(api, ledger) -> None:
    """An unknown status filter is a 400 naming the field."""
    response = api.get("/api/commissions", {"status": "approved"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "status"


def test_as_of_shows_the_past(api, ledger) -> None:
    """asOf before a payment hides its entry; during the hold shows it pending."""
    at = (PAST + timedelta(minutes=30)).isoformat()
    rows = api.get("/api/commissions", {"asOf": at}).json()["data"]
    assert [(r["paymentRef"], r["status"]) for r in rows] == [("pi_1", "pending")]


def test_another_workspace_sees_nothing_and_gets_404(ledger, other_tenant) -> None:
    """Another workspace's key lists nothing of ours and gets 404 for our ids."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_tenant.api_key.secret}")
    assert client.get("/api/commissions").json()["data"] == []
    entry_id = ledger["pi_1"].id
    assert client.get(f"/api/commissions/{entry_id}").status_code == 404
    assert client.get(f"/api/commissions/{entry_id}/explain").status_code == 404
    assert client.get(f"/api/agents/{ledger['pi_1'].agent_id}/balance").status_code == 404


def test_unauthenticated_read_is_401(ledger) -> None:
    """No key, no ledger."""
    assert APIClient().get("/api/commissions").status_code == 401


def test_detail_returns_one_entry(api, ledger) -> None:
    """GET /api/commissions/<id> answers the entry."""
    entry = ledger["pi_2"]
    response = api.get(f"/api/commissions/{entry.id}")
    assert response.status_code == 200
    assert response.json()["commissionId"] == entry.id
    assert api.get("/api/commissions/com_nope").status_code == 404


@pytest.mark.smoke
def test_balance_per_currency(api, ledger, agent) -> None:
    """The balance answers, per currency, buckets that add up to the total."""
    response = api.get(f"/api/agents/{agent.id}/balance")
    assert response.status_code == 200
    balances = {b["currency"]: b for b in response.json()["balances"]}
    assert balances["USD"]["payableMinor"] == 2980
    assert balances["USD"]["totalMinor"] == 2980
    assert balances["EUR"]["pendingMinor"] == 2000
    assert balances["EUR"]["pending"] == "20.00"


def test_balance_as_of_a_time(api, ledger, agent) -> None:
    """asOf gives the balance as the events up to that moment determine it."""
    at = (PAST + timedelta(days=15)).isoformat()
    balances = api.get(f"/api/agents/{agent.id}/balance", {"asOf": at}).json()["balances"]
    assert [(b["currency"], b["payableMinor"]) for b in balances] == [("USD", 2980)]
    assert api.get(f"/api/agents/{agent.id}/balance", {"asOf": "yesterday"}).status_code == 400


def test_balance_of_unknown_agent_is_404(api, ledger) -> None:
    """An agent id that is not the workspace's answers 404."""
    assert api.get("/api/agents/agt_missing/balance").status_code == 404


@pytest.mark.smoke
def test_payout_create_and_confirm(api, tenant, ledger, agent) -> None:
    """POST /api/payouts gathers the payable USD entries; confirming marks them paid."""
    response = api.post("/api/payouts", body(tenant, agentId=agent.id, currency="USD"), format="json")
    assert response.status_code == 201, response.json()
    payout = response.json()
    assert payout["payoutId"].startswith("pay_")
    assert payout["amountMinor"] == 2980
    assert sorted(e["paymentRef"] for e in payout["entries"]) == ["pi_1", "pi_2"]
    assert Event.objects.filter(type="payout.created").count() == 1

    confirm = api.post(f"/api/payouts/{payout['payoutId']}/confirm", body(tenant, reference="wire-1"), format="json")
    assert confirm.status_code == 200, confirm.json()
    assert confirm.json()["status"] == "confirmed"
    assert {e["status"] for e in confirm.json()["entries"]} == {"paid"}
    paid = api.get("/api/commissions", {"status": "paid"}).json()["data"]
    assert sorted(r["paymentRef"] for r in paid) == ["pi_1", "pi_2"]


def test_payout_events_are_operator_events_with_the_key_as_actor(api, tenant, ledger, agent) -> None:
    """payout.created and payout.confirmed are operator events naming the API key that asked."""
    payout = api.post("/api/payouts", body(tenant, agentId=agent.id, currency="USD"), format="json").json()
    api.post(f"/api/payouts/{payout['payoutId']}/confirm", body(tenant, reference="wire-9"), format="json")
    actor = f"api-key:{tenant.api_key.key.id}"
    created = Event.objects.get(type="payout.created")
    confirmed = Event.objects.get(type="payout.confirmed")
    assert (created.source, created.actor, created.data["payout_id"]) == ("operator", actor, payout["payoutId"])
    assert sorted(created.data["entry_ids"]) == sorted([ledger["pi_1"].id, ledger["pi_2"].id])
    assert (confirmed.source, confirmed.actor, confirmed.data["reference"]) == ("operator", actor, "wire-9")


def test_confirming_again_with_the_same_reference_is_idempotent_and_another_is_409(api, tenant, ledger,
                                                                                     agent) -> None:
    """A repeated confirmation answers the payout unchanged; a different reference is a conflict."""
    payout = api.post("/api/payouts", body(tenant, agentId=agent.id, currency="USD"), format="json").json()
    url = f"/api/payouts/{payout['payoutId']}/confirm"
    assert api.post(url, body(tenant, reference="wire-1"), format="json").status_code == 200
    again = api.post(url, body(tenant, reference="wire-1"), format="json")
    assert again.status_code == 200
    assert again.json()["reference"] == "wire-1"
    other = api.post(url, body(tenant, reference="wire-2"), format="json")
    assert other.status_code == 409
    assert Event.objects.filter(type="payout.confirmed").count() == 1
    assert api.post(url, body(tenant), format="json").status_code == 400


def test_second_payout_finds_nothing_payable(api, tenant, ledger, agent) -> None:
    """Entries in a payout are not gathered again: the next payout is a 409."""
    assert api.post("/api/payouts", body(tenant, agentId=agent.id, currency="USD"), format="json").status_code == 201
    again = api.post("/api/payouts", body(tenant, agentId=agent.id, currency="USD"), format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "nothing_payable"
    assert Payout.objects.count() == 1


def test_payout_cutoff_limits_the_entries(api, tenant, ledger, agent) -> None:
    """Only entries whose hold ended by the cut-off are gathered."""
    cutoff = (PAST + timedelta(days=14, minutes=30)).isoformat()
    response = api.post("/api/payouts", body(tenant, agentId=agent.id, currency="USD", cutoff=cutoff), format="json")
    assert response.status_code == 201
    assert [e["paymentRef"] for e in response.json()["entries"]] == ["pi_1"]


def test_payout_nets_a_clawback(api, tenant, ledger, agent) -> None:
    """A refund of a paid commission is netted by the next payout."""
    first = api.post("/api/payouts", body(tenant, agentId=agent.id, currency="USD"), format="json").json()
    api.post(f"/api/payouts/{first['payoutId']}/confirm", body(tenant, reference="wire-1"), format="json")
    ws = tenant.workspace.id
    refund(ws, "pi_1", 9900, at=NOW - timedelta(days=3))
    decide(pay(ws, "pi_4", 20000, at=NOW - timedelta(days=20)), agent_id=agent.id, customer_id="cus_4")
    run_ledger()
    second = api.post("/api/payouts", body(tenant, agentId=agent.id, currency="USD"), format="json")
    assert second.status_code == 201, second.json()
    assert second.json()["amountMinor"] == 4000 - 1980
    assert sorted(e["kind"] for e in second.json()["entries"]) == ["referral", "reversal"]


def test_payout_in_a_currency_without_payable_entries_is_409(api, tenant, ledger, agent) -> None:
    """Pending entries are not payable."""
    response = api.post("/api/payouts", body(tenant, agentId=agent.id, currency="EUR"), format="json")
    assert response.status_code == 409


def test_payout_body_errors(api, tenant, other_tenant, ledger, agent) -> None:
    """Another businessId is 403, a bad currency 400, an unknown agent 404."""
    assert api.post("/api/payouts", {"businessId": other_tenant.workspace.id, "agentId": agent.id,
                                     "currency": "USD"}, format="json").status_code == 403
    bad = api.post("/api/payouts", body(tenant, agentId=agent.id, currency="XXX1"), format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "currency"
    assert api.post("/api/payouts", body(tenant, agentId="agt_x", currency="USD"), format="json").status_code == 404


def test_confirm_twice_same_reference_is_idempotent_other_is_409(api, tenant, ledger, agent) -> None:
    """Re-confirming with the same reference answers 200; with another, 409."""
    payout = api.post("/api/payouts", body(tenant, agentId=agent.id, currency="USD"), format="json").json()
    url = f"/api/payouts/{payout['payoutId']}/confirm"
    assert api.post(url, body(tenant, reference="wire-1"), format="json").status_code == 200
    assert api.post(url, body(tenant, reference="wire-1"), format="json").status_code == 200
    assert api.post(url, body(tenant, reference="wire-2"), format="json").status_code == 409
    assert Event.objects.filter(type="payout.confirmed").count() == 1
    assert api.post(url, body(tenant), format="json").status_code == 400


def test_payout_list_and_detail_are_scoped(api, tenant, other_tenant, ledger, agent) -> None:
    """GET /api/payouts lists the workspace's payouts; another workspace gets 404 on the id."""
    payout = api.post("/api/payouts", body(tenant, agentId=agent.id, currency="USD"), format="json").json()
    listed = api.get("/api/payouts").json()
    assert [p["payoutId"] for p in listed["data"]] == [payout["payoutId"]]
    detail = api.get(f"/api/payouts/{payout['payoutId']}").json()
    assert len(detail["entries"]) == 2
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_tenant.api_key.secret}")
    assert client.get(f"/api/payouts/{payout['payoutId']}").status_code == 404
    assert client.get("/api/payouts").json()["data"] == []
    assert client.post(f"/api/payouts/{payout['payoutId']}/confirm",
                       {"businessId": other_tenant.workspace.id, "reference": "x"}, format="json").status_code == 404


def test_void_appends_a_reversal(api, tenant, ledger) -> None:
    """POST /api/commissions/<id>/void reverses the commission; voiding again is 409."""
    entry = ledger["pi_1"]
    response = api.post(f"/api/commissions/{entry.id}/void", body(tenant, reason="duplicate account"), format="json")
    assert response.status_code == 202, response.json()
    voided = Event.objects.get(type="commission.voided")
    assert (voided.source, voided.actor, voided.data) == (
        "operator", f"api-key:{tenant.api_key.key.id}", {"entry_id": entry.id, "reason": "duplicate account"})
    run_ledger()
    assert api.get(f"/api/commissions/{entry.id}").json()["status"] == "reversed"
    again = api.post(f"/api/commissions/{entry.id}/void", body(tenant, reason="again"), format="json")
    assert again.status_code == 409
    no_reason = api.post(f"/api/commissions/{entry.id}/void", body(tenant), format="json")
    assert no_reason.status_code == 400


@pytest.mark.smoke
def test_payout_confirm_refuses_an_unknown_field(api: APIClient, tenant: CreatedWorkspace,
                                                 ledger: dict[str, LedgerEntry], agent: Agent) -> None:
    """A misspelt field ("referance") is a 400 naming it, not silently ignored, and nothing is confirmed."""
    payout = api.post("/api/payouts", body(tenant, agentId=agent.id, currency="USD"), format="json").json()
    response = api.post(f"/api/payouts/{payout['payoutId']}/confirm",
                        body(tenant, reference="wire-1", referance="wire-1"), format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["field"] == "referance"
    assert not Event.objects.filter(type="payout.confirmed").exists()


def test_commission_void_refuses_an_unknown_field(api: APIClient, tenant: CreatedWorkspace,
                                                  ledger: dict[str, LedgerEntry]) -> None:
    """An unexpected field on a void (e.g. "amount", as if a partial void existed) is a 400 naming it."""
    entry = ledger["pi_1"]
    response = api.post(f"/api/commissions/{entry.id}/void", body(tenant, reason="duplicate", amount="1.00"),
                        format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["field"] == "amount"
    assert not Event.objects.filter(type="commission.voided").exists()


def test_explain_returns_the_trail(api, tenant, ledger) -> None:
    """Explain gives the payment event, the decision, the formula and later events (a refund)."""
    ws = tenant.workspace.id
    refund(ws, "pi_2", 2500, at=NOW - timedelta(days=2))
    run_ledger()
    entry = ledger["pi_2"]
    data = api.get(f"/api/commissions/{entry.id}/explain").json()
    assert data["commission"]["commissionId"] == entry.id
    assert data["payment"]["type"] == "payment.succeeded"
    assert data["payment"]["data"]["payment_ref"] == "pi_2"
    assert data["attribution"]["decidedEventId"] == entry.decided_event_id
    assert data["formula"]["expression"] == "round_half_up(5000 × 20 / 100) = 1000"
    assert [h["type"] for h in data["history"]] == ["payment.refunded"]
    assert "reversed 500 USD" in data["history"][0]["effect"]


def test_explain_of_a_reversal_names_its_cause(api, tenant, ledger) -> None:
    """Explaining a reversal shows the commission it reverses and the refund behind it."""
    refund(tenant.workspace.id, "pi_1", 9900, at=NOW - timedelta(days=2))
    run_ledger()
    reversal = LedgerEntry.objects.get(kind="reversal")
    data = api.get(f"/api/commissions/{reversal.id}/explain").json()
    assert data["reversal"]["reversesCommissionId"] == ledger["pi_1"].id
    assert data["reversal"]["causeEvent"]["type"] == "payment.refunded"
    assert data["reversal"]["formula"]["result"] == -1980


def test_schema_documents_the_ledger_endpoints(api) -> None:
    """/api/schema/ documents every ledger path and the entry fields."""
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    for path in ("/api/commissions", "/api/commissions/{commission_id}", "/api/commissions/{commission_id}/explain",
                 "/api/agents/{agent_id}/balance", "/api/payouts", "/api/payouts/{payout_id}",
                 "/api/payouts/{payout_id}/confirm"):
        assert path in schema["paths"], path
    props = schema["components"]["schemas"]["Commission"]["properties"]
    for field in ("commissionId", "agentId", "customerId", "kind", "amount", "amountMinor", "currency", "status",
                  "paymentRef", "createdFromEventId"):
        assert field in props


def test_fixed_terms_threshold_is_reported(api, tenant, agent) -> None:
    """The balance reports the payout threshold of the agent's terms."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_9", at=PAST), agent_id=agent.id, terms_=terms(threshold={"USD": 5000}))
    run_ledger()
    [usd] = api.get(f"/api/agents/{agent.id}/balance").json()["balances"]
    assert (usd["earnedMinor"], usd["payableMinor"], usd["payoutThresholdMinor"]) == (1980, 0, 5000)
