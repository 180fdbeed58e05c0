"""Reads of programs, agents and enrollments, always scoped by workspace."""

from __future__ import annotations

from collections.abc import Iterable

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


def enrollment_for_link(*, code: str, business_id: str = "") -> Enrollment | None:
    """Return the approved enrollment a public ``/r/<code>`` link names, or ``None``.

    Codes are unique per workspace, and generated codes are unique across workspaces. Should two
    workspaces still hold the same chosen code, the bare link keeps naming the enrollment approved
    first (links already handed out never break because another business chose the same code);
    the later one's link carries ``?b=<businessId>`` (``referral_link_path``).
    """
    if not code:
        return None
    qs = Enrollment.objects.select_related("agent", "program", "program__product").filter(
        referral_code=code.strip().upper(), status=Enrollment.Status.APPROVED)
    if business_id:
        qs = qs.filter(workspace_id=business_id)
    return qs.order_by("decided_at", "id").first()


def program_list(*, workspace_id: str) -> QuerySet[Program]:
    return Program.objects.filter(workspace_id=workspace_id).select_related("product")


def program_get(*, workspace_id: str, program_id: str) -> Program | None:
    return program_list(workspace_id=workspace_id).filter(id=program_id).first()


def agent_list(*, workspace_id: str) -> QuerySet[Agent]:
    return Agent.objects.filter(workspace_id=workspace_id)


def agent_get(*, workspace_id: str, agent_id: str) -> Agent | None:
    return agent_list(workspace_id=workspace_id).filter(id=agent_id).first()


def enrollment_list(*, workspace_id: str) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(workspace_id=workspace_id).select_related("agent", "program")


def enrollment_get(*, workspace_id: str, enrollment_id: str) -> Enrollment | None:
    return enrollment_list(workspace_id=workspace_id).filter(id=enrollment_id).first()


def agent_exists(workspace_id: str, agent_id: str) -> bool:
    """Is ``agent_id`` an agent of the workspace? (a registered lookup, for support events)"""
    return Agent.objects.filter(workspace_id=workspace_id, id=agent_id).exists()


def referral_codes_active(workspace_id: str, codes: Iterable[str]) -> set[str]:
    """Return which of ``codes`` (upper-cased) belong to approved enrollments: one query for a batch.

    A registered lookup: the CSV importer checks a whole batch of rows' agent codes with it.
    """
    wanted = {code.strip().upper() for code in codes if code and code.strip()}
    if not wanted:
        return set()
    return set(
        Enrollment.objects.filter(workspace_id=workspace_id, referral_code__in=wanted,
                                  status=Enrollment.Status.APPROVED).values_list("referral_code", flat=True)
    )
