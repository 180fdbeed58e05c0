"""The agent dashboard at /agent/: an agent's own programs, ledger, balances, payouts, explain trails."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from commissions.dashboard import mask_email
from commissions.models import LedgerEntry
from commissions.services import payout_confirm, payout_create
from ingestion import projections
from tests.factories import AgentFactory, approved_enrollment

from .support import PASSWORD, agent_user, emit

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client, world):
    client.force_login(world.agent.user)
    return client


def referral(world) -> LedgerEntry:
    return LedgerEntry.objects.get(workspace=world.workspace, agent_id=world.agent.id, kind="referral")


@pytest.fixture
def paid(world):
    """The agent's payable referral paid out: a payout created and confirmed through the services."""
    created = payout_create(workspace=world.workspace, agent_id=world.agent.id, currency="USD", actor="user:root")
    payout_confirm(workspace=world.workspace, payout_id=created.payout_id, reference="WIRE-42", actor="user:root")
    projections.run_all()
    return created


def test_mask_email_keeps_first_letters_and_top_level_domain() -> None:
    """An email is shown as its first letter, its domain's first letter and its top-level domain."""
    assert mask_email("maria@customer.example.com") == "m***@c***.com"
    assert mask_email("") == "—"


def test_anonymous_visitor_is_sent_to_the_agent_login(client, db) -> None:
    """/agent/ without a login redirects to /agent/login/ with next."""
    response = client.get("/agent/")
    assert response.status_code == 302
    assert response["Location"] == "/agent/login/?next=/agent/"


@pytest.mark.smoke
def test_agent_logs_in_with_password_and_lands_on_the_dashboard(client, world) -> None:
    """The login form takes the agent's username and password and redirects to /agent/."""
    assert client.get("/agent/login/").status_code == 200
    response = client.post("/agent/login/", {"username": world.username, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/agent/"
    assert client.get("/agent/").context["agent"] == world.agent


def test_wrong_password_is_refused(client, world) -> None:
    """A wrong password re-shows the form with an error and logs nobody in."""
    response = client.post("/agent/login/", {"username": world.username, "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()
    assert client.get("/agent/").status_code == 302


def test_logout_ends_the_session(agent_client) -> None:
    """Logging out (POST) redirects to the login page; /agent/ then asks for a login again."""
    response = agent_client.post("/agent/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/agent/login/"
    assert agent_client.get("/agent/").status_code == 302


def test_a_login_without_an_agent_gets_403(client, db) -> None:
    """An operator's login is not a partner account: 403, no dashboard."""
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    response = client.get("/agent/")
    assert response.status_code == 403
    assert "Not a partner account" in response.content.decode()


def test_overview_shows_link_code_and_counts_per_program(agent_client, world) -> None:
    """Each program shows the referral link and code with copy buttons, and clicks/leads/customers."""
    body = agent_client.get("/agent/").content.decode()
    assert 'value="http://testserver/r/ACMEONE"' in body
    assert 'value="ACMEONE"' in body
    assert body.count('class="copy"') == 2
    assert '<b data-count="clicks">1</b>' in body
    assert '<b data-count="leads">1</b>' in body
    assert '<b data-count="customers">1</b>' in body


def test_overview_shows_balances_ledger_statuses_and_chart_data(agent_client, world) -> None:
    """Balances per currency, ledger lines with statuses, and the monthly earnings series."""
    response = agent_client.get("/agent/")
    body = response.content.decode()
    assert '<div class="value" data-bucket="payable">19.80</div>' in body
    assert '<div class="value" data-bucket="pending">4.95</div>' in body
    assert '<span class="pill payable">payable</span>' in body
    assert '<span class="pill pending">pending</span>' in body
    chart = response.context["chart"]
    assert len(chart["labels"]) == 12
    assert sorted(chart["series"]) == ["USD"]
    assert sum(int(v.replace(".", "")) for v in chart["series"]["USD"]) == 1980 + 990 - 495
    assert 'id="rf-monthly-data"' in body
    assert "/static/vendor/chartjs/chart.umd.min.js" in body


def test_customer_emails_are_masked_everywhere(agent_client, world) -> None:
    """No page shows a referred customer's full email."""
    pages = ["/agent/", f"/agent/programs/{world.enrollment.id}/", "/agent/commissions/",
             f"/agent/commissions/{referral(world).id}/"]
    for url in pages:
        body = agent_client.get(url).content.decode()
        for email in world.customer_emails:
            assert email not in body, url
    assert "a***@c***.com" in agent_client.get(f"/agent/programs/{world.enrollment.id}/").content.decode()


def test_ledger_page_filters_by_status(agent_client, world) -> None:
    """?status=pending lists only the pending lines (the renewal and its refund's reversal)."""
    response = agent_client.get("/agent/commissions/?status=pending")
    assert [row["status"] for row in response.context["ledger"]] == ["pending", "pending"]
    assert {row["kind"] for row in response.context["ledger"]} == {"recurring", "reversal"}


def test_commission_page_shows_the_explain_trail(agent_client, world) -> None:
    """The referral's page shows the formula, the code it came through and the terms event."""
    entry = referral(world)
    response = agent_client.get(f"/agent/commissions/{entry.id}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "round_half_up(9900 × 20 / 100) = 1980" in body
    assert "code <code>ACMEONE</code>" in body
    assert "as approved on" in body
    assert response.context["terms_event"]["type"] == "enrollment.approved"


def test_reversal_page_explains_its_refund(agent_client, world) -> None:
    """A reversal's page names the commission it reverses and the refund event behind it."""
    reversal = LedgerEntry.objects.get(workspace=world.workspace, kind="reversal")
    body = agent_client.get(f"/agent/commissions/{reversal.id}/").content.decode()
    assert f'href="/agent/commissions/{reversal.base_id}/"' in body
    assert "payment.refunded" in body
    assert "round_half_up(990 × 4950 / 9900) − 0 = 495" in body


def test_payouts_are_listed_and_open_with_their_lines(agent_client, world, paid) -> None:
    """A confirmed payout appears with its reference; its page lists the paid referral."""
    body = agent_client.get("/agent/").content.decode()
    assert f'data-payout="{paid.payout_id}"' in body
    assert "WIRE-42" in body
    response = agent_client.get(f"/agent/payouts/{paid.payout_id}/")
    assert [(row["id"], row["status"]) for row in response.context["ledger"]] == [(referral(world).id, "paid")]


def test_the_earnings_chart_data_is_valid_json_in_the_page(agent_client, world) -> None:
    """The chart's data is embedded with json_script, parseable as the chart script reads it."""
    body = agent_client.get("/agent/").content.decode()
    start = body.index('<script id="rf-monthly-data" type="application/json">') + len(
        '<script id="rf-monthly-data" type="application/json">')
    data = json.loads(body[start:body.index("</script>", start)])
    assert data["labels"][-1] == timezone.now().strftime("%Y-%m")


# --- isolation: id guessing ---------------------------------------------------------------------


@pytest.fixture
def colleague(world):
    """Another agent of the same workspace and program, with a paid, commissioned customer and a payout."""
    agent = AgentFactory(workspace=world.workspace, email="colleague@partners.example.com", name="Colleague")
    enrollment = approved_enrollment(program=world.program, agent=agent, code="COLLEAGUE")
    now = timezone.now()
    emit(world.workspace.id, "customer.created", {"email": "theirs@customer.example.com", "name": "Theirs",
                                                  "customer_ref": "theirs", "referral_code": "COLLEAGUE"},
         at=now - timedelta(days=30))
    emit(world.workspace.id, "payment.succeeded", {"payment_ref": "pi_theirs", "customer_ref": "theirs",
                                                   "amount": 5000, "currency": "USD"}, at=now - timedelta(days=29))
    projections.run_all()
    created = payout_create(workspace=world.workspace, agent_id=agent.id, currency="USD", actor="user:root")
    projections.run_all()
    agent_user(agent, "colleague")
    return agent, enrollment, LedgerEntry.objects.get(agent_id=agent.id), created.payout_id


def test_another_agents_objects_answer_404_by_id(agent_client, colleague) -> None:
    """A colleague's commission, enrollment and payout ids answer 404, like ids that do not exist."""
    _, enrollment, entry, payout_id = colleague
    for url in (f"/agent/commissions/{entry.id}/", f"/agent/programs/{enrollment.id}/",
                f"/agent/payouts/{payout_id}/", "/agent/commissions/com_doesnotexist/"):
        assert agent_client.get(url).status_code == 404, url


def test_another_workspaces_objects_answer_404_by_id(agent_client, other_world) -> None:
    """Ids from another workspace (commission, enrollment, payout) answer 404."""
    entry = referral(other_world)
    created = payout_create(workspace=other_world.workspace, agent_id=other_world.agent.id, currency="USD")
    projections.run_all()
    for url in (f"/agent/commissions/{entry.id}/", f"/agent/programs/{other_world.enrollment.id}/",
                f"/agent/payouts/{created.payout_id}/"):
        assert agent_client.get(url).status_code == 404, url


def test_pages_never_list_another_agents_data(agent_client, world, colleague, other_world) -> None:
    """The overview and the ledger show only the agent's own lines, programs and payouts."""
    other_agent, enrollment, entry, payout_id = colleague
    own = set(LedgerEntry.objects.filter(agent_id=world.agent.id).values_list("id", flat=True))
    response = agent_client.get("/agent/commissions/")
    assert {row["id"] for row in response.context["ledger"]} == own
    body = agent_client.get("/agent/").content.decode() + response.content.decode()
    for foreign in (entry.id, payout_id, enrollment.id, "COLLEAGUE", other_agent.id, referral(other_world).id,
                    "GLOBEX1"):
        assert foreign not in body


def test_a_shared_payments_trail_hides_the_other_agents_commission(client, world) -> None:
    """A support agent's explain of a refunded payment never names the referrer's commission, and vice versa."""
    supporter = AgentFactory(workspace=world.workspace, email="support@partners.example.com", name="Support")
    approved_enrollment(program=world.program, agent=supporter, code="SUPPORT1")
    now = timezone.now()
    ws = world.workspace.id
    email = world.customer_emails[0]
    emit(ws, "support.assigned", {"email": email, "agent_id": supporter.id}, at=now - timedelta(days=3))
    emit(ws, "payment.succeeded", {"payment_ref": "pi_shared", "email": email, "customer_ref": email.split("@")[0],
                                   "amount": 10000, "currency": "USD"}, at=now - timedelta(days=2))
    emit(ws, "payment.refunded", {"payment_ref": "pi_shared", "refund_ref": "re_shared", "amount": 10000,
                                  "currency": "USD"}, at=now - timedelta(days=1))
    projections.run_all()
    support = LedgerEntry.objects.get(payment_ref="pi_shared", kind="support")
    recurring = LedgerEntry.objects.get(payment_ref="pi_shared", kind="recurring")
    agent_user(supporter, "supporter")
    client.force_login(supporter.user)
    body = client.get(f"/agent/commissions/{support.id}/").content.decode()
    assert "payment.refunded" in body
    assert recurring.id not in body
    assert world.agent.id not in body
    assert "ACMEONE" not in body
    client.force_login(world.agent.user)
    body = client.get(f"/agent/commissions/{recurring.id}/").content.decode()
    assert "payment.refunded" in body
    assert support.id not in body
