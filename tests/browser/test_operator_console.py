"""An operator drives the console (the Django admin) in real Chromium: approve an enrollment, pay an agent.

Everything under test is done as a person would: log in through the admin login form, tick a row
of a changelist, pick the action, fill the action bar or the action's own form, press the button.
The checks then read the page and the database: the decision is in the row, in the model and in
the event log as an operator event carrying ``actor = user:<username>``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from agents.models import Enrollment
from agents.services import enrollment_apply
from commissions import selectors
from commissions.models import LedgerEntry, Payout
from ingestion import projections
from ingestion.models import Event
from ingestion.workspaces import CreatedWorkspace
from tests.console.support import PASSWORD, AgentWorld, build_agent_world
from tests.factories import AgentFactory

from .conftest import CANVAS_PAINTED_JS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What a staff operator (not a superuser) needs from Django's model permissions to decide
# enrollments (the actions ask for "change"), to list and create payouts (view, add) and to
# confirm them (the confirm action asks for "change": it says the money has left).
STAFF_PERMISSIONS = [("agents", "view_enrollment"), ("agents", "change_enrollment"),
                     ("commissions", "view_payout"), ("commissions", "add_payout"),
                     ("commissions", "change_payout")]


@pytest.fixture
def world(tenant: CreatedWorkspace) -> AgentWorld:
    """An agent with one payable 19.80 USD referral entry (and pending ones), built from events."""
    return build_agent_world(tenant.workspace, tenant.product, code="CONSOLE1", prefix="ops")


@pytest.fixture
def superuser_operator(world: AgentWorld) -> Any:
    """A superuser who also operates the world's workspace."""
    user = get_user_model().objects.create_superuser("olga", "olga@example.com", PASSWORD)
    world.workspace.operators.add(user)
    return user


@pytest.fixture
def staff_operator(world: AgentWorld) -> Any:
    """A staff user, not a superuser, operating the world's workspace with the console permissions."""
    user = get_user_model().objects.create_user("sam", "sam@example.com", PASSWORD, is_staff=True)
    for app_label, codename in STAFF_PERMISSIONS:
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    world.workspace.operators.add(user)
    return user


@pytest.fixture
def applied(world: AgentWorld) -> Enrollment:
    """A new agent who applied to the world's (manual) program and waits for a decision."""
    agent = AgentFactory(workspace=world.workspace, name="Nora Newcomer", email="nora@partners.example.com")
    enrollment = enrollment_apply(agent=agent, program=world.program)
    assert enrollment.status == Enrollment.Status.APPLIED
    return enrollment


def log_in(page: Any, live_server: Any, username: str) -> None:
    """Log in through the admin's own login form and land on the console overview."""
    page.goto(f"{live_server.url}/admin/")
    assert page.url.startswith(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def hide_the_sidebar(page: Any) -> None:
    """Fold the admin's navigation sidebar (as an operator would) so whole changelist rows fit."""
    page.click("#toggle-nav-sidebar")
    page.wait_for_selector("#main:not(.shifted)")


def changelist_row(page: Any, object_id: str) -> Any:
    """The changelist row whose action checkbox selects ``object_id``."""
    return page.locator(f"#result_list tbody tr:has(input[name=_selected_action][value='{object_id}'])")


def choose_action(page: Any, object_id: str, action: str, fields: dict[str, str] | None = None) -> None:
    """Tick one row, pick the action and fill the action bar's extra fields (as typed, not posted)."""
    page.check(f"input[name=_selected_action][value='{object_id}']")
    assert page.locator(".action-counter").inner_text().startswith("1 of")
    page.select_option("select[name=action]", action)
    for name, value in (fields or {}).items():
        page.fill(f".actions input[name={name}]", value)


def press_go(page: Any) -> None:
    """Press the action bar's Go button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(".actions button[name=index]")


def approve_from_the_changelist(page: Any, live_server: Any, shoot: Any, enrollment: Enrollment, *,
                                reason: str, referral_code: str, shot: str) -> Any:
    """Open the Enrollments changelist, approve ``enrollment`` with the action bar; return its row."""
    page.click("#content-main a[href='/admin/agents/enrollment/']")
    page.wait_for_url(f"{live_server.url}/admin/agents/enrollment/")
    hide_the_sidebar(page)
    row = changelist_row(page, enrollment.id)
    assert row.locator("td.field-status").inner_text() == "Applied"
    choose_action(page, enrollment.id, "approve", {"reason": reason, "referral_code": referral_code})
    shoot(page, f"{shot}-enrollments")
    press_go(page)
    assert page.url == f"{live_server.url}/admin/agents/enrollment/"
    shoot(page, f"{shot}-approved")
    return changelist_row(page, enrollment.id)


def approved_events(enrollment: Enrollment) -> list[Event]:
    return [e for e in Event.objects.filter(type="enrollment.approved").order_by("position")
            if e.data["enrollment_id"] == enrollment.id]


def create_and_confirm_a_payout(page: Any, live_server: Any, shoot: Any, world: AgentWorld, *, reference: str,
                                shot: str) -> Payout:
    """Create a payout for the world's agent on the add page, then confirm it from the changelist."""
    page.goto(f"{live_server.url}/admin/commissions/payout/add/")
    assert page.locator("#content h1").inner_text() == "Create a payout"
    hide_the_sidebar(page)
    page.select_option("#id_agent", world.agent.id)
    page.fill("#id_currency", "USD")
    shoot(page, f"{shot}-payout-add")
    with page.expect_navigation():
        page.click("#content form input[type=submit][value='Create payout']")
    assert page.url == f"{live_server.url}/admin/commissions/payout/"
    created = page.locator(".messagelist .success").inner_text()
    assert re.fullmatch(r"Payout pay_\w+ created: 19\.80 USD over 1 entries\. Confirm it once paid\.", created)

    payout = Payout.objects.get(workspace=world.workspace, agent_id=world.agent.id)
    assert (payout.status, payout.amount, payout.currency) == (Payout.Status.CREATED, 1980, "USD")
    assert payout.id in created
    row = changelist_row(page, payout.id)
    assert row.locator("td.field-status").inner_text() == "Created"
    shoot(page, f"{shot}-payout-created")

    choose_action(page, payout.id, "confirm_selected")
    press_go(page)
    assert page.locator("#content h1").inner_text() == "Confirm payouts"
    assert page.locator("#content form li").all_inner_texts() == [str(payout)]
    page.fill("#id_reference", reference)
    shoot(page, f"{shot}-payout-confirm")
    with page.expect_navigation():
        page.click("#content form input[type=submit][name=apply]")
    assert page.url == f"{live_server.url}/admin/commissions/payout/"
    assert page.locator(".messagelist .success").inner_text() == (
        f"Payout {payout.id} confirmed: its entries are paid.")
    row = changelist_row(page, payout.id)
    assert row.locator("td.field-status").inner_text() == "Confirmed"
    assert row.locator("td.field-reference").inner_text() == reference
    shoot(page, f"{shot}-payout-confirmed")
    projections.run_all()
    payout.refresh_from_db()
    return payout


def statuses_now(entry_ids: list[str], workspace_id: str) -> dict[str, str]:
    """Each entry's public status now, derived the way the API and the dashboard derive it."""
    entries, pairs = selectors.commission_list(workspace_id=workspace_id, as_of=timezone.now())
    return {e.id: selectors.entry_status(e, pairs) for e in entries.filter(id__in=entry_ids)}


def test_superuser_operator_approves_an_applied_enrollment_with_a_reason_and_a_code(
        page: Any, live_server: Any, shoot: Any, world: AgentWorld, superuser_operator: Any,
        applied: Enrollment) -> None:
    """Tick the applied row, choose approve, type reason and code, Go: approved on the page, in the DB and the log."""
    log_in(page, live_server, "olga")
    row = approve_from_the_changelist(page, live_server, shoot, applied, reason="strong partner network",
                                      referral_code="nora2024", shot="operator")

    assert page.locator(".messagelist .success").inner_text() == "Approved 1 enrollment(s)."
    assert not page.locator(".messagelist .error").count()
    assert row.locator("td.field-status").inner_text() == "Approved"
    assert row.locator("td.field-referral_code").inner_text() == "NORA2024"
    assert row.locator("td.field-reason").inner_text() == "strong partner network"

    enrollment = Enrollment.objects.get(id=applied.id)
    assert (enrollment.status, enrollment.referral_code, enrollment.reason) == (
        Enrollment.Status.APPROVED, "NORA2024", "strong partner network")
    assert enrollment.terms
    assert enrollment.decided_at is not None
    events = approved_events(applied)
    assert [(e.source, e.actor, e.data["referral_code"], e.data["reason"]) for e in events] == [
        ("operator", "user:olga", "NORA2024", "strong partner network")]


def test_staff_operator_of_the_workspace_approves_an_enrollment_and_gets_a_generated_code(
        page: Any, live_server: Any, shoot: Any, world: AgentWorld, staff_operator: Any,
        applied: Enrollment) -> None:
    """A non-superuser operator with the change permission approves without a code; one is generated."""
    log_in(page, live_server, "sam")
    row = approve_from_the_changelist(page, live_server, shoot, applied, reason="met at the meetup",
                                      referral_code="", shot="staff-operator")

    assert page.locator(".messagelist .success").inner_text() == "Approved 1 enrollment(s)."
    enrollment = Enrollment.objects.get(id=applied.id)
    assert enrollment.status == Enrollment.Status.APPROVED
    assert re.fullmatch(r"NORANE[A-Z0-9]{4}", enrollment.referral_code)
    assert row.locator("td.field-status").inner_text() == "Approved"
    assert row.locator("td.field-referral_code").inner_text() == enrollment.referral_code
    events = approved_events(applied)
    assert [(e.source, e.actor, e.data["reason"]) for e in events] == [("operator", "user:sam", "met at the meetup")]


def test_superuser_operator_creates_a_payout_and_confirms_it_with_a_reference(
        page: Any, live_server: Any, shoot: Any, world: AgentWorld, superuser_operator: Any) -> None:
    """Add page → created payout of the payable 19.80 USD; confirm action → reference form → confirmed, entry paid."""
    referral = LedgerEntry.objects.get(workspace=world.workspace, agent_id=world.agent.id, kind="referral")
    assert statuses_now([referral.id], world.workspace.id) == {referral.id: "payable"}
    log_in(page, live_server, "olga")

    payout = create_and_confirm_a_payout(page, live_server, shoot, world, reference="WIRE-2024-0042",
                                         shot="operator")

    assert (payout.status, payout.reference, payout.confirmed_by) == (
        Payout.Status.CONFIRMED, "WIRE-2024-0042", "user:olga")
    covered = list(payout.lines.values_list("entry_id", flat=True))
    assert covered == [referral.id]
    assert statuses_now(covered, world.workspace.id) == {referral.id: "paid"}
    events = Event.objects.filter(type__in=["payout.created", "payout.confirmed"]).order_by("position")
    assert [(e.type, e.actor, e.data["payout_id"]) for e in events] == [
        ("payout.created", "user:olga", payout.id), ("payout.confirmed", "user:olga", payout.id)]
    assert events[1].data["reference"] == "WIRE-2024-0042"


def test_staff_operator_of_the_workspace_creates_and_confirms_a_payout(
        page: Any, live_server: Any, shoot: Any, world: AgentWorld, staff_operator: Any) -> None:
    """A non-superuser operator with view/add/change payout permissions pays the agent: the entry becomes paid."""
    log_in(page, live_server, "sam")

    payout = create_and_confirm_a_payout(page, live_server, shoot, world, reference="SEPA-77",
                                         shot="staff-operator")

    assert (payout.status, payout.reference, payout.confirmed_by) == (Payout.Status.CONFIRMED, "SEPA-77", "user:sam")
    covered = list(payout.lines.values_list("entry_id", flat=True))
    assert len(covered) == 1
    assert statuses_now(covered, world.workspace.id) == dict.fromkeys(covered, "paid")
    assert list(Event.objects.filter(type="payout.confirmed").values_list("actor", flat=True)) == ["user:sam"]


# The landing page's figure cards (refairn/templates/admin/refairn_index.html), in page order.
LANDING_FIGURES = ["events", "failed-deliveries", "unattributed", "lag", "commissions", "operator-actions"]


def test_operator_landing_shows_the_figure_cards_and_paints_the_weekly_chart(
        page: Any, live_server: Any, shoot: Any, world: AgentWorld, staff_operator: Any) -> None:
    """After logging in, /admin/ shows every figure card with the workspace's numbers and a drawn chart."""
    log_in(page, live_server, "sam")

    cards = page.locator("#rf-overview [data-figure]")
    assert [cards.nth(i).get_attribute("data-figure") for i in range(cards.count())] == LANDING_FIGURES
    for name in LANDING_FIGURES:
        assert page.locator(f"[data-figure='{name}']").is_visible(), name
    usd = page.locator("[data-figure=commissions] tr[data-currency=USD]")
    assert usd.locator("[data-bucket=payable]").inner_text() == "19.80"
    assert usd.locator("[data-bucket=pending]").inner_text() == "4.95"
    assert page.locator("[data-figure=unattributed] .big").inner_text() == "1"

    page.wait_for_selector("#rf-weekly[data-rendered=true]")
    assert page.evaluate(CANVAS_PAINTED_JS, "rf-weekly") > 0
    shoot(page, "operator-landing")


def test_operator_landing_does_not_scroll_sideways_at_phone_width(
        phone: Any, live_server: Any, shoot: Any, world: AgentWorld, staff_operator: Any) -> None:
    """At 390 px the landing page fits the screen's width, and the weekly chart still draws."""
    log_in(phone, live_server, "sam")
    phone.wait_for_selector("#rf-weekly[data-rendered=true]")
    shoot(phone, "operator-landing-phone")
    assert phone.evaluate(CANVAS_PAINTED_JS, "rf-weekly") > 0
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
