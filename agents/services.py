"""Writes for programs, agents and enrollments. Every enrollment decision is an operator event.

The event carries the terms snapshot, so the projections read terms from the store alone and a
rebuild reproduces every commission even after the program's current terms have changed.
"""

from __future__ import annotations

import re
import secrets
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from ingestion.errors import ApplicationError, ConflictError
from ingestion.models import Product, Workspace
from ingestion.money import MoneyError, normalise_currency, to_minor
from ingestion.store import NewEvent, event_append

from .models import Agent, Enrollment, Program
from .terms import program_terms

CODE_PATTERN = re.compile(r"^[A-Z0-9]{3,32}$")
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def normalise_email(email: str) -> str:
    """Trim and lower-case; plus-addressing is kept as given (PRODUCT.md, Attribution)."""
    return email.strip().lower()


_PROGRAM_FIELDS = {
    "name", "referral_type", "referral_value", "referral_currency", "recurring_percent",
    "recurring_duration_months", "support_percent", "attribution_window_days", "hold_days",
    "payout_frequency", "payout_threshold", "conflict_mode", "enrollment_mode",
}


def program_check(program: Program) -> None:
    """Validate (and normalise) a program's terms before it is saved; raise ``ApplicationError``."""
    if not (program.name or "").strip():
        raise ApplicationError("a program needs a name", field="name")
    program.name = program.name.strip()
    if program.referral_type not in Program.ReferralType.values:
        raise ApplicationError("referral commission type is percent or fixed", field="referralCommission")
    for field, choices in (("payout_frequency", Program.PayoutFrequency), ("conflict_mode", Program.ConflictMode),
                           ("enrollment_mode", Program.EnrollmentMode)):
        if getattr(program, field) not in choices.values:
            raise ApplicationError(f"{field} must be one of {', '.join(choices.values)}", field=field)
    for field in ("attribution_window_days", "hold_days"):
        value = getattr(program, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ApplicationError(f"{field} must be a whole number of days, 0 or more", field=field)
    months = program.recurring_duration_months
    if months is not None and (not isinstance(months, int) or isinstance(months, bool) or months < 0):
        raise ApplicationError("durationMonths must be a whole number, 0 or more, or null", field="durationMonths")
    try:
        for field in ("referral_value", "recurring_percent", "support_percent"):
            setattr(program, field, Decimal(str(getattr(program, field))))
    except ArithmeticError:
        raise ApplicationError("commission values must be decimal numbers", field="referralCommission") from None
    if program.referral_type == Program.ReferralType.FIXED:
        try:
            program.referral_currency = normalise_currency(program.referral_currency)
            to_minor(Decimal(program.referral_value).normalize(), program.referral_currency)
        except MoneyError as exc:
            raise ApplicationError(str(exc), field="referralCommission") from None
    for field in ("referral_value", "recurring_percent", "support_percent"):
        value = getattr(program, field)
        if not value.is_finite() or value < 0:
            raise ApplicationError(f"{field} must not be negative", field=field)
        model_field = Program._meta.get_field(field)
        digits = value.normalize().as_tuple()
        if isinstance(digits.exponent, int) and -digits.exponent > model_field.decimal_places:
            raise ApplicationError(f"{field} has more than {model_field.decimal_places} decimal places", field=field)
        is_percent = field != "referral_value" or program.referral_type == Program.ReferralType.PERCENT
        if is_percent and value > 100:
            raise ApplicationError(f"{field} is a percentage, at most 100", field=field)
        if value >= Decimal(10) ** (model_field.max_digits - model_field.decimal_places):
            raise ApplicationError(f"{field} is too large", field=field)
    if program.referral_type == Program.ReferralType.PERCENT:
        program.referral_currency = ""
    thresholds = {}
    for currency, amount in (program.payout_threshold or {}).items():
        try:
            code = normalise_currency(currency)
        except MoneyError as exc:
            raise ApplicationError(str(exc), field="payoutThreshold") from None
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            raise ApplicationError("thresholds are non-negative integers in minor units", field="payoutThreshold")
        thresholds[code] = amount
    program.payout_threshold = thresholds


def program_create(*, workspace: Workspace, product: Product, name: str, **terms: Any) -> Program:
    """Create a program; unspecified terms take PRODUCT.md's defaults."""
    if product.workspace_id != workspace.id:
        raise ApplicationError("unknown productId", field="productId", status_code=404, code="not_found")
    unknown = set(terms) - _PROGRAM_FIELDS
    if unknown:
        raise ApplicationError(f"unknown program fields: {', '.join(sorted(unknown))}")
    program = Program(workspace=workspace, product=product, name=name, **terms)
    program_check(program)
    program.save()
    return program


def program_update(*, program: Program, **terms: Any) -> Program:
    """Change a program's current terms; approved enrollments keep their snapshot."""
    unknown = set(terms) - _PROGRAM_FIELDS
    if unknown:
        raise ApplicationError(f"unknown program fields: {', '.join(sorted(unknown))}")
    for field, value in terms.items():
        setattr(program, field, value)
    program.updated_at = timezone.now()
    program_check(program)
    program.save()
    return program


def agent_create(*, workspace: Workspace, email: str, name: str) -> Agent:
    """Create an agent; the email is normalised (it also refuses self-referral)."""
    email = normalise_email(email or "")
    try:
        validate_email(email)
    except ValidationError:
        raise ApplicationError("a valid email is required", field="email") from None
    if not (name or "").strip():
        raise ApplicationError("an agent needs a name", field="name")
    try:
        with transaction.atomic():
            return Agent.objects.create(workspace=workspace, email=email, name=name.strip()[:200])
    except IntegrityError:
        raise ConflictError("an agent with this email already exists", field="email",
                            code="duplicate_agent") from None


def enrollment_apply(*, agent: Agent, program: Program, actor: str = "") -> Enrollment:
    """Enroll an agent (status ``applied``); an ``open`` program approves at once."""
    if agent.workspace_id != program.workspace_id:
        raise ApplicationError("agent and program belong to different workspaces", status_code=404,
                               code="not_found")
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(workspace_id=agent.workspace_id, agent=agent, program=program)
    except IntegrityError:
        raise ConflictError("the agent is already enrolled in this program", code="duplicate_enrollment") from None
    if program.enrollment_mode == Program.EnrollmentMode.OPEN:
        enrollment = enrollment_approve(enrollment=enrollment, actor=actor or "system:open-enrollment")
    return enrollment


def _new_code(agent: Agent) -> str:
    """Generate a code from the agent's name, free in EVERY workspace.

    Uniqueness is only required per workspace (PRODUCT.md), but ``/r/<code>`` carries no
    workspace, so generated codes avoid every workspace's codes and a link is never ambiguous.
    """
    stem = re.sub(r"[^A-Z0-9]", "", agent.name.upper())[:6] or "REF"
    for attempt in range(30):
        length = 4 if attempt < 20 else 6
        code = stem + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(length))
        if not Enrollment.objects.filter(referral_code=code).exists():
            return code
    raise ConflictError("could not generate a free referral code; choose one")


def _decision_terms(enrollment: Enrollment, decision: str) -> dict[str, Any]:
    """The terms snapshot a decision event carries: never null (PRODUCT.md, Agents and programs).

    Approval and removal carry the enrollment's own snapshot (taken at approval); a rejection
    carries the program's terms at the moment of the decision, i.e. the terms that were refused.
    The rejected enrollment row itself keeps ``terms`` null: it never ran under any terms.
    """
    if decision != "rejected" and enrollment.terms is not None:
        return enrollment.terms
    return program_terms(enrollment.program)


def _decision_event(enrollment: Enrollment, decision: str, actor: str) -> None:
    event_append(NewEvent(
        workspace_id=enrollment.workspace_id,
        source="operator",
        source_event_id=f"enrollment:{enrollment.id}:{decision}",
        type=f"enrollment.{decision}",
        occurred_at=enrollment.decided_at or timezone.now(),
        data={
            "enrollment_id": enrollment.id,
            "agent_id": enrollment.agent_id,
            "agent_email": enrollment.agent.email,
            "program_id": enrollment.program_id,
            "product_id": enrollment.program.product_id,
            "referral_code": enrollment.referral_code,
            "terms": _decision_terms(enrollment, decision),
            "reason": enrollment.reason,
        },
        actor=actor,
    ))


@transaction.atomic
def enrollment_approve(*, enrollment: Enrollment, referral_code: str | None = None, actor: str = "",
                       reason: str = "") -> Enrollment:
    """Approve: snapshot the program's terms, fix the referral code, append ``enrollment.approved``."""
    enrollment = Enrollment.objects.select_for_update().select_related("agent", "program").get(pk=enrollment.pk)
    if enrollment.status != Enrollment.Status.APPLIED:
        raise ConflictError(f"cannot approve an enrollment that is {enrollment.status}", code="invalid_state")
    if referral_code:
        code = referral_code.strip().upper()
        if not CODE_PATTERN.match(code):
            raise ApplicationError("a referral code is 3–32 letters A–Z and digits", field="referralCode")
        if Enrollment.objects.filter(workspace_id=enrollment.workspace_id, referral_code=code).exists():
            raise ConflictError("this referral code is taken in the workspace", field="referralCode",
                                code="code_taken")
    else:
        code = _new_code(enrollment.agent)
    enrollment.status = Enrollment.Status.APPROVED
    enrollment.referral_code = code
    enrollment.terms = program_terms(enrollment.program)
    enrollment.reason = (reason or "").strip()
    enrollment.decided_at = timezone.now()
    try:
        with transaction.atomic():  # a racing approval may take the code between check and save
            enrollment.save()
    except IntegrityError:
        raise ConflictError("this referral code is taken in the workspace", field="referralCode",
                            code="code_taken") from None
    _decision_event(enrollment, "approved", actor)
    return enrollment


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("a reason is required", field="reason")
    return reason


@transaction.atomic
def enrollment_reject(*, enrollment: Enrollment, reason: str, actor: str = "") -> Enrollment:
    """Reject an application, with a reason; appends ``enrollment.rejected``."""
    reason = _reason(reason)
    enrollment = Enrollment.objects.select_for_update().select_related("agent", "program").get(pk=enrollment.pk)
    if enrollment.status != Enrollment.Status.APPLIED:
        raise ConflictError(f"cannot reject an enrollment that is {enrollment.status}", code="invalid_state")
    enrollment.status = Enrollment.Status.REJECTED
    enrollment.reason = reason
    enrollment.decided_at = timezone.now()
    enrollment.save()
    _decision_event(enrollment, "rejected", actor)
    return enrollment


@transaction.atomic
def enrollment_remove(*, enrollment: Enrollment, reason: str, actor: str = "") -> Enrollment:
    """Remove an approved agent: no new attribution or commission; earned entries stay payable."""
    reason = _reason(reason)
    enrollment = Enrollment.objects.select_for_update().select_related("agent", "program").get(pk=enrollment.pk)
    if enrollment.status != Enrollment.Status.APPROVED:
        raise ConflictError(f"cannot remove an enrollment that is {enrollment.status}", code="invalid_state")
    enrollment.status = Enrollment.Status.REMOVED
    enrollment.reason = reason
    enrollment.decided_at = timezone.now()
    enrollment.save()
    _decision_event(enrollment, "removed", actor)
    return enrollment
