"""Reassignment: the only way to move a customer, one service for the console and the API."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from agents.models import Enrollment
from agents.services import enrollment_apply, enrollment_remove
from attribution.models import AttributionRefusal, Customer, PaymentAttribution
from attribution.services import customer_reassign
from ingestion.errors import ApplicationError, ConflictError, NotFoundError
from ingestion.models import Event, Product
from tests.factories import AgentFactory, ProgramFactory, approved_enrollment

from .conftest import at, emit, pay, signup

pytestmark = pytest.mark.django_db


@pytest.fixture
def jane(tenant, ann, bob, project) -> Customer:
    """A customer of Ann's (typed code) who has paid once."""
    ws = tenant.workspace.id
    signup(ws, "jane@example.com", referral_code="ANN", when=at(1))
    pay(ws, "ch_j1", email="jane@example.com", when=at(2))
    project()
    return Customer.objects.get(email="jane@example.com")


@pytest.fixture
def admin_client(tenant) -> Client:
    user = get_user_model().objects.create_superuser("olga", "olga@example.com", "pw")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


@pytest.mark.smoke
def test_the_service_appends_attribution_reassigned_with_actor_and_reason(tenant, jane, bob):
    """customer_reassign appends one operator event naming the customer, the agent, its enrollment and why."""
    moved = customer_reassign(workspace=tenant.workspace, customer_id=jane.id, agent_id=bob.agent_id,
                              reason="duplicate account", actor="user:olga")
    event = Event.objects.get(type="attribution.reassigned")
    assert (event.event_id, event.source, event.actor) == (moved.event_id, "operator", "user:olga")
    assert event.data["customer_id"] == jane.id
    assert (event.data["agent_id"], event.data["enrollment_id"]) == (bob.agent_id, bob.id)
    assert (event.data["previous_agent_id"], event.data["reason"]) == (jane.agent_id, "duplicate account")


def test_a_reassignment_moves_the_customer_and_only_later_payments(tenant, jane, ann, bob, project):
    """After the projector applies it, the customer is Bob's; the payment before stays Ann's."""
    moved = customer_reassign(workspace=tenant.workspace, customer_id=jane.id, agent_id=bob.agent_id,
                              reason="agreed between agents", actor="user:olga")
    pay(tenant.workspace.id, "ch_j2", email="jane@example.com", when=at(32))
    project()
    jane.refresh_from_db()
    assert (jane.agent_id, jane.enrollment_id, jane.attributed_via) == (bob.agent_id, bob.id, Customer.Via.REASSIGNMENT)
    assert jane.attributed_event_id == moved.event_id
    assert "agreed between agents" in jane.attribution_detail
    assert dict(PaymentAttribution.objects.values_list("payment_ref", "agent_id")) == {
        "ch_j1": ann.agent_id, "ch_j2": bob.agent_id}


def test_a_reassignment_needs_a_reason(tenant, jane, bob):
    """Without a reason nothing is appended."""
    with pytest.raises(ApplicationError) as caught:
        customer_reassign(workspace=tenant.workspace, customer_id=jane.id, agent_id=bob.agent_id, reason=" ",
                          actor="user:olga")
    assert caught.value.field == "reason"
    assert not Event.objects.filter(type="attribution.reassigned").exists()


def test_a_customer_of_another_workspace_is_not_found(tenant, other_tenant, jane):
    """The service is scoped by workspace: another business's customer answers 404."""
    stranger = AgentFactory(workspace=other_tenant.workspace)
    with pytest.raises(NotFoundError):
        customer_reassign(workspace=other_tenant.workspace, customer_id=jane.id, agent_id=stranger.id,
                          reason="x", actor="user:olga")
    assert not Event.objects.filter(type="attribution.reassigned").exists()


def test_an_agent_of_another_workspace_is_not_found(tenant, other_tenant, jane):
    """An agent id from another business is unknown here."""
    stranger = AgentFactory(workspace=other_tenant.workspace)
    with pytest.raises(NotFoundError) as caught:
        customer_reassign(workspace=tenant.workspace, customer_id=jane.id, agent_id=stranger.id, reason="x",
                          actor="user:olga")
    assert caught.value.field == "agentId"


def test_an_agent_without_an_approved_enrollment_cannot_take_a_customer(tenant, program, jane):
    """An applied (not approved) agent is refused with 409 and nothing is appended."""
    applicant = enrollment_apply(agent=AgentFactory(workspace=tenant.workspace), program=program)
    assert applicant.status == Enrollment.Status.APPLIED
    with pytest.raises(ConflictError):
        customer_reassign(workspace=tenant.workspace, customer_id=jane.id, agent_id=applicant.agent_id,
                          reason="x", actor="user:olga")
    assert not Event.objects.filter(type="attribution.reassigned").exists()


def test_reassigning_to_the_same_agent_is_a_conflict(tenant, jane, ann):
    """A customer already credited to the agent is not moved again."""
    with pytest.raises(ConflictError) as caught:
        customer_reassign(workspace=tenant.workspace, customer_id=jane.id, agent_id=ann.agent_id, reason="x",
                          actor="user:olga")
    assert caught.value.code == "already_attributed"


def test_reassigning_a_customer_to_their_own_email_is_refused(tenant, program, project):
    """Self-referral is refused at the service, before any event."""
    own = AgentFactory(workspace=tenant.workspace, email="self@example.com")
    approved_enrollment(program=program, agent=own, code="SELF")
    signup(tenant.workspace.id, "Self@Example.com", when=at(1))
    project()
    customer = Customer.objects.get(email="self@example.com")
    with pytest.raises(ApplicationError) as caught:
        customer_reassign(workspace=tenant.workspace, customer_id=customer.id, agent_id=own.id, reason="x",
                          actor="user:olga")
    assert caught.value.code == "self_referral"


def test_an_unattributed_customer_can_be_assigned(tenant, bob, project):
    """A customer nobody earned can be given to an agent; only later payments earn."""
    ws = tenant.workspace.id
    signup(ws, "walkin@example.com", when=at(1))
    pay(ws, "ch_w1", email="walkin@example.com", when=at(2))
    project()
    customer = Customer.objects.get(email="walkin@example.com")
    customer_reassign(workspace=tenant.workspace, customer_id=customer.id, agent_id=bob.agent_id,
                      reason="agent closed the deal by phone", actor="user:olga")
    pay(ws, "ch_w2", email="walkin@example.com", when=at(32))
    project()
    customer.refresh_from_db()
    assert (customer.agent_id, customer.unattributed_reason) == (bob.agent_id, "")
    assert list(PaymentAttribution.objects.values_list("payment_ref", "sequence")) == [("ch_w2", 2)]


def test_the_reassignment_prefers_the_customers_product(tenant, jane, bob):
    """An agent in two programs receives the customer under the program of the customer's product."""
    other_product = Product.objects.create(workspace=tenant.workspace, name="Other", url="https://o.test/")
    other_program = ProgramFactory(workspace=tenant.workspace, product=other_product)
    approved_enrollment(program=other_program, agent=bob.agent, code="BOBOTHER")
    Customer.objects.filter(pk=jane.pk).update(product_id=tenant.product.id)
    moved = customer_reassign(workspace=tenant.workspace, customer_id=jane.id, agent_id=bob.agent_id,
                              reason="x", actor="user:olga")
    assert moved.enrollment_id == bob.id


def test_the_projector_refuses_a_reassignment_to_an_enrollment_removed_before_it(tenant, jane, ann, bob, project):
    """The store has the last word: a reassignment naming an enrollment removed earlier is refused, and recorded."""
    enrollment_remove(enrollment=bob, reason="left", actor="user:olga")
    emit(tenant.workspace.id, "attribution.reassigned", {
        "customer_id": jane.id, "agent_id": bob.agent_id, "enrollment_id": bob.id, "reason": "stale form"},
        source="operator", when=at(5), actor="user:olga")
    project()
    jane.refresh_from_db()
    assert jane.agent_id == ann.agent_id
    assert AttributionRefusal.objects.get(kind="reassignment_refused").customer_id == jane.id


# --- console ---------------------------------------------------------------------------------


@pytest.mark.smoke
def test_the_console_action_reassigns_through_the_service_as_the_operator(tenant, jane, bob, admin_client, project):
    """The changelist action leads to a form; submitting it appends attribution.reassigned by user:olga."""
    response = admin_client.post("/admin/attribution/customer/", {"action": "reassign",
                                                                  "_selected_action": [jane.pk]})
    assert response.status_code == 302
    form_url = response["Location"]
    assert form_url == f"/admin/attribution/customer/{quote(jane.pk)}/reassign/"
    page = admin_client.get(form_url)
    assert page.status_code == 200
    assert bob.agent_id in page.content.decode()
    response = admin_client.post(form_url, {"agent": bob.agent_id, "reason": "customer asked"})
    assert response.status_code == 302
    event = Event.objects.get(type="attribution.reassigned")
    assert (event.actor, event.data["reason"], event.data["agent_id"]) == ("user:olga", "customer asked",
                                                                          bob.agent_id)
    project()
    jane.refresh_from_db()
    assert jane.agent_id == bob.agent_id


def test_the_console_links_and_redirects_work_for_an_id_the_admin_must_quote(tenant, jane, bob, admin_client):
    """The admin reads "_" followed by two hex digits in a URL as an escape ("_25" is "%"): every link
    and redirect the console builds quotes the id, and the reassign page unquotes it, as the admin does."""
    awkward = "cus_25" + jane.pk[6:]
    Customer.objects.filter(pk=jane.pk).update(id=awkward)
    response = admin_client.post("/admin/attribution/customer/", {"action": "reassign",
                                                                  "_selected_action": [awkward]})
    form_url = response["Location"]
    assert form_url == f"/admin/attribution/customer/{quote(awkward)}/reassign/"
    page = admin_client.get(form_url)
    assert page.status_code == 200
    change_url = f"/admin/attribution/customer/{quote(awkward)}/change/"
    assert change_url in page.content.decode()
    assert f"/admin/attribution/customer/{quote(awkward)}/reassign/" in admin_client.get(change_url).content.decode()
    response = admin_client.post(form_url, {"agent": bob.agent_id, "reason": "customer asked"})
    assert (response.status_code, response["Location"]) == (302, change_url)
    assert admin_client.get(change_url).status_code == 200


def test_the_console_refuses_a_reassignment_without_a_reason(tenant, jane, bob, admin_client):
    """The form needs a reason; without one the page is shown again and nothing is appended."""
    response = admin_client.post(f"/admin/attribution/customer/{quote(jane.pk)}/reassign/", {"agent": bob.agent_id,
                                                                                      "reason": ""})
    assert response.status_code == 200
    assert not Event.objects.filter(type="attribution.reassigned").exists()


def test_the_console_shows_the_services_refusal_on_the_form(tenant, jane, ann, admin_client):
    """A refusal from the service (already this agent's) is shown on the form, nothing appended."""
    response = admin_client.post(f"/admin/attribution/customer/{quote(jane.pk)}/reassign/", {"agent": ann.agent_id,
                                                                                      "reason": "again"})
    assert response.status_code == 200
    assert "already attributed to this agent" in response.content.decode()
    assert not Event.objects.filter(type="attribution.reassigned").exists()


def test_the_console_action_takes_one_customer_at_a_time(tenant, jane, admin_client, project):
    """Selecting two customers redirects nowhere and appends nothing."""
    signup(tenant.workspace.id, "second@example.com", when=at(3))
    project()
    pks = list(Customer.objects.values_list("pk", flat=True))
    response = admin_client.post("/admin/attribution/customer/", {"action": "reassign", "_selected_action": pks},
                                 follow=True)
    assert "Select exactly one customer" in response.content.decode()
    assert not Event.objects.filter(type="attribution.reassigned").exists()


def test_a_view_only_operator_cannot_reassign(tenant, jane, bob):
    """Reassigning needs the change permission on customers; viewing alone gets 403."""
    viewer = get_user_model().objects.create_user("viewer", "v@example.com", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_customer"))
    tenant.workspace.operators.add(viewer)
    client = Client(HTTP_HOST="localhost")
    client.force_login(viewer)
    assert client.get(f"/admin/attribution/customer/{quote(jane.pk)}/change/").status_code == 200
    response = client.post(f"/admin/attribution/customer/{quote(jane.pk)}/reassign/", {"agent": bob.agent_id,
                                                                                "reason": "x"})
    assert response.status_code == 403
    assert not Event.objects.filter(type="attribution.reassigned").exists()


def test_another_workspaces_operator_cannot_reach_the_reassign_page(tenant, other_tenant, jane):
    """The reassign page is workspace-scoped like the customer page: 404 for a stranger."""
    stranger = get_user_model().objects.create_user("stranger", "s@example.com", "pw", is_staff=True)
    stranger.user_permissions.add(*Permission.objects.filter(codename__in=["view_customer", "change_customer"]))
    other_tenant.workspace.operators.add(stranger)
    client = Client(HTTP_HOST="localhost")
    client.force_login(stranger)
    assert client.get(f"/admin/attribution/customer/{quote(jane.pk)}/reassign/").status_code == 404
