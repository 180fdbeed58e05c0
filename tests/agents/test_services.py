"""Programs, agents and enrollment decisions: every decision is an event with the terms snapshot."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from agents.models import Enrollment, Program
from agents.selectors import enrollment_by_code, referral_code_active
from agents.services import (
    agent_create,
    enrollment_apply,
    enrollment_approve,
    enrollment_reject,
    enrollment_remove,
    program_create,
    program_update,
)
from agents.terms import program_terms
from attribution.models import AttributionRefusal, ReferralCode
from ingestion.errors import ApplicationError, ConflictError
from ingestion.models import Event, ProjectionCheckpoint
from tests.factories import AgentFactory, ProgramFactory, approved_enrollment

pytestmark = pytest.mark.django_db


@pytest.fixture
def program(tenant) -> Program:
    return ProgramFactory(workspace=tenant.workspace, product=tenant.product)


@pytest.mark.smoke
def test_approval_appends_an_operator_event_with_the_terms_snapshot(program):
    """Approving snapshots the program's terms and appends enrollment.approved carrying them."""
    agent = AgentFactory(workspace=program.workspace, email="ann@partners.test")
    enrollment = enrollment_apply(agent=agent, program=program, actor="user:op")
    assert enrollment.status == Enrollment.Status.APPLIED
    enrollment = enrollment_approve(enrollment=enrollment, referral_code="ann1", actor="user:op", reason="good fit")
    event = Event.objects.get(type="enrollment.approved")
    assert (event.source, event.actor) == ("operator", "user:op")
    assert event.data["terms"] == enrollment.terms
    assert event.data["terms"]["referral"] == {"type": "percent", "percent": "20"}
    assert event.data["terms"]["recurring"] == {"percent": "10", "duration_months": 12}
    assert event.data["terms"]["attribution_window_days"] == 90
    assert (event.data["referral_code"], event.data["agent_email"], event.data["reason"]) == (
        "ANN1", "ann@partners.test", "good fit")
    assert (event.data["enrollment_id"], event.data["agent_id"], event.data["program_id"]) == (
        enrollment.id, agent.id, program.id)


def test_editing_a_program_after_approval_changes_nothing_for_approved_enrollments(program):
    """A program edit changes only enrollments approved afterwards; earlier snapshots and events stay."""
    first = approved_enrollment(program=program, code="FIRST")
    snapshot = dict(first.terms)
    program_update(program=program, referral_value=Decimal("35"), hold_days=30, recurring_duration_months=None)
    first.refresh_from_db()
    assert first.terms == snapshot
    assert Event.objects.get(type="enrollment.approved", data__enrollment_id=first.id).data["terms"] == snapshot
    later = approved_enrollment(program=program, code="LATER")
    assert later.terms["referral"] == {"type": "percent", "percent": "35"}
    assert (later.terms["hold_days"], later.terms["recurring"]["duration_months"]) == (30, None)


def test_a_fixed_referral_commission_is_snapshotted_in_minor_units(tenant):
    """A fixed referral amount is kept as integer minor units with its currency."""
    program = program_create(workspace=tenant.workspace, product=tenant.product, name="Fixed",
                             referral_type="fixed", referral_value=Decimal("50.00"), referral_currency="usd")
    enrollment = approved_enrollment(program=program, code="FIX")
    assert enrollment.terms["referral"] == {"type": "fixed", "amount": 5000, "currency": "USD"}


def test_rejecting_needs_a_reason_and_appends_the_event(program):
    """A rejection without a reason is refused; with one it appends enrollment.rejected."""
    enrollment = enrollment_apply(agent=AgentFactory(workspace=program.workspace), program=program)
    with pytest.raises(ApplicationError):
        enrollment_reject(enrollment=enrollment, reason="  ", actor="user:op")
    enrollment_reject(enrollment=enrollment, reason="not a fit", actor="user:op")
    event = Event.objects.get(type="enrollment.rejected")
    assert event.data["reason"] == "not a fit"
    assert Enrollment.objects.get(pk=enrollment.pk).status == Enrollment.Status.REJECTED


def test_removing_appends_the_event_and_deactivates_the_code(program):
    """Removal appends enrollment.removed; the code then no longer counts as active."""
    enrollment = approved_enrollment(program=program, code="GONE")
    assert referral_code_active(program.workspace_id, "gone") is True
    enrollment_remove(enrollment=enrollment, reason="fraud", actor="user:op")
    assert Event.objects.get(type="enrollment.removed").data["referral_code"] == "GONE"
    assert referral_code_active(program.workspace_id, "GONE") is False


def test_a_rejection_event_carries_the_terms_that_were_refused(program: Program) -> None:
    """Every decision event carries a terms snapshot: a rejection records the program's terms at that
    moment (what the agent was refused), while the rejected enrollment itself keeps no terms."""
    enrollment = enrollment_apply(agent=AgentFactory(workspace=program.workspace), program=program)
    program_update(program=program, referral_value=Decimal("35"))
    enrollment_reject(enrollment=enrollment, reason="not a fit", actor="user:op")
    event = Event.objects.get(type="enrollment.rejected")
    assert event.data["terms"] == program_terms(Program.objects.get(pk=program.pk))
    assert event.data["terms"]["referral"] == {"type": "percent", "percent": "35"}
    assert Enrollment.objects.get(pk=enrollment.pk).terms is None


def test_a_removal_event_carries_the_approval_snapshot_not_the_programs_current_terms(program: Program) -> None:
    """A removal's terms are the enrollment's own snapshot, even after the program's terms changed."""
    enrollment = approved_enrollment(program=program, code="SNAP")
    snapshot = dict(enrollment.terms)
    program_update(program=program, referral_value=Decimal("35"))
    enrollment_remove(enrollment=enrollment, reason="contract ended", actor="user:op")
    terms = Event.objects.get(type="enrollment.removed").data["terms"]
    assert terms == snapshot
    assert terms != program_terms(Program.objects.get(pk=program.pk))


def test_projections_accept_a_rejection_carrying_terms(program: Program, project: Callable[[], Any]) -> None:
    """The projectors read terms only from approvals: a rejection with terms creates no code and no refusal."""
    enrollment = enrollment_apply(agent=AgentFactory(workspace=program.workspace), program=program)
    enrollment_reject(enrollment=enrollment, reason="not a fit")
    project()
    assert not ReferralCode.objects.exists()
    assert not AttributionRefusal.objects.exists()
    assert ProjectionCheckpoint.objects.get(name="attribution").position == Event.objects.get(
        type="enrollment.rejected").position


def test_only_applied_enrollments_can_be_approved_or_rejected(program):
    """Decisions follow applied → approved | rejected → (approved) removed."""
    enrollment = approved_enrollment(program=program, code="TWICE")
    with pytest.raises(ConflictError):
        enrollment_approve(enrollment=enrollment)
    with pytest.raises(ConflictError):
        enrollment_reject(enrollment=enrollment, reason="late")
    enrollment_remove(enrollment=enrollment, reason="done")
    with pytest.raises(ConflictError):
        enrollment_remove(enrollment=enrollment, reason="again")


def test_a_chosen_code_is_upper_cased_and_must_be_alphanumeric(program):
    """Chosen codes are stored upper-case; anything but 3–32 letters and digits is refused."""
    enrollment = enrollment_apply(agent=AgentFactory(workspace=program.workspace), program=program)
    with pytest.raises(ApplicationError):
        enrollment_approve(enrollment=enrollment, referral_code="no-dash")
    assert enrollment_approve(enrollment=enrollment, referral_code=" summer24 ").referral_code == "SUMMER24"


def test_a_generated_code_is_upper_case_alphanumeric(program):
    """Without a chosen code, one is generated from the agent's name."""
    agent = AgentFactory(workspace=program.workspace, name="Zoë O'Brien")
    code = approved_enrollment(program=program, agent=agent).referral_code
    assert re.fullmatch(r"[A-Z0-9]{3,32}", code)


def test_codes_are_unique_per_workspace_only(program, other_tenant):
    """A code taken in the workspace is refused; another workspace may hold the same code."""
    approved_enrollment(program=program, code="SAME")
    enrollment = enrollment_apply(agent=AgentFactory(workspace=program.workspace), program=program)
    with pytest.raises(ConflictError):
        enrollment_approve(enrollment=enrollment, referral_code="same")
    other_program = ProgramFactory(workspace=other_tenant.workspace, product=other_tenant.product)
    assert approved_enrollment(program=other_program, code="SAME").referral_code == "SAME"


def test_a_removed_enrollments_code_stays_reserved(program):
    """A removed agent's code is kept on the enrollment and cannot be chosen again in the workspace."""
    gone = approved_enrollment(program=program, code="KEPT")
    enrollment_remove(enrollment=gone, reason="left")
    gone.refresh_from_db()
    assert (gone.status, gone.referral_code) == (Enrollment.Status.REMOVED, "KEPT")
    newcomer = enrollment_apply(agent=AgentFactory(workspace=program.workspace), program=program)
    with pytest.raises(ConflictError):
        enrollment_approve(enrollment=newcomer, referral_code="kept")


def test_every_decision_event_names_the_enrollment_code_and_reason(program):
    """Approve, then remove: two operator events in the store, the audit trail of the enrollment."""
    enrollment = approved_enrollment(program=program, code="TRAIL", actor="user:op")
    enrollment_remove(enrollment=enrollment, reason="contract ended", actor="user:op2")
    events = list(Event.objects.filter(type__startswith="enrollment.").order_by("position"))
    assert [(e.type, e.actor, e.data["referral_code"]) for e in events] == [
        ("enrollment.approved", "user:op", "TRAIL"), ("enrollment.removed", "user:op2", "TRAIL")]
    assert events[1].data["reason"] == "contract ended"
    assert events[1].data["terms"] == events[0].data["terms"]


def test_codes_match_case_insensitively(program):
    """A code is found whatever case it is typed in."""
    enrollment = approved_enrollment(program=program, code="MIXED")
    assert enrollment_by_code(workspace_id=program.workspace_id, code=" mixed ") == enrollment


def test_an_open_program_approves_at_once(tenant):
    """Enrollment mode ``open`` approves on application, with an event like any approval."""
    program = ProgramFactory(workspace=tenant.workspace, product=tenant.product, enrollment_mode="open")
    enrollment = enrollment_apply(agent=AgentFactory(workspace=tenant.workspace), program=program)
    assert enrollment.status == Enrollment.Status.APPROVED
    assert Event.objects.get(type="enrollment.approved").actor == "system:open-enrollment"


def test_agent_emails_are_normalised_and_unique(tenant):
    """Agent emails are trimmed and lower-cased; a second agent with the same email is a conflict."""
    agent = agent_create(workspace=tenant.workspace, email="  Ann@Partners.TEST ", name="Ann")
    assert agent.email == "ann@partners.test"
    with pytest.raises(ConflictError):
        agent_create(workspace=tenant.workspace, email="ann@partners.test", name="Ann again")
    with pytest.raises(ApplicationError):
        agent_create(workspace=tenant.workspace, email="not-an-email", name="X")


def test_an_agent_cannot_join_a_program_of_another_workspace(program, other_tenant):
    """Enrolling across workspaces is refused as not found."""
    stranger = AgentFactory(workspace=other_tenant.workspace)
    with pytest.raises(ApplicationError) as caught:
        enrollment_apply(agent=stranger, program=program)
    assert caught.value.status_code == 404


@pytest.mark.parametrize(("terms", "field"), [
    ({"referral_value": Decimal("-1")}, "referral_value"),
    ({"recurring_percent": Decimal("101")}, "recurring_percent"),
    ({"referral_type": "fixed", "referral_value": Decimal("1.001"), "referral_currency": "USD"},
     "referralCommission"),
    ({"attribution_window_days": -5}, "attribution_window_days"),
    ({"payout_threshold": {"USD": 1.5}}, "payoutThreshold"),
    ({"payout_frequency": "daily"}, "payout_frequency"),
])
def test_invalid_program_terms_are_refused_with_the_field(tenant, terms, field):
    """Bad terms get a clear error naming the field, and nothing is saved."""
    with pytest.raises(ApplicationError) as caught:
        program_create(workspace=tenant.workspace, product=tenant.product, name="Bad", **terms)
    assert caught.value.field == field
    assert Program.objects.exists() is False
