"""Programs, agents and enrollments over the API, through the same services as the admin."""

from __future__ import annotations

from typing import Any

import pytest

from agents.models import Agent, Enrollment, Program
from ingestion.models import Event
from ingestion.workspaces import CreatedWorkspace
from tests.api.conftest import Post
from tests.factories import AgentFactory, ProgramFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def biz(tenant: CreatedWorkspace) -> dict[str, str]:
    return {"businessId": tenant.workspace.id}


def _program(post: Post, ids: dict[str, str], **fields: Any) -> Any:
    return post("/api/programs", {**ids, "name": "Partners", **fields})


# --- programs -----------------------------------------------------------------------------------

@pytest.mark.smoke
def test_create_program_with_defaults_answers_201(post: Post, ids: dict[str, str]) -> None:
    """A program with only a name takes PRODUCT.md's defaults and answers 201 with its programId."""
    response = _program(post, ids)
    assert response.status_code == 201
    body = response.json()
    program = Program.objects.get(pk=body["programId"])
    assert program.product_id == ids["productId"]
    assert body["referralCommission"] == {"type": "percent", "value": "20"}
    assert (body["attributionWindowDays"], body["holdDays"]) == (90, 14)
    assert (body["conflictMode"], body["enrollmentMode"], body["payoutFrequency"]) == ("disclosed", "manual",
                                                                                       "monthly")


def test_create_program_with_every_term(post: Post, ids: dict[str, str]) -> None:
    """Every documented term is taken, and money comes back as amount, currency and amountMinor."""
    response = _program(
        post, ids, referralCommission={"type": "fixed", "value": "50.00", "currency": "usd"},
        recurringCommission={"percent": "12.5", "durationMonths": 12}, supportCommission={"percent": 5},
        attributionWindowDays=30, holdDays=7, payoutFrequency="weekly",
        payoutThreshold=[{"amount": "100.00", "currency": "USD"}, {"amountMinor": 5000, "currency": "JPY"}],
        conflictMode="exclusive", enrollmentMode="open")
    assert response.status_code == 201
    body = response.json()
    assert body["referralCommission"] == {"type": "fixed", "value": "50.00", "currency": "USD", "amountMinor": 5000}
    assert body["recurringCommission"] == {"percent": "12.5", "durationMonths": 12}
    assert body["supportCommission"] == {"percent": "5"}
    assert body["payoutThreshold"] == [{"amount": "5000", "currency": "JPY", "amountMinor": 5000},
                                       {"amount": "100.00", "currency": "USD", "amountMinor": 10000}]
    program = Program.objects.get(pk=body["programId"])
    assert program.payout_threshold == {"USD": 10000, "JPY": 5000}
    assert (program.hold_days, program.enrollment_mode, program.conflict_mode) == (7, "open", "exclusive")


@pytest.mark.parametrize(("fields", "field"), [
    ({"referralCommission": {"type": "fixed", "value": "50.001", "currency": "USD"}}, "referralCommission.value"),
    ({"referralCommission": {"type": "fixed", "value": "50.00"}}, "referralCommission.currency"),
    ({"referralCommission": {"type": "percent", "value": "101"}}, "referralCommission.value"),
    ({"referralCommission": {"type": "percent", "value": "-1"}}, "referralCommission.value"),
    ({"referralCommission": {"type": "bonus", "value": "1"}}, "referralCommission.type"),
    ({"recurringCommission": {"percent": "10", "durationMonths": -1}}, "recurringCommission.durationMonths"),
    ({"payoutThreshold": [{"amount": "1.001", "currency": "USD"}]}, "payoutThreshold.0.amount"),
    ({"payoutFrequency": "daily"}, "payoutFrequency"),
    ({"holdDays": -1}, "holdDays"),
    ({"name": ""}, "name"),
])
def test_invalid_program_terms_are_400_naming_the_field(post: Post, ids: dict[str, str], fields: dict[str, Any],
                                                        field: str) -> None:
    """Each term is validated and the error names its path."""
    response = _program(post, ids, **fields)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert Program.objects.exists() is False


@pytest.mark.parametrize("field", ["programId", "status", "createdAt", "referral_value"])
def test_read_only_or_unknown_program_fields_are_400(post: Post, ids: dict[str, str], field: str) -> None:
    """An id, a status or an unknown name in the body is refused, not silently ignored."""
    response = _program(post, ids, **{field: "x"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_program_of_an_unknown_product_is_404(post: Post, ids: dict[str, str], other_tenant: CreatedWorkspace) -> None:
    """Another workspace's productId answers 404 on productId."""
    response = _program(post, {**ids, "productId": other_tenant.product.id})
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "productId"


def test_list_and_get_programs(api: Any, post: Post, ids: dict[str, str]) -> None:
    """Programs are listed newest first and fetched by id."""
    first = _program(post, ids, name="First").json()
    second = _program(post, ids, name="Second").json()
    listed = api.get("/api/programs").json()
    assert [p["programId"] for p in listed["data"]] == [second["programId"], first["programId"]]
    assert api.get(f"/api/programs/{first['programId']}").json() == first


def test_get_unknown_program_is_404(api: Any) -> None:
    """An id that does not exist answers 404."""
    assert api.get("/api/programs/prog_nope").status_code == 404


# --- agents -------------------------------------------------------------------------------------

@pytest.mark.smoke
def test_create_agent_answers_201(post: Post, biz: dict[str, str]) -> None:
    """An agent is created with a normalised email and answers 201 with its agentId."""
    response = post("/api/agents", {**biz, "email": " Jane@Partners.Example ", "name": "Jane"})
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "jane@partners.example"
    assert body["enrollments"] == []
    assert Agent.objects.get(pk=body["agentId"]).name == "Jane"


def test_duplicate_agent_email_is_409_with_the_existing_id(post: Post, biz: dict[str, str]) -> None:
    """A second agent with the same email answers 409 naming the existing agent."""
    first = post("/api/agents", {**biz, "email": "jane@p.example", "name": "Jane"}).json()
    again = post("/api/agents", {**biz, "email": "JANE@p.example", "name": "Jane 2"})
    assert again.status_code == 409
    assert again.json()["agentId"] == first["agentId"]


@pytest.mark.parametrize(("body", "field"), [
    ({"email": "nope", "name": "J"}, "email"),
    ({"name": "J"}, "email"),
    ({"email": "j@p.example"}, "name"),
    ({"email": "j@p.example", "name": "J", "agentId": "agt_mine"}, "agentId"),
    ({"email": "j@p.example", "name": "J", "userId": 1}, "userId"),
])
def test_invalid_agent_bodies_are_400(post: Post, biz: dict[str, str], body: dict[str, Any], field: str) -> None:
    """Agent bodies are checked field by field; ids cannot be chosen."""
    response = post("/api/agents", {**biz, **body})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_agent_detail_lists_its_enrollments(api: Any, tenant: CreatedWorkspace) -> None:
    """GET /api/agents/<id> shows the agent with every enrollment and its code."""
    program = ProgramFactory(product=tenant.product, workspace=tenant.workspace)
    agent = AgentFactory(workspace=tenant.workspace)
    from tests.factories import approved_enrollment

    enrollment = approved_enrollment(program=program, agent=agent, code="JANE1")
    body = api.get(f"/api/agents/{agent.id}").json()
    assert body["enrollments"] == [{"enrollmentId": enrollment.id, "programId": program.id,
                                    "productId": tenant.product.id, "status": "approved", "referralCode": "JANE1"}]
    listed = api.get("/api/agents").json()["data"]
    assert listed[0]["enrollments"][0]["enrollmentId"] == enrollment.id


def test_agents_filter_by_email(api: Any, tenant: CreatedWorkspace) -> None:
    """?email= finds an agent whatever the case."""
    agent = AgentFactory(workspace=tenant.workspace, email="jane@p.example")
    AgentFactory(workspace=tenant.workspace)
    data = api.get("/api/agents", {"email": "JANE@p.example"}).json()["data"]
    assert [a["agentId"] for a in data] == [agent.id]


# --- enrollments --------------------------------------------------------------------------------

@pytest.fixture
def setup(tenant: CreatedWorkspace) -> tuple[Program, Agent]:
    program = ProgramFactory(product=tenant.product, workspace=tenant.workspace)
    return program, AgentFactory(workspace=tenant.workspace, email="jane@p.example")


def _enroll(post: Post, biz: dict[str, str], program: Program, agent: Agent) -> Any:
    return post("/api/enrollments", {**biz, "agentId": agent.id, "programId": program.id})


@pytest.mark.smoke
def test_enroll_then_approve(post: Post, biz: dict[str, str], setup: tuple[Program, Agent],
                             tenant: CreatedWorkspace) -> None:
    """Enrolling answers 201 applied; approving sets the code (upper-cased), snapshots terms and
    appends enrollment.approved with the API key as actor."""
    program, agent = setup
    created = _enroll(post, biz, program, agent)
    assert created.status_code == 201
    assert (created.json()["status"], created.json()["referralCode"]) == ("applied", None)
    enrollment_id = created.json()["enrollmentId"]
    approved = post(f"/api/enrollments/{enrollment_id}/approve", {**biz, "referralCode": "jane24"})
    assert approved.status_code == 200
    assert (approved.json()["status"], approved.json()["referralCode"]) == ("approved", "JANE24")
    assert approved.json()["terms"]["referralCommission"] == {"type": "percent", "value": "20"}
    event = Event.objects.get(type="enrollment.approved")
    assert event.data["enrollment_id"] == enrollment_id
    assert event.actor == f"api-key:{tenant.api_key.key.id}"


def test_approve_without_code_generates_one(post: Post, biz: dict[str, str], setup: tuple[Program, Agent]) -> None:
    """Without referralCode a code is generated."""
    enrollment_id = _enroll(post, biz, *setup).json()["enrollmentId"]
    body = post(f"/api/enrollments/{enrollment_id}/approve", biz).json()
    assert body["status"] == "approved"
    assert body["referralCode"].isalnum()


def test_reject_and_remove_keep_the_reason(post: Post, biz: dict[str, str], tenant: CreatedWorkspace) -> None:
    """Reject and remove record their reason on the enrollment and in the event."""
    program = ProgramFactory(product=tenant.product, workspace=tenant.workspace)
    one, two = AgentFactory(workspace=tenant.workspace), AgentFactory(workspace=tenant.workspace)
    rejected_id = _enroll(post, biz, program, one).json()["enrollmentId"]
    rejected = post(f"/api/enrollments/{rejected_id}/reject", {**biz, "reason": "not a fit"})
    assert (rejected.status_code, rejected.json()["status"], rejected.json()["reason"]) == (200, "rejected",
                                                                                           "not a fit")
    removed_id = _enroll(post, biz, program, two).json()["enrollmentId"]
    post(f"/api/enrollments/{removed_id}/approve", biz)
    removed = post(f"/api/enrollments/{removed_id}/remove", {**biz, "reason": "left"})
    assert (removed.status_code, removed.json()["status"]) == (200, "removed")
    assert Event.objects.get(type="enrollment.removed").data["reason"] == "left"


def test_reject_without_reason_is_400(post: Post, biz: dict[str, str], setup: tuple[Program, Agent]) -> None:
    """A decision without its reason is refused."""
    enrollment_id = _enroll(post, biz, *setup).json()["enrollmentId"]
    response = post(f"/api/enrollments/{enrollment_id}/reject", biz)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "reason"


def test_approving_twice_is_409(post: Post, biz: dict[str, str], setup: tuple[Program, Agent]) -> None:
    """A decision that does not fit the current status answers 409 and appends nothing more."""
    enrollment_id = _enroll(post, biz, *setup).json()["enrollmentId"]
    post(f"/api/enrollments/{enrollment_id}/approve", biz)
    again = post(f"/api/enrollments/{enrollment_id}/approve", biz)
    assert again.status_code == 409
    assert Event.objects.filter(type="enrollment.approved").count() == 1


def test_a_taken_code_is_409(post: Post, biz: dict[str, str], tenant: CreatedWorkspace) -> None:
    """A referral code already used in the workspace answers 409."""
    program = ProgramFactory(product=tenant.product, workspace=tenant.workspace)
    first = _enroll(post, biz, program, AgentFactory(workspace=tenant.workspace)).json()["enrollmentId"]
    second = _enroll(post, biz, program, AgentFactory(workspace=tenant.workspace)).json()["enrollmentId"]
    assert post(f"/api/enrollments/{first}/approve", {**biz, "referralCode": "SAME1"}).status_code == 200
    response = post(f"/api/enrollments/{second}/approve", {**biz, "referralCode": "same1"})
    assert response.status_code == 409
    assert response.json()["error"]["field"] == "referralCode"


@pytest.mark.parametrize("field", ["status", "enrollmentId", "referralCode", "terms"])
def test_enrollment_bodies_refuse_what_the_client_may_not_set(post: Post, biz: dict[str, str],
                                                              setup: tuple[Program, Agent], field: str) -> None:
    """An enrollment is created applied: a status, id, code or terms in the body is refused."""
    program, agent = setup
    response = post("/api/enrollments", {**biz, "agentId": agent.id, "programId": program.id, field: "approved"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert Enrollment.objects.exists() is False


@pytest.mark.parametrize("decision", ["approve", "reject", "remove"])
@pytest.mark.parametrize("field", ["status", "enrollmentId", "agentId", "terms"])
def test_decisions_refuse_what_the_client_may_not_set(post: Post, biz: dict[str, str], setup: tuple[Program, Agent],
                                                      decision: str, field: str) -> None:
    """approve / reject / remove refuse a status, an id or terms in the body, and decide nothing."""
    enrollment_id = _enroll(post, biz, *setup).json()["enrollmentId"]
    response = post(f"/api/enrollments/{enrollment_id}/{decision}", {**biz, "reason": "r", field: "approved"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert Enrollment.objects.get(pk=enrollment_id).status == "applied"


def test_duplicate_enrollment_is_409(post: Post, biz: dict[str, str], setup: tuple[Program, Agent]) -> None:
    """An agent can be enrolled once per program."""
    assert _enroll(post, biz, *setup).status_code == 201
    assert _enroll(post, biz, *setup).status_code == 409


def test_open_program_approves_at_once(post: Post, biz: dict[str, str], tenant: CreatedWorkspace) -> None:
    """Enrolling in an open program answers 201 already approved, with a code."""
    program = ProgramFactory(product=tenant.product, workspace=tenant.workspace, enrollment_mode="open")
    body = _enroll(post, biz, program, AgentFactory(workspace=tenant.workspace)).json()
    assert body["status"] == "approved"
    assert body["referralCode"]


def test_enrollments_filter(api: Any, post: Post, biz: dict[str, str], tenant: CreatedWorkspace) -> None:
    """Enrollments filter by agentId, programId and status."""
    program = ProgramFactory(product=tenant.product, workspace=tenant.workspace)
    one, two = AgentFactory(workspace=tenant.workspace), AgentFactory(workspace=tenant.workspace)
    first = _enroll(post, biz, program, one).json()["enrollmentId"]
    second = _enroll(post, biz, program, two).json()["enrollmentId"]
    post(f"/api/enrollments/{second}/approve", biz)
    assert [e["enrollmentId"] for e in api.get("/api/enrollments", {"agentId": one.id}).json()["data"]] == [first]
    assert [e["enrollmentId"] for e in api.get("/api/enrollments", {"status": "approved"}).json()["data"]] == [second]
    assert len(api.get("/api/enrollments", {"programId": program.id}).json()["data"]) == 2
    assert api.get("/api/enrollments", {"status": "bogus"}).status_code == 400
