"""Attribution's writes: referral-link clicks and operator reassignments, both appended as events.

Neither touches a projection table. The click is an event in the store like any other; the view
(and the demo) only append it and redirect. A reassignment is the one way to move a customer to
another agent (PRODUCT.md, first touch wins): the console and the API both call
``customer_reassign``, which checks the request against the current state and appends
``attribution.reassigned``; the projector moves the customer from the event, so a rebuild moves
it again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.utils import timezone

from agents.models import Agent, Enrollment
from ingestion import projections
from ingestion.errors import ApplicationError, ConflictError, NotFoundError
from ingestion.ids import new_id
from ingestion.models import Workspace
from ingestion.store import NewEvent, event_append

from .domain import normalise_email
from .models import Customer

_CLICK_ID = re.compile(r"^clk_[a-z0-9]{8,36}$")


@dataclass(frozen=True)
class ClickRecorded:
    """A stored click: its id, the event, where to send the visitor, and the cookies' lifetime."""

    click_id: str
    event_id: str
    position: int
    redirect_url: str
    max_age: int


def ip_hash(ip: str) -> str:
    """Return the salted SHA-256 of an IP address, so no raw IP is ever stored."""
    if not ip:
        return ""
    return hashlib.sha256(f"{settings.SECRET_KEY}:refairn-ip:{ip}".encode()).hexdigest()


def valid_click_id(value: str | None) -> str:
    """Return ``value`` when it looks like one of our click ids (a cookie is untrusted input)."""
    return value if value and _CLICK_ID.match(value) else ""


def with_query(url: str, params: dict[str, str]) -> str:
    """Add ``params`` to ``url``, keeping its existing query (our keys replace any same-named ones)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def landing_target(product_url: str, requested: str | None) -> str:
    """Return where the visitor lands: ``requested`` (``?to=``) when it stays on the product's site.

    A relative path is joined to the product's origin; an absolute URL must have the product URL's
    scheme and host. Anything else falls back to the product URL, so the link is never an open
    redirect.
    """
    if not requested:
        return product_url
    base = urlsplit(product_url)
    if requested.startswith("/") and not requested.startswith("//") and "\\" not in requested:
        target = urlsplit(requested)
        return urlunsplit((base.scheme, base.netloc, target.path, target.query, target.fragment))
    target = urlsplit(requested)
    if target.scheme == base.scheme and target.netloc.lower() == base.netloc.lower():
        return requested
    return product_url


def click_record(*, enrollment: Enrollment, ip: str = "", user_agent: str = "", referrer: str = "",
                 requested_landing: str | None = None, first_click_id: str = "",
                 occurred_at: datetime | None = None) -> ClickRecorded:
    """Append ``click.recorded`` for an approved enrollment's code and say where to redirect.

    ``first_click_id`` is the visitor's earlier click (the ``refairn_click`` cookie); the projector
    follows it to the visitor's first click, where the attribution window starts.
    """
    product_url = enrollment.program.product.url
    click_id = new_id("clk", 24)
    landing = landing_target(product_url, requested_landing)
    first = valid_click_id(first_click_id) or click_id
    appended = event_append(NewEvent(
        workspace_id=enrollment.workspace_id,
        source="link",
        source_event_id=click_id,
        type="click.recorded",
        occurred_at=occurred_at or timezone.now(),
        data={
            "click_id": click_id,
            "referral_code": enrollment.referral_code,
            "landing_url": landing,
            "referrer": referrer[:2000],
            "ip_hash": ip_hash(ip),
            "user_agent": user_agent[:1000],
            "first_click_id": first,
        },
    ))
    terms = enrollment.terms or {}
    days = terms.get("attribution_window_days", enrollment.program.attribution_window_days)
    return ClickRecorded(
        click_id=click_id, event_id=appended.event_id, position=appended.position,
        redirect_url=with_query(landing, {"ref": enrollment.referral_code or "", "rf_click": click_id}),
        max_age=int(days) * 86400,
    )


@dataclass(frozen=True)
class Reassigned:
    """An appended ``attribution.reassigned`` event and what it asks the projector to do."""

    event_id: str
    position: int
    customer_id: str
    agent_id: str
    enrollment_id: str
    previous_agent_id: str


def reassignment_enrollments(*, customer: Customer, agent: Agent) -> list[Enrollment]:
    """The agent's approved enrollments a customer may move to: the customer's product first."""
    rows = list(Enrollment.objects.select_related("program")
                .filter(workspace_id=customer.workspace_id, agent=agent, status=Enrollment.Status.APPROVED)
                .order_by("decided_at", "id"))
    return sorted(rows, key=lambda e: e.program.product_id != customer.product_id)


def customer_reassign(*, workspace: Workspace, customer_id: str, agent_id: str, reason: str, actor: str,
                      enrollment_id: str | None = None, now: datetime | None = None) -> Reassigned:
    """Move a customer to another agent: append ``attribution.reassigned`` (operator, with a reason).

    The only way to move an attributed customer. Payments already attributed stay with the agent
    who earned them; later ones follow the new agent. The request is checked here against the
    current state, so the operator gets an answer at once (400 no reason or self-referral, 404
    unknown customer, agent or enrollment, 409 no approved enrollment or already this agent's);
    the projector still decides from the event alone, and records a refusal if the store
    disagrees by the time it applies it.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("a reason is required to reassign a customer", field="reason")
    if "attribution" in projections.registered():
        projections.run_projection("attribution")  # decide against the latest customers
    customer = Customer.objects.filter(workspace_id=workspace.id, id=customer_id).first()
    if customer is None:
        raise NotFoundError("unknown customerId", field="customerId")
    agent = Agent.objects.filter(workspace_id=workspace.id, id=agent_id).first()
    if agent is None:
        raise NotFoundError("unknown agentId", field="agentId")
    candidates = reassignment_enrollments(customer=customer, agent=agent)
    if enrollment_id:
        candidates = [e for e in candidates if e.id == enrollment_id]
        if not candidates and not Enrollment.objects.filter(workspace_id=workspace.id, id=enrollment_id,
                                                            agent=agent).exists():
            raise NotFoundError("unknown enrollmentId for this agent", field="enrollmentId")
    if not candidates:
        raise ConflictError("the agent has no approved enrollment to take the customer", field="agentId",
                            code="enrollment_not_active")
    enrollment = candidates[0]
    if customer.agent_id == agent.id and customer.enrollment_id == enrollment.id:
        raise ConflictError("the customer is already attributed to this agent", field="agentId",
                            code="already_attributed")
    if customer.email and customer.email == normalise_email(agent.email):
        raise ApplicationError("a customer cannot be attributed to their own email (self-referral)",
                               field="agentId", code="self_referral")
    event_id = new_id("evt", 24)
    appended = event_append(NewEvent(
        workspace_id=workspace.id,
        source="operator",
        source_event_id=f"reassign:{customer.id}:{event_id}",
        type="attribution.reassigned",
        occurred_at=now or timezone.now(),
        data={
            "customer_id": customer.id,
            "customer_ref": customer.customer_ref or None,
            "email": customer.email or None,
            "agent_id": agent.id,
            "enrollment_id": enrollment.id,
            "referral_code": enrollment.referral_code,
            "previous_agent_id": customer.agent_id or None,
            "reason": reason,
        },
        actor=actor,
        event_id=event_id,
    ))
    return Reassigned(event_id=appended.event_id, position=appended.position, customer_id=customer.id,
                      agent_id=agent.id, enrollment_id=enrollment.id, previous_agent_id=customer.agent_id)
