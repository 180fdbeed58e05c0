"""Console: enrollment decisions through the services; customers read-only with their events."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from agents.models import Enrollment, Program
from attribution.models import Customer
from ingestion.models import Event
from tests.factories import AgentFactory

from .conftest import at, click, signup

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(tenant) -> Client:
    user = get_user_model().objects.create_superuser("olga", "olga@example.com", "pw")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def _applied(program: Program) -> Enrollment:
    from agents.services import enrollment_apply

    return enrollment_apply(agent=AgentFactory(workspace=program.workspace), program=program)


@pytest.mark.smoke
def test_approving_in_the_console_appends_the_event_as_the_operator(program, admin_client):
    """The approve action calls the service: enrollment.approved, actor user:<username>, chosen code."""
    enrollment = _applied(program)
    response = admin_client.post("/admin/agents/enrollment/", {
        "action": "approve", "_selected_action": [enrollment.pk], "reason": "great blog", "referral_code": "olga1"})
    assert response.status_code == 302
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.referral_code) == (Enrollment.Status.APPROVED, "OLGA1")
    event = Event.objects.get(type="enrollment.approved")
    assert (event.actor, event.data["reason"], event.data["terms"]) == ("user:olga", "great blog", enrollment.terms)


def test_rejecting_in_the_console_without_a_reason_changes_nothing(program, admin_client):
    """Reject and remove need a reason; without one nothing is decided."""
    enrollment = _applied(program)
    admin_client.post("/admin/agents/enrollment/", {"action": "reject", "_selected_action": [enrollment.pk],
                                                    "reason": "", "referral_code": ""})
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.APPLIED
    assert Event.objects.filter(type="enrollment.rejected").exists() is False
    admin_client.post("/admin/agents/enrollment/", {"action": "reject", "_selected_action": [enrollment.pk],
                                                    "reason": "spam site", "referral_code": ""})
    assert Event.objects.get(type="enrollment.rejected").data["reason"] == "spam site"


def test_removing_in_the_console_appends_the_removal(program, ann, admin_client):
    """The remove action appends enrollment.removed with the reason."""
    admin_client.post("/admin/agents/enrollment/", {"action": "remove", "_selected_action": [ann.pk],
                                                    "reason": "left the company", "referral_code": ""})
    event = Event.objects.get(type="enrollment.removed")
    assert (event.actor, event.data["reason"]) == ("user:olga", "left the company")


def test_a_program_created_in_the_console_is_validated_by_the_service(tenant, admin_client):
    """An invalid percentage is refused on the form; a valid program is created."""
    form = {"workspace": tenant.workspace.id, "product": tenant.product.id, "name": "P", "referral_type": "percent",
            "referral_value": "150", "referral_currency": "", "recurring_percent": "10",
            "recurring_duration_months": "12", "support_percent": "0", "attribution_window_days": "90",
            "hold_days": "14", "payout_frequency": "monthly", "payout_threshold": "{}",
            "conflict_mode": "disclosed", "enrollment_mode": "manual",
            "enrollments-TOTAL_FORMS": "0", "enrollments-INITIAL_FORMS": "0"}
    response = admin_client.post("/admin/agents/program/add/", form)
    assert response.status_code == 200
    assert Program.objects.exists() is False
    response = admin_client.post("/admin/agents/program/add/", {**form, "referral_value": "20"})
    assert response.status_code == 302
    assert Program.objects.get().referral_value == 20


def test_editing_a_program_in_the_console_leaves_approved_terms_alone(tenant, program, ann, admin_client):
    """A console edit of the program goes through program_update: Ann keeps her snapshot."""
    snapshot = dict(ann.terms)
    form = {"name": program.name, "referral_type": "percent", "referral_value": "45", "referral_currency": "",
            "recurring_percent": "10", "recurring_duration_months": "", "support_percent": "0",
            "attribution_window_days": "7", "hold_days": "30", "payout_frequency": "weekly",
            "payout_threshold": "{}", "conflict_mode": "open", "enrollment_mode": "manual",
            "enrollments-TOTAL_FORMS": "1", "enrollments-INITIAL_FORMS": "1", "enrollments-0-id": ann.pk,
            "enrollments-0-program": program.pk}
    response = admin_client.post(f"/admin/agents/program/{quote(program.pk)}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    program.refresh_from_db()
    assert (program.referral_value, program.attribution_window_days) == (45, 7)
    ann.refresh_from_db()
    assert ann.terms == snapshot
    assert Event.objects.filter(type__startswith="enrollment.").count() == 1


def test_a_customer_page_shows_why_with_links_to_the_events(tenant, ann, admin_client, project):
    """The customer page is read-only and links the click and signup events behind the attribution."""
    clicked = click(tenant.workspace.id, "ANN", "clk_adminview0000", when=at(0))
    created = signup(tenant.workspace.id, "why@example.com", click_id="clk_adminview0000", when=at(1))
    project()
    customer = Customer.objects.get()
    response = admin_client.get(f"/admin/attribution/customer/{quote(customer.pk)}/change/")
    body = response.content.decode()
    assert response.status_code == 200
    assert f'/admin/ingestion/event/{clicked.position}/change/' in body
    assert f'/admin/ingestion/event/{created.position}/change/' in body
    assert "first click clk_adminview0000 on code ANN" in body
    assert f"/admin/attribution/customer/{quote(customer.pk)}/reassign/" in body
    assert 'name="_save"' not in body


def test_an_unattributed_customer_page_shows_the_reason(tenant, ann, admin_client, project):
    """The reason a customer was not attributed (and the refused attempt) is on its page."""
    signup(tenant.workspace.id, "lost@example.com", referral_code="WHOKNOWS", when=at(1))
    project()
    customer = Customer.objects.get()
    body = admin_client.get(f"/admin/attribution/customer/{quote(customer.pk)}/change/").content.decode()
    assert "unknown referral code" in body
    assert "code WHOKNOWS given at signup: no enrollment has this code" in body


def test_an_operator_sees_only_the_customers_of_their_workspaces(tenant, other_tenant, ann, project):
    """Another workspace's operator gets no row and a missing page for this workspace's customer."""
    signup(tenant.workspace.id, "mine@example.com", referral_code="ANN", when=at(1))
    project()
    stranger = get_user_model().objects.create_user("stranger", "s@example.com", "pw", is_staff=True)
    stranger.user_permissions.add(Permission.objects.get(codename="view_customer"))
    other_tenant.workspace.operators.add(stranger)
    client = Client(HTTP_HOST="localhost")
    client.force_login(stranger)
    customer = Customer.objects.get()
    assert "mine@example.com" not in client.get("/admin/attribution/customer/").content.decode()
    assert client.get(f"/admin/attribution/customer/{quote(customer.pk)}/change/").status_code in {302, 404}
