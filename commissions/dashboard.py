"""The agent dashboard (``/agent/``): an agent's own programs, customers, ledger, payouts and explains.

Isolation is by construction: every query starts from the logged-in user's ``Agent``
(``request.user.agent``) and filters by that agent's workspace AND id. An object is looked up
with both, so a guessed id of another agent or another workspace answers 404, exactly like an id
that does not exist (no "exists but forbidden" oracle). Nothing here writes: the views only
read through ``commissions.selectors`` (statuses, balances, explain) and the projection tables.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from agents.models import Agent, Enrollment, Program
from attribution.links import referral_link_path
from attribution.models import Click, Customer
from ingestion.models import Event
from ingestion.money import from_minor

from . import selectors
from .figures import earnings_per_month
from .models import LedgerEntry, Payout

PAGE_SIZE = 50


class AgentLoginView(auth_views.LoginView):
    """Log in with the username (or email, when it is the username) and password of ``Agent.user``."""

    template_name = "agent/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return reverse("agent-home")


class AgentLogoutView(auth_views.LogoutView):
    next_page = "agent-login"


def mask_email(email: str) -> str:
    """Hide an address but keep it recognisable to the agent who referred it: ``m***@c***.com``."""
    local, _, domain = (email or "").partition("@")
    if not local or not domain:
        return "—" if not email else email[:1] + "***"
    tld = domain.rsplit(".", 1)[1] if "." in domain else ""
    return f"{local[:1]}***@{domain[:1]}***" + (f".{tld}" if tld else "")


def money(amount: int, currency: str) -> str:
    return f"{from_minor(amount, currency)} {currency}"


AgentView = Callable[..., HttpResponse]


def agent_view(view: AgentView) -> Callable[..., HttpResponse]:
    """Require a login that belongs to an agent, and pass that agent to the view.

    A logged-in user with no agent (an operator, say) gets a 403 page, never another agent's data.
    """

    @functools.wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        agent = Agent.objects.select_related("workspace").filter(user_id=request.user.pk).first()
        if agent is None:
            return render(request, "agent/not_an_agent.html", status=403)
        return view(request, agent, *args, **kwargs)

    return wrapper


# --- rows for the templates --------------------------------------------------------------------


def _programs(agent: Agent) -> dict[str, Program]:
    ids = agent.enrollments.values_list("program_id", flat=True)
    return {p.id: p for p in Program.objects.filter(workspace_id=agent.workspace_id, id__in=list(ids))}


def ledger_rows(agent: Agent, entries: list[LedgerEntry], pairs: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """One display row per entry: status, masked customer, program, amount."""
    customers = dict(Customer.objects.filter(workspace_id=agent.workspace_id,
                                             id__in={e.customer_id for e in entries if e.customer_id})
                     .values_list("id", "email"))
    programs = _programs(agent)
    return [{
        "id": entry.id,
        "kind": entry.kind,
        "cause": entry.cause,
        "amount": money(entry.amount, entry.currency),
        "status": selectors.entry_status(entry, pairs),
        "customer": mask_email(customers.get(entry.customer_id, "")),
        "program": programs[entry.program_id].name if entry.program_id in programs else "—",
        "occurred_at": entry.occurred_at,
        "hold_until": entry.hold_until,
    } for entry in entries]


def balance_rows(agent: Agent, as_of: datetime) -> list[dict[str, Any]]:
    rows = []
    for balance in selectors.agent_balance(workspace_id=agent.workspace_id, agent_id=agent.id, as_of=as_of):
        currency = balance.currency
        rows.append({"currency": currency, **{
            name: from_minor(getattr(balance, name), currency)
            for name in ("pending", "earned", "payable", "paid", "on_hold", "reversed", "total", "threshold")}})
    return rows


def payout_rows(agent: Agent) -> list[dict[str, Any]]:
    return [{"id": p.id, "amount": money(p.amount, p.currency), "status": p.status, "created_at": p.created_at,
             "confirmed_at": p.confirmed_at, "reference": p.reference}
            for p in selectors.payout_list(workspace_id=agent.workspace_id, agent_id=agent.id)]


def enrollment_cards(request: HttpRequest, agent: Agent) -> list[dict[str, Any]]:
    """Per program: status, code and link (approved codes only), clicks, leads and customers."""
    enrollments = list(agent.enrollments.select_related("program").order_by("program__name"))
    ids = [e.id for e in enrollments]
    clicks = dict(Click.objects.filter(workspace_id=agent.workspace_id, agent_id=agent.id, enrollment_id__in=ids)
                  .order_by().values("enrollment_id").annotate(n=Count("id")).values_list("enrollment_id", "n"))
    statuses: dict[str, dict[str, int]] = {}
    for row in (Customer.objects.filter(workspace_id=agent.workspace_id, agent_id=agent.id, enrollment_id__in=ids)
                .order_by().values("enrollment_id", "status").annotate(n=Count("id"))):
        statuses.setdefault(row["enrollment_id"], {})[row["status"]] = row["n"]
    cards = []
    for enrollment in enrollments:
        counts = statuses.get(enrollment.id, {})
        approved = enrollment.status == Enrollment.Status.APPROVED and enrollment.referral_code
        cards.append({
            "enrollment": enrollment,
            "program": enrollment.program,
            "code": enrollment.referral_code if approved else "",
            "link": request.build_absolute_uri(referral_link_path(enrollment)) if approved else "",
            "clicks": clicks.get(enrollment.id, 0),
            "leads": counts.get(Customer.Status.LEAD, 0),
            "customers": counts.get(Customer.Status.CUSTOMER, 0),
            "cancelled": counts.get(Customer.Status.CANCELLED, 0),
        })
    return cards


# --- views -------------------------------------------------------------------------------------


@agent_view
def overview(request: HttpRequest, agent: Agent) -> HttpResponse:
    """Programs with links and counts, balances, the latest ledger lines, payouts, earnings chart."""
    now = timezone.now()
    entries, pairs = selectors.commission_list(workspace_id=agent.workspace_id, as_of=now, agent_id=agent.id)
    return render(request, "agent/overview.html", {
        "agent": agent,
        "cards": enrollment_cards(request, agent),
        "balances": balance_rows(agent, now),
        "ledger": ledger_rows(agent, list(entries[:10]), pairs),
        "ledger_total": entries.count(),
        "payouts": payout_rows(agent),
        "chart": earnings_per_month(workspace_id=agent.workspace_id, agent_id=agent.id, now=now),
    })


@agent_view
def program_detail(request: HttpRequest, agent: Agent, enrollment_id: str) -> HttpResponse:
    """One program of the agent: link and code, counts, and its customers with masked emails."""
    enrollment = agent.enrollments.select_related("program").filter(id=enrollment_id).first()
    if enrollment is None:
        raise Http404("no such program")
    card = next(c for c in enrollment_cards(request, agent) if c["enrollment"].id == enrollment.id)
    customers = Customer.objects.filter(workspace_id=agent.workspace_id, agent_id=agent.id,
                                        enrollment_id=enrollment.id).order_by("-created_position")
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"email": mask_email(c.email), "status": c.status, "since": c.created_at,
             "via": c.get_attributed_via_display(), "payments": c.payments_count} for c in page]
    return render(request, "agent/program.html", {"agent": agent, "card": card, "customers": rows, "page": page})


@agent_view
def ledger(request: HttpRequest, agent: Agent) -> HttpResponse:
    """Every ledger line of the agent with its status now, filterable by status, paginated."""
    status = request.GET.get("status") or None
    if status not in {None, *selectors.STATUSES}:
        status = None
    now = timezone.now()
    entries, pairs = selectors.commission_list(workspace_id=agent.workspace_id, as_of=now, agent_id=agent.id,
                                               status=status)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "agent/ledger.html", {
        "agent": agent, "ledger": ledger_rows(agent, list(page), pairs), "page": page, "status": status or "",
        "statuses": selectors.STATUSES,
    })


_COMMISSION_ID = re.compile(r"com_\w+")


def _event_row(event: Event | None) -> dict[str, Any] | None:
    """What an agent may see of an event: its type, id and time (never its data: emails, others' ids)."""
    if event is None:
        return None
    return {"type": event.type, "event_id": event.event_id, "occurred_at": event.occurred_at, "source": event.source}


def _history_rows(agent: Agent, entry: LedgerEntry, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The later events of a commission, each described by the agent's own lines only.

    The ledger's trail note of a refund names every commission of the payment, possibly another
    agent's (a support commission shares the payment), so the effect shown here is rebuilt from
    this agent's reversal lines of the same commission.
    """
    family = list(LedgerEntry.objects.filter(workspace_id=agent.workspace_id, agent_id=agent.id,
                                             base_id=entry.base_id))
    own_ids = {e.id for e in family}
    reversals = {e.cause_event_id: e for e in family if e.kind == LedgerEntry.Kind.REVERSAL}
    rows = []
    for item in history:
        effect = item["effect"]
        if item["eventId"] in reversals:
            line = reversals[item["eventId"]]
            effect = f"reversed {money(-line.amount, line.currency)} ({line.id})"
        elif not item["type"].startswith("payout.") and set(_COMMISSION_ID.findall(effect)) - own_ids:
            effect = ""  # names another agent's commission: show only that the event happened
        rows.append({"type": item["type"], "event_id": item["eventId"], "occurred_at": item["occurredAt"],
                     "effect": effect})
    return rows


@agent_view
def commission_detail(request: HttpRequest, agent: Agent, commission_id: str) -> HttpResponse:
    """The explain trail of one of the agent's commissions (or reversals): why, how much, what since."""
    now = timezone.now()
    found = selectors.commission_get(workspace_id=agent.workspace_id, commission_id=commission_id, as_of=now)
    if found is None or found[0].agent_id != agent.id:
        raise Http404("no such commission")
    entry, status = found
    trail = selectors.commission_explain(workspace_id=agent.workspace_id, entry=entry)
    attribution = trail["attribution"]
    own_attribution = attribution.get("agentId") == agent.id
    customer = Customer.objects.filter(workspace_id=agent.workspace_id, id=entry.customer_id).first()
    payment = trail["payment"]
    payment_data = payment.data if payment is not None else {}
    reversal = trail["reversal"]
    program = Program.objects.filter(workspace_id=agent.workspace_id, id=entry.program_id).first()
    return render(request, "agent/commission.html", {
        "agent": agent,
        "entry": entry,
        "status": status,
        "amount": money(entry.amount, entry.currency),
        "program": program,
        "customer": mask_email(customer.email) if customer else "—",
        "payment": {
            "event": _event_row(payment),
            "ref": entry.payment_ref,
            "amount": money(entry.payment_amount, entry.payment_currency),
            "plan": payment_data.get("plan", ""),
        },
        "attribution": {
            "own": own_attribution,
            "via": dict(Customer.Via.choices).get(attribution.get("via") or "", "—"),
            "code": attribution.get("referralCode") if own_attribution else "",
            "sequence": attribution.get("sequence"),
            "first_payment_at": attribution.get("firstPaymentAt"),
            "decided_by": _event_row(attribution.get("decidedEvent")),
            "events": [_event_row(e) for e in attribution.get("events") or []] if own_attribution else [],
        },
        "terms_event": _event_row(trail["enrollment"]["event"]),
        "terms": trail["enrollment"]["terms"] or {},
        "formula": trail["formula"] or {},
        "reversal": None if reversal is None else {
            "of": reversal["reversesCommissionId"],
            "cause": reversal["cause"],
            "reason": reversal["reason"],
            "event": _event_row(reversal["causeEvent"]),
            "expression": (reversal["formula"] or {}).get("expression", ""),
        },
        "history": _history_rows(agent, entry, trail["history"]),
        "payout_id": selectors.payout_ids_for([entry.id]).get(entry.id),
    })


@agent_view
def payout_detail(request: HttpRequest, agent: Agent, payout_id: str) -> HttpResponse:
    """One of the agent's payouts with the ledger lines it covers."""
    payout = selectors.payout_get(workspace_id=agent.workspace_id, payout_id=payout_id)
    if payout is None or payout.agent_id != agent.id:
        raise Http404("no such payout")
    entries = selectors.payout_entries(payout)
    now = timezone.now()
    annotated = list(selectors.annotate_status(LedgerEntry.objects.filter(id__in=[e.id for e in entries]), now)
                     .order_by("created_position", "id"))
    pairs = selectors.payable_pairs(workspace_id=agent.workspace_id, as_of=now, agent_id=agent.id,
                                    currency=payout.currency)
    return render(request, "agent/payout.html", {
        "agent": agent, "payout": payout, "amount": money(payout.amount, payout.currency),
        "ledger": ledger_rows(agent, annotated, pairs), "confirmed": payout.status == Payout.Status.CONFIRMED,
    })
