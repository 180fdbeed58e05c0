"""Reads of programs, agents and enrollments, always scoped by workspace."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Agent, Enrollment, Program


def enrollment_by_code(*, workspace_id: str, code: str) -> Enrollment | None:
    """Return the enrollment owning ``code`` (matched case-insensitively), whatever its status."""
    if not code:
        return None
    return (
        Enrollment.objects.select_related("agent", "program", "program__product")
        .filter(workspace_id=workspace_id, referral_code=code.strip().upper())
        .first()
    )


def referral_code_active(workspace_id: str, code: str) -> bool:
    """Is ``code`` the code of an approved enrollment in the workspace? (a registered lookup)"""
    enrollment = enrollment_by_code(workspace_id=workspace_id, code=code)
    return enrollment is not None and enrollment.status == Enrollment.Status.APPROVED


def program_list(*, workspace_id: str) -> QuerySet[Program]:
    return Program.objects.filter(workspace_id=workspace_id).select_related("product")


def agent_list(*, workspace_id: str) -> QuerySet[Agent]:
    return Agent.objects.filter(workspace_id=workspace_id)


def enrollment_list(*, workspace_id: str) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(workspace_id=workspace_id).select_related("agent", "program")
