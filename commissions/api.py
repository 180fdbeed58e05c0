"""The ledger's HTTP API: commissions, explain, balances, payouts (Bearer key, workspace-scoped).

Views only parse, call one selector or service, and format; status derivation lives in
``commissions.selectors`` and writes in ``commissions.services``. Every list is cursor-paginated
(``refairn.pagination``) and an id of another workspace answers 404.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent
from ingestion.api_io import (
    DETAIL_ERRORS,
    DETAIL_QUERY_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    error_responses,
    invalid,
    iso,
    parse_currency,
    parse_datetime,
    query_choice,
    read_json_object,
    require_business_id,
)
from ingestion.errors import NotFoundError
from ingestion.models import Event
from ingestion.money import from_minor
from refairn.pagination import CURSOR_PARAMETERS, cursor_paginate, paginated_response, paginated_serializer

from . import selectors, services
from .models import LedgerEntry, Payout

# --- formatting ---------------------------------------------------------------------------------


def entry_json(entry: LedgerEntry, status: str, payout_id: str | None = None) -> dict[str, Any]:
    """One ledger entry as the API answers it."""
    return {
        "commissionId": entry.id,
        "agentId": entry.agent_id,
        "customerId": entry.customer_id or None,
        "kind": entry.kind,
        "amount": from_minor(entry.amount, entry.currency),
        "amountMinor": entry.amount,
        "currency": entry.currency,
        "status": status,
        "paymentRef": entry.payment_ref,
        "createdFromEventId": entry.created_from_event_id,
        "paymentEventId": entry.payment_event_id,
        "reversesCommissionId": entry.base_id if entry.kind == LedgerEntry.Kind.REVERSAL else None,
        "cause": entry.cause or None,
        "causeEventId": entry.cause_event_id or None,
        "programId": entry.program_id or None,
        "enrollmentId": entry.enrollment_id or None,
        "occurredAt": iso(entry.occurred_at),
        "effectiveAt": iso(entry.effective_at),
        "holdUntil": iso(entry.hold_until),
        "payoutId": payout_id,
        "formula": entry.formula,
    }


def entries_json(entries: list[LedgerEntry], pairs: set[tuple[str, str]]) -> list[dict[str, Any]]:
    payouts = selectors.payout_ids_for([e.id for e in entries])
    return [entry_json(e, selectors.entry_status(e, pairs), payouts.get(e.id)) for e in entries]


def payout_json(payout: Payout, entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "payoutId": payout.id,
        "agentId": payout.agent_id,
        "currency": payout.currency,
        "amount": from_minor(payout.amount, payout.currency),
        "amountMinor": payout.amount,
        "status": payout.status,
        "reference": payout.reference or None,
        "cutoff": iso(payout.cutoff),
        "createdAt": iso(payout.created_at),
        "createdEventId": payout.created_event_id,
        "confirmedAt": iso(payout.confirmed_at),
        "confirmedEventId": payout.confirmed_event_id or None,
        "rejectionReason": payout.rejection_reason or None,
    }
    if entries is not None:
        out["entries"] = entries
    return out


def event_json(event: Event | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "eventId": event.event_id, "position": event.position, "type": event.type, "source": event.source,
        "occurredAt": iso(event.occurred_at), "recordedAt": iso(event.recorded_at), "actor": event.actor,
        "data": event.data,
    }


def plain(value: Any) -> Any:
    """Make an explain structure JSON-ready: events, datetimes, nested dicts and lists."""
    if isinstance(value, Event):
        return event_json(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def as_of_param(request: Request) -> datetime:
    """``?asOf=`` (ISO 8601; a bare date means the end of that day, UTC), default now."""
    raw = request.query_params.get("asOf")
    if raw is None or raw == "":
        return timezone.now()
    value = parse_datetime(raw, "asOf")
    if len(raw.strip()) == 10:
        value = value.replace(hour=23, minute=59, second=59, microsecond=999999)
    return value


def _actor(request: Request) -> str:
    return f"api-key:{request.auth.id}"


# --- documentation ------------------------------------------------------------------------------

_MONEY_STR = {"help_text": 'Major units as a decimal string, e.g. "19.80".'}
ENTRY_FIELDS: dict[str, serializers.Field] = {
    "commissionId": serializers.CharField(help_text="com_…, stable across rebuilds."),
    "agentId": serializers.CharField(help_text="The agent who earns it (agt_…)."),
    "customerId": serializers.CharField(allow_null=True, help_text="The customer whose payment earned it (cus_…)."),
    "kind": serializers.ChoiceField(choices=selectors.KINDS, help_text="referral | recurring | support | reversal."),
    "amount": serializers.CharField(help_text='Signed, major units, e.g. "19.80" or "-9.90" for a reversal.'),
    "amountMinor": serializers.IntegerField(help_text="The same amount in integer minor units."),
    "currency": serializers.CharField(help_text="ISO 4217 code."),
    "status": serializers.ChoiceField(
        choices=selectors.STATUSES,
        help_text="Derived at read time (as of `asOf`): pending (in hold; the business view's 'approved (in "
                  "hold)'), earned, payable (agent's earned balance ≥ threshold), paid, reversed, on_hold."),
    "paymentRef": serializers.CharField(help_text="The payment (one payment earns once, whatever the channel)."),
    "createdFromEventId": serializers.CharField(help_text="The event whose application created this entry."),
    "paymentEventId": serializers.CharField(help_text="The payment.succeeded event."),
    "reversesCommissionId": serializers.CharField(allow_null=True, help_text="Reversals: the commission reversed."),
    "cause": serializers.ChoiceField(choices=["refund", "dispute", "void"], allow_null=True,
                                     help_text="Reversals: why."),
    "causeEventId": serializers.CharField(allow_null=True, help_text="Reversals: the refund/dispute/void event."),
    "programId": serializers.CharField(allow_null=True),
    "enrollmentId": serializers.CharField(allow_null=True, help_text="The enrollment whose snapshotted terms applied."),
    "occurredAt": serializers.DateTimeField(help_text="Payment time (the hold runs from it); reversals: cause time."),
    "effectiveAt": serializers.DateTimeField(help_text="From when the entry counts in `asOf` reads."),
    "holdUntil": serializers.DateTimeField(help_text="End of the hold period."),
    "payoutId": serializers.CharField(allow_null=True, help_text="The payout that covers it, if any."),
    "formula": serializers.DictField(help_text="The numbers behind the amount: base, rate, result, expression."),
}
ENTRY_OUT = inline_serializer("Commission", fields=ENTRY_FIELDS)
ENTRY_EXAMPLE = {
    "commissionId": "com_4f0k2m…", "agentId": "agt_9x…", "customerId": "cus_b1…", "kind": "referral",
    "amount": "19.80", "amountMinor": 1980, "currency": "USD", "status": "pending", "paymentRef": "pi_3PQ1x2",
    "createdFromEventId": "evt_8kq…", "paymentEventId": "evt_8kq…", "reversesCommissionId": None, "cause": None,
    "causeEventId": None, "programId": "prog_…", "enrollmentId": "enr_…", "occurredAt": "2024-05-01T12:05:00Z",
    "effectiveAt": "2024-05-01T12:05:00Z", "holdUntil": "2024-05-15T12:05:00Z", "payoutId": None,
    "formula": {"kind": "referral", "type": "percent", "base": 9900, "baseCurrency": "USD", "rate": "20",
                "fixed": None, "result": 1980, "currency": "USD",
                "expression": "round_half_up(9900 × 20 / 100) = 1980"},
}


def _event_doc(name: str, **kwargs: Any) -> serializers.Serializer:
    return inline_serializer(name, fields={
        "eventId": serializers.CharField(), "position": serializers.IntegerField(), "type": serializers.CharField(),
        "source": serializers.CharField(), "occurredAt": serializers.DateTimeField(),
        "recordedAt": serializers.DateTimeField(), "actor": serializers.CharField(allow_blank=True),
        "data": serializers.DictField(help_text="The canonical payload as stored."),
    }, **kwargs)


EXPLAIN_OUT = inline_serializer("CommissionExplanation", fields={
    "commission": ENTRY_OUT,
    "payment": _event_doc("ExplainEvent", allow_null=True, help_text="The payment.succeeded event."),
    "attribution": inline_serializer("ExplainAttribution", fields={
        "decidedEventId": serializers.CharField(help_text="The event that attributed the payment."),
        "decidedEvent": _event_doc("ExplainDecidedEvent", allow_null=True,
                                   help_text="The event that decided (payment, signup or reassignment)."),
        "customerId": serializers.CharField(),
        "agentId": serializers.CharField(),
        "supportAgentId": serializers.CharField(allow_blank=True),
        "enrollmentId": serializers.CharField(),
        "programId": serializers.CharField(),
        "sequence": serializers.IntegerField(allow_null=True, help_text="1 = the customer's first payment."),
        "firstPaymentAt": serializers.DateTimeField(allow_null=True),
        "customerCancelled": serializers.BooleanField(allow_null=True),
        "via": serializers.CharField(allow_blank=True, help_text="click | code | payment_metadata | reassignment."),
        "detail": serializers.CharField(allow_blank=True),
        "referralCode": serializers.CharField(allow_blank=True),
        "events": _event_doc("ExplainAttributionEvent", many=True,
                             help_text="The click, signup and deciding events behind the attribution."),
    }),
    "enrollment": inline_serializer("ExplainEnrollment", fields={
        "enrollmentId": serializers.CharField(), "programId": serializers.CharField(),
        "event": _event_doc("ExplainEnrollmentEvent", allow_null=True, help_text="The enrollment.approved event."),
        "terms": serializers.DictField(allow_null=True, help_text="The snapshotted terms that applied."),
    }),
    "formula": serializers.DictField(help_text="The commission's formula with its numbers."),
    "reversal": serializers.DictField(allow_null=True, help_text="Reversals: cause, cause event and formula."),
    "history": serializers.ListField(child=inline_serializer("ExplainHistoryItem", fields={
        "position": serializers.IntegerField(), "eventId": serializers.CharField(),
        "type": serializers.CharField(), "occurredAt": serializers.DateTimeField(),
        "effect": serializers.CharField(),
    }), help_text="Every later event that changed its status: refunds, disputes, voids, payouts."),
})
_BALANCE_FIELDS: dict[str, serializers.Field] = {"currency": serializers.CharField()}
for _name, _help in (
    ("pending", "In hold."), ("earned", "Hold passed; below the payout threshold."),
    ("payable", "Earned and at or above the threshold: what the next payout would pay."),
    ("paid", "In confirmed payouts."), ("onHold", "Under an open dispute."),
    ("reversed", "Taken back by reversals (a positive magnitude, already netted in the other figures)."),
    ("total", "Sum of all the agent's entries = pending + earned + payable + paid + onHold."),
    ("payoutThreshold", "The agent's payout threshold in this currency."),
):
    _BALANCE_FIELDS[_name] = serializers.CharField(help_text=f"{_help} Major units.")
    _BALANCE_FIELDS[f"{_name}Minor"] = serializers.IntegerField(help_text="The same in minor units.")
BALANCE_OUT = inline_serializer("AgentBalance", fields={
    "agentId": serializers.CharField(),
    "asOf": serializers.DateTimeField(help_text="The moment the balance describes (business time)."),
    "balances": serializers.ListField(child=inline_serializer("CurrencyBalance", fields=_BALANCE_FIELDS)),
})
PAYOUT_FIELDS: dict[str, serializers.Field] = {
    "payoutId": serializers.CharField(help_text="pay_…"),
    "agentId": serializers.CharField(),
    "currency": serializers.CharField(),
    "amount": serializers.CharField(help_text="Net amount, major units (payable entries minus clawbacks)."),
    "amountMinor": serializers.IntegerField(),
    "status": serializers.ChoiceField(choices=Payout.Status.values,
                                      help_text="created → confirmed; rejected if the ledger refused it."),
    "reference": serializers.CharField(allow_null=True, help_text="The transfer reference given at confirmation."),
    "cutoff": serializers.DateTimeField(allow_null=True),
    "createdAt": serializers.DateTimeField(),
    "createdEventId": serializers.CharField(),
    "confirmedAt": serializers.DateTimeField(allow_null=True),
    "confirmedEventId": serializers.CharField(allow_null=True),
    "rejectionReason": serializers.CharField(allow_null=True),
}
PAYOUT_OUT = inline_serializer("Payout", fields=PAYOUT_FIELDS)
PAYOUT_DETAIL = inline_serializer("PayoutDetail", fields={
    **PAYOUT_FIELDS, "entries": serializers.ListField(child=ENTRY_OUT, help_text="The entries it covers."),
})
PAYOUT_EXAMPLE = {
    "payoutId": "pay_k2…", "agentId": "agt_9x…", "currency": "USD", "amount": "19.80", "amountMinor": 1980,
    "status": "created", "reference": None, "cutoff": "2024-06-01T00:00:00Z", "createdAt": "2024-06-01T09:00:00Z",
    "createdEventId": "evt_…", "confirmedAt": None, "confirmedEventId": None, "rejectionReason": None,
}


class PayoutCreateIn(serializers.Serializer):
    businessId = serializers.CharField(help_text="Must be the key's workspace (403 otherwise).")  # noqa: N815
    agentId = serializers.CharField()  # noqa: N815
    currency = serializers.CharField(help_text="ISO 4217; one payout covers one currency.")
    cutoff = serializers.DateTimeField(required=False, allow_null=True,
                                       help_text="Only entries whose hold ended and that counted by then "
                                                 "(default and maximum: now).")


class PayoutConfirmIn(serializers.Serializer):
    businessId = serializers.CharField()  # noqa: N815
    reference = serializers.CharField(help_text="The transfer's reference, e.g. a bank transfer id.")


class VoidIn(serializers.Serializer):
    businessId = serializers.CharField()  # noqa: N815
    reason = serializers.CharField(help_text="Why the commission is voided (kept in the event).")


def _event_example(position: int, type_: str, source: str, at: str, data: dict[str, Any], actor: str = ""
                   ) -> dict[str, Any]:
    return {"eventId": f"evt_{type_.split('.')[0][:4]}{position}…", "position": position, "type": type_,
            "source": source, "occurredAt": at, "recordedAt": at, "actor": actor, "data": data}


_CLICK_EVENT = _event_example(12, "click.recorded", "link", "2024-04-28T08:00:00Z", {
    "click_id": "clk_7h…", "referral_code": "ADA", "landing_url": "https://app.example.com/?ref=ADA",
    "ip_hash": "5f1c…", "user_agent": "Mozilla/5.0"})
_SIGNUP_EVENT = _event_example(15, "customer.created", "api", "2024-05-01T12:00:00Z", {
    "customer_ref": "user_4812", "email": "jane@example.com", "name": "Jane Doe", "product_id": "prod_…",
    "referral_code": "ADA", "click_id": "clk_7h…"})
_PAYMENT_EVENT = _event_example(17, "payment.succeeded", "stripe", "2024-05-01T12:05:00Z", {
    "payment_ref": "pi_3PQ1x2", "customer_ref": "user_4812", "email": "jane@example.com", "amount": 9900,
    "currency": "USD"})
_ENROLLMENT_EVENT = _event_example(4, "enrollment.approved", "operator", "2024-04-01T10:00:00Z", {
    "enrollment_id": "enr_…", "agent_id": "agt_9x…", "program_id": "prog_…", "referral_code": "ADA",
    "terms": {"referral": {"type": "percent", "value": "20"}, "hold_days": 14}, "reason": ""}, actor="admin")
EXPLAIN_EXAMPLE = {
    "commission": {**ENTRY_EXAMPLE, "status": "paid", "payoutId": "pay_k2…"},
    "payment": _PAYMENT_EVENT,
    "attribution": {
        "decidedEventId": _SIGNUP_EVENT["eventId"], "decidedEvent": _SIGNUP_EVENT, "customerId": "cus_b1…",
        "agentId": "agt_9x…", "supportAgentId": "", "enrollmentId": "enr_…", "programId": "prog_…", "sequence": 1,
        "firstPaymentAt": "2024-05-01T12:05:00Z", "customerCancelled": False, "via": "click",
        "detail": "first click clk_7h… on code ADA → agent agt_9x…", "referralCode": "ADA",
        "events": [_CLICK_EVENT, _SIGNUP_EVENT],
    },
    "enrollment": {"enrollmentId": "enr_…", "programId": "prog_…", "event": _ENROLLMENT_EVENT,
                   "terms": _ENROLLMENT_EVENT["data"]["terms"]},
    "formula": ENTRY_EXAMPLE["formula"],
    "reversal": None,
    "history": [
        {"position": 40, "eventId": "evt_payo40…", "type": "payout.created", "occurredAt": "2024-06-01T09:00:00Z",
         "effect": "com_4f0k2m… included in payout pay_k2…"},
        {"position": 41, "eventId": "evt_payo41…", "type": "payout.confirmed", "occurredAt": "2024-06-02T09:00:00Z",
         "effect": "payout pay_k2… confirmed (reference bank transfer 2024-06-01 #4471): paid"},
    ],
}
PAYOUT_CONFIRMED_EXAMPLE = {
    **PAYOUT_EXAMPLE, "status": "confirmed", "reference": "bank transfer 2024-06-01 #4471",
    "confirmedAt": "2024-06-02T09:00:00Z", "confirmedEventId": "evt_…",
    "entries": [{**ENTRY_EXAMPLE, "status": "paid", "payoutId": "pay_k2…"}],
}


AS_OF = OpenApiParameter(
    "asOf", OpenApiTypes.DATETIME, OpenApiParameter.QUERY, required=False,
    description="Describe the ledger as the events up to this moment (business time, the events' occurredAt) "
                "determine it. ISO 8601; a bare date means the end of that day UTC. Default: now.")


# --- views --------------------------------------------------------------------------------------


class CommissionListView(APIView):
    """``GET /api/commissions``."""

    @extend_schema(
        operation_id="commissions_list", tags=["commissions"], summary="List ledger entries",
        description="The workspace's ledger entries, newest first, with their status derived as of `asOf`.",
        parameters=[
            *CURSOR_PARAMETERS, AS_OF,
            OpenApiParameter("agentId", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False),
            OpenApiParameter("status", {"type": "string", "enum": list(selectors.STATUSES)}, OpenApiParameter.QUERY,
                             required=False),
            OpenApiParameter("currency", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False),
            OpenApiParameter("kind", {"type": "string", "enum": list(selectors.KINDS)}, OpenApiParameter.QUERY,
                             required=False),
            OpenApiParameter("paymentRef", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False),
            OpenApiParameter("customerId", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False),
        ],
        responses={200: paginated_serializer("CommissionPage", ENTRY_OUT), **READ_ERRORS},
        examples=[OpenApiExample("page", response_only=True, status_codes=["200"],
                                 value={"data": [ENTRY_EXAMPLE], "hasMore": False, "nextCursor": None})],
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        currency = params.get("currency")
        qs, pairs = selectors.commission_list(
            workspace_id=request.auth.workspace_id, as_of=as_of_param(request),
            agent_id=params.get("agentId") or None,
            status=query_choice(request, "status", selectors.STATUSES),
            currency=parse_currency(currency) if currency else None,
            kind=query_choice(request, "kind", selectors.KINDS),
            payment_ref=params.get("paymentRef") or None,
            customer_id=params.get("customerId") or None,
        )
        page = cursor_paginate(request, qs, ordering=("-created_position", "-id"))
        return paginated_response(entries_json(page.rows, pairs), page)


def _entry_or_404(request: Request, commission_id: str, as_of: datetime) -> tuple[LedgerEntry, str]:
    found = selectors.commission_get(workspace_id=request.auth.workspace_id, commission_id=commission_id,
                                     as_of=as_of)
    if found is None:
        raise NotFoundError("Not found.")
    return found


class CommissionDetailView(APIView):
    """``GET /api/commissions/<id>``."""

    @extend_schema(operation_id="commissions_retrieve", tags=["commissions"], summary="Get one ledger entry",
                   parameters=[AS_OF], responses={200: ENTRY_OUT, **DETAIL_QUERY_ERRORS},
                   examples=[OpenApiExample("entry", response_only=True, status_codes=["200"], value=ENTRY_EXAMPLE)])
    def get(self, request: Request, commission_id: str) -> Response:
        entry, status = _entry_or_404(request, commission_id, as_of_param(request))
        return Response(entry_json(entry, status, selectors.payout_ids_for([entry.id]).get(entry.id)))


class CommissionExplainView(APIView):
    """``GET /api/commissions/<id>/explain``."""

    @extend_schema(
        operation_id="commissions_explain", tags=["commissions"], summary="Explain a ledger entry",
        description="The whole trail: the payment event, the attribution decision and the click/signup events "
                    "behind it, the enrollment event whose terms applied, the formula with its numbers, and "
                    "every later event that changed the entry's status (refund, dispute, void, payout).",
        parameters=[AS_OF], responses={200: EXPLAIN_OUT, **DETAIL_QUERY_ERRORS},
        examples=[OpenApiExample("explained", response_only=True, status_codes=["200"], value=EXPLAIN_EXAMPLE)],
    )
    def get(self, request: Request, commission_id: str) -> Response:
        entry, status = _entry_or_404(request, commission_id, as_of_param(request))
        trail = selectors.commission_explain(workspace_id=request.auth.workspace_id, entry=entry)
        body = {"commission": entry_json(entry, status, selectors.payout_ids_for([entry.id]).get(entry.id)),
                **plain(trail)}
        return Response(body)


def _refuse_unknown_fields(body: dict[str, Any], allowed: set[str]) -> None:
    """A misspelt field ("referance") must not be silently dropped from an operator's write: 400 naming it."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(f"unknown field {unknown[0]}", unknown[0])


class CommissionVoidView(APIView):
    """``POST /api/commissions/<id>/void``."""

    @extend_schema(
        operation_id="commissions_void", tags=["commissions"], summary="Void a commission",
        description="Appends a commission.voided operator event; the ledger appends a reversal of what remains "
                    "of the commission (after payout: a clawback the next payout nets).",
        request=VoidIn,
        responses={202: inline_serializer("VoidAccepted", fields={
            "success": serializers.BooleanField(), "eventId": serializers.CharField()}),
            **error_responses(400, 401, 403, 404, 409)},
        examples=[OpenApiExample("void", request_only=True,
                                 value={"businessId": "biz_…", "reason": "test order, not a real customer"}),
                  OpenApiExample("accepted", response_only=True, status_codes=["202"],
                                 value={"success": True, "eventId": "evt_…"})],
    )
    def post(self, request: Request, commission_id: str) -> Response:
        body = read_json_object(request)
        require_business_id(request, body)
        _refuse_unknown_fields(body, {"businessId", "reason"})
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise invalid("reason is required", "reason")
        event_id = services.commission_void(workspace=request.auth.workspace, commission_id=commission_id,
                                            reason=reason, actor=_actor(request))
        return Response({"success": True, "eventId": event_id}, status=202)


class AgentBalanceView(APIView):
    """``GET /api/agents/<id>/balance``."""

    @extend_schema(
        operation_id="agents_balance", tags=["commissions"], summary="An agent's balance per currency",
        description="pending, earned, payable, paid and onHold partition the balance (they add up to total, the "
                    "sum of the agent's entries); reversed is the amount taken back by reversals. With `asOf`, "
                    "the balance as the events up to that moment determine it.",
        parameters=[AS_OF], responses={200: BALANCE_OUT, **DETAIL_QUERY_ERRORS},
        examples=[OpenApiExample("balance", response_only=True, status_codes=["200"], value={
            "agentId": "agt_9x…", "asOf": "2024-06-01T00:00:00Z", "balances": [{
                "currency": "USD", "pending": "0.00", "pendingMinor": 0, "earned": "0.00", "earnedMinor": 0,
                "payable": "9.90", "payableMinor": 990, "paid": "19.80", "paidMinor": 1980, "onHold": "0.00",
                "onHoldMinor": 0, "reversed": "0.00", "reversedMinor": 0, "total": "29.70", "totalMinor": 2970,
                "payoutThreshold": "0.00", "payoutThresholdMinor": 0}]})],
    )
    def get(self, request: Request, agent_id: str) -> Response:
        workspace_id = request.auth.workspace_id
        if not Agent.objects.filter(workspace_id=workspace_id, id=agent_id).exists():
            raise NotFoundError("Not found.")
        as_of = as_of_param(request)
        balances = selectors.agent_balance(workspace_id=workspace_id, agent_id=agent_id, as_of=as_of)
        out = []
        for b in balances:
            item: dict[str, Any] = {"currency": b.currency}
            for name, value in (("pending", b.pending), ("earned", b.earned), ("payable", b.payable),
                                ("paid", b.paid), ("onHold", b.on_hold), ("reversed", b.reversed),
                                ("total", b.total), ("payoutThreshold", b.threshold)):
                item[name] = from_minor(value, b.currency)
                item[f"{name}Minor"] = value
            out.append(item)
        return Response({"agentId": agent_id, "asOf": iso(as_of), "balances": out})


class PayoutListCreateView(APIView):
    """``GET /api/payouts`` and ``POST /api/payouts``."""

    @extend_schema(
        operation_id="payouts_list", tags=["payouts"], summary="List payouts",
        parameters=[
            *CURSOR_PARAMETERS,
            OpenApiParameter("agentId", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False),
            OpenApiParameter("status", {"type": "string", "enum": list(Payout.Status.values)},
                             OpenApiParameter.QUERY, required=False),
            OpenApiParameter("currency", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False),
        ],
        responses={200: paginated_serializer("PayoutPage", PAYOUT_OUT), **READ_ERRORS},
        examples=[OpenApiExample("page", response_only=True, status_codes=["200"],
                                 value={"data": [PAYOUT_EXAMPLE], "hasMore": False, "nextCursor": None})],
    )
    def get(self, request: Request) -> Response:
        currency = request.query_params.get("currency")
        qs = selectors.payout_list(
            workspace_id=request.auth.workspace_id, agent_id=request.query_params.get("agentId") or None,
            status=query_choice(request, "status", tuple(Payout.Status.values)),
            currency=parse_currency(currency) if currency else None,
        )
        page = cursor_paginate(request, qs, ordering=("-created_position", "-id"))
        return paginated_response([payout_json(p) for p in page.rows], page)

    @extend_schema(
        operation_id="payouts_create", tags=["payouts"], summary="Create a payout",
        description="Gathers the agent's payable entries in one currency up to the cut-off, nets any negative "
                    "balance (clawbacks after refunds of paid commissions) and appends a payout.created operator "
                    "event. 409 `nothing_payable` when the net is not positive or below the payout threshold.",
        request=PayoutCreateIn,
        responses={201: PAYOUT_DETAIL, **WRITE_ERRORS},
        examples=[
            OpenApiExample("create", request_only=True,
                           value={"businessId": "biz_…", "agentId": "agt_9x…", "currency": "USD",
                                  "cutoff": "2024-06-01T00:00:00Z"}),
            OpenApiExample("created", response_only=True, status_codes=["201"],
                           value={**PAYOUT_EXAMPLE, "entries": [{**ENTRY_EXAMPLE, "status": "payable",
                                                                 "payoutId": "pay_k2…"}]}),
        ],
    )
    def post(self, request: Request) -> Response:
        body = read_json_object(request)
        require_business_id(request, body)
        _refuse_unknown_fields(body, {"businessId", "agentId", "currency", "cutoff"})
        agent_id = body.get("agentId")
        if not isinstance(agent_id, str) or not agent_id:
            raise invalid("agentId is required", "agentId")
        currency = parse_currency(body.get("currency"))
        cutoff = body.get("cutoff")
        cutoff_at = parse_datetime(cutoff, "cutoff") if cutoff not in (None, "") else None
        created = services.payout_create(workspace=request.auth.workspace, agent_id=agent_id, currency=currency,
                                         cutoff=cutoff_at, actor=_actor(request))
        services.ledger_catch_up()
        payout = Payout.objects.filter(id=created.payout_id).first() or Payout(
            id=created.payout_id, agent_id=agent_id, currency=currency, amount=created.amount,
            status=Payout.Status.CREATED, cutoff=created.cutoff, created_at=timezone.now(),
            created_event_id=created.event_id,
        )
        entries = [entry_json(e, "payable", created.payout_id) for e in created.entries]
        return Response(payout_json(payout, entries), status=201)


def _payout_or_404(request: Request, payout_id: str) -> Payout:
    payout = selectors.payout_get(workspace_id=request.auth.workspace_id, payout_id=payout_id)
    if payout is None:
        raise NotFoundError("Not found.")
    return payout


def _payout_detail(request: Request, payout: Payout) -> dict[str, Any]:
    entries = selectors.payout_entries(payout)
    as_of = timezone.now()
    pairs: set[tuple[str, str]] = set()
    if entries:
        pairs = selectors.payable_pairs(workspace_id=payout.workspace_id, as_of=as_of, agent_id=payout.agent_id,
                                        currency=payout.currency)
    annotated = {e.id: e for e in selectors.entries_with_status(workspace_id=payout.workspace_id, as_of=as_of)
                 .filter(id__in=[e.id for e in entries])}
    rows = [entry_json(annotated[e.id], selectors.entry_status(annotated[e.id], pairs), payout.id)
            if e.id in annotated else entry_json(e, "pending", payout.id) for e in entries]
    return payout_json(payout, rows)


class PayoutDetailView(APIView):
    """``GET /api/payouts/<id>``."""

    @extend_schema(operation_id="payouts_retrieve", tags=["payouts"], summary="Get one payout with its entries",
                   responses={200: PAYOUT_DETAIL, **DETAIL_ERRORS},
                   examples=[OpenApiExample("payout", response_only=True, status_codes=["200"],
                                            value=PAYOUT_CONFIRMED_EXAMPLE)])
    def get(self, request: Request, payout_id: str) -> Response:
        return Response(_payout_detail(request, _payout_or_404(request, payout_id)))


class PayoutConfirmView(APIView):
    """``POST /api/payouts/<id>/confirm``."""

    @extend_schema(
        operation_id="payouts_confirm", tags=["payouts"], summary="Confirm a payout",
        description="Appends payout.confirmed with the transfer reference; the payout's entries become paid. "
                    "Confirming again with the same reference answers the payout unchanged (200); another "
                    "reference or a rejected payout is a conflict (409).",
        request=PayoutConfirmIn, responses={200: PAYOUT_DETAIL, **WRITE_ERRORS},
        examples=[OpenApiExample("confirm", request_only=True,
                                 value={"businessId": "biz_…", "reference": "bank transfer 2024-06-01 #4471"}),
                  OpenApiExample("confirmed", response_only=True, status_codes=["200"],
                                 value=PAYOUT_CONFIRMED_EXAMPLE)],
    )
    def post(self, request: Request, payout_id: str) -> Response:
        body = read_json_object(request)
        require_business_id(request, body)
        _refuse_unknown_fields(body, {"businessId", "reference"})
        reference = body.get("reference")
        if not isinstance(reference, str) or not reference.strip():
            raise invalid("reference is required", "reference")
        _payout_or_404(request, payout_id)
        services.payout_confirm(workspace=request.auth.workspace, payout_id=payout_id, reference=reference,
                                actor=_actor(request))
        services.ledger_catch_up()
        return Response(_payout_detail(request, _payout_or_404(request, payout_id)))
