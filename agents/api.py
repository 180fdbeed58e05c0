"""Management API for programs, agents and enrollments, through the same services as the admin.

Bodies are camelCase and carry ``businessId``; each is validated field by field by a
``StrictSerializer``, which refuses unknown and read-only fields (a status, an id) instead of
dropping them. Every read and write is scoped to the key's workspace: another workspace's id
answers 404, exactly like an id that does not exist.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion.api_io import (
    DETAIL_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    MoneySerializer,
    StrictSerializer,
    iso,
    money_out,
    parse_currency,
    parse_money,
    read_json_object,
    require_business_id,
)
from ingestion.errors import ApplicationError, ConflictError, NotFoundError
from ingestion.models import Product
from ingestion.money import from_minor, to_minor
from refairn.pagination import CURSOR_PARAMETERS, cursor_paginate, paginated_response, paginated_serializer

from . import selectors, services
from .models import Agent, Enrollment, Program

# --- shared -------------------------------------------------------------------------------------


def _actor(request: Request) -> str:
    return f"api-key:{request.auth.id}"


def _validated(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """Read the body (size-limited), check businessId (400/403), then validate it field by field."""
    body = read_json_object(request)
    require_business_id(request, body)
    serializer = serializer_class(data=body)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _get(queryset: Any, field: str, value: str) -> Any:
    """One object of the key's workspace, or 404 naming the field; ids of other workspaces too."""
    obj = queryset.filter(pk=value).first() if isinstance(value, str) else None
    if obj is None:
        raise NotFoundError(f"unknown {field} {value!r}", field=field)
    return obj


def _dec(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _percent(value: Any, field: str) -> Decimal:
    """A percentage 0–100 as a decimal string (or number), at most 4 decimal places."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise serializers.ValidationError({field: ['a percentage such as "20" or "12.5"']})
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise serializers.ValidationError({field: ['a percentage such as "20" or "12.5"']}) from None
    if not number.is_finite() or number < 0 or number > 100:
        raise serializers.ValidationError({field: ["a percentage between 0 and 100"]})
    if number != number.quantize(Decimal("0.0001")):
        raise serializers.ValidationError({field: ["at most 4 decimal places"]})
    return number


@extend_schema_field({"type": "string", "pattern": r"^[0-9]{1,3}(\.[0-9]{1,4})?$", "example": "20",
                      "description": "A percentage 0–100 as a decimal string (a JSON number is accepted too)."})
class PercentField(serializers.Field):
    """A percentage 0–100, given as a decimal string ("20", "12.5") or a number."""

    def to_internal_value(self, data: Any) -> Decimal:
        return _percent(data, self.field_name)

    def to_representation(self, value: Any) -> str:
        return _dec(Decimal(value))


# --- programs -----------------------------------------------------------------------------------

class ReferralCommissionIn(StrictSerializer):
    type = serializers.ChoiceField(choices=Program.ReferralType.choices)
    value = serializers.JSONField(help_text='Percent ("20") for percent; amount in major units ("50.00") for fixed.')
    currency = serializers.CharField(required=False, help_text="ISO 4217 code; required for fixed.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["type"] == "percent":
            if "currency" in attrs:
                raise serializers.ValidationError({"currency": ["only a fixed commission has a currency"]})
            return {"referral_type": "percent", "referral_value": _percent(attrs["value"], "value"),
                    "referral_currency": ""}
        if "currency" not in attrs:
            raise serializers.ValidationError({"currency": ["a fixed commission needs a currency"]})
        value = attrs["value"]
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # a whole number of major units
        try:
            currency = parse_currency(attrs["currency"])
            minor = parse_money(value, None, currency, field="value")
        except ApplicationError as exc:
            raise serializers.ValidationError({(exc.field or "value").split(".")[-1]: [exc.message]}) from None
        return {"referral_type": "fixed", "referral_value": Decimal(from_minor(minor, currency)),
                "referral_currency": currency}


class RecurringCommissionIn(StrictSerializer):
    percent = PercentField()
    durationMonths = serializers.IntegerField(
        min_value=0, max_value=1200, allow_null=True, required=False,
        help_text="Months from the first payment during which renewals earn; null = no cap, 0 = none.")


class SupportCommissionIn(StrictSerializer):
    percent = PercentField()


class MoneyIn(StrictSerializer):
    amount = serializers.CharField(required=False, help_text='Major units, e.g. "50.00".')
    amountMinor = serializers.IntegerField(required=False, min_value=0)
    currency = serializers.CharField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            currency = parse_currency(attrs["currency"])
            minor = parse_money(attrs.get("amount"), attrs.get("amountMinor"), currency)
        except ApplicationError as exc:
            raise serializers.ValidationError({exc.field or "amount": [exc.message]}) from None
        return {"currency": currency, "minor": minor}


class ProgramIn(StrictSerializer):
    programId = serializers.CharField(read_only=True)
    businessId = serializers.CharField(help_text="Your workspace id (biz_…).")
    productId = serializers.CharField(help_text="The product of the program (prod_…).")
    name = serializers.CharField(max_length=200)
    referralCommission = ReferralCommissionIn(
        required=False, help_text="Default: 20 percent of the customer's first payment.")
    recurringCommission = RecurringCommissionIn(required=False)
    supportCommission = SupportCommissionIn(required=False)
    attributionWindowDays = serializers.IntegerField(min_value=1, max_value=3650, required=False)
    holdDays = serializers.IntegerField(min_value=0, max_value=3650, required=False)
    payoutFrequency = serializers.ChoiceField(choices=Program.PayoutFrequency.choices, required=False)
    payoutThreshold = MoneyIn(many=True, required=False,
                              help_text="Minimum payable balance per currency (default 0).")
    conflictMode = serializers.ChoiceField(choices=Program.ConflictMode.choices, required=False)
    enrollmentMode = serializers.ChoiceField(choices=Program.EnrollmentMode.choices, required=False)

    def validate_payoutThreshold(self, value: list[dict[str, Any]]) -> dict[str, int]:
        thresholds: dict[str, int] = {}
        for item in value:
            if item["currency"] in thresholds:
                raise serializers.ValidationError(f"{item['currency']} is given twice")
            thresholds[item["currency"]] = item["minor"]
        return thresholds


def program_terms_in(data: dict[str, Any]) -> dict[str, Any]:
    """The validated body → ``program_create`` keyword arguments (snake_case model fields)."""
    terms: dict[str, Any] = {}
    if "referralCommission" in data:
        terms.update(data["referralCommission"])
    if "recurringCommission" in data:
        terms["recurring_percent"] = data["recurringCommission"]["percent"]
        terms["recurring_duration_months"] = data["recurringCommission"].get("durationMonths")
    if "supportCommission" in data:
        terms["support_percent"] = data["supportCommission"]["percent"]
    for camel, snake in (("attributionWindowDays", "attribution_window_days"), ("holdDays", "hold_days"),
                         ("payoutFrequency", "payout_frequency"), ("payoutThreshold", "payout_threshold"),
                         ("conflictMode", "conflict_mode"), ("enrollmentMode", "enrollment_mode")):
        if camel in data:
            terms[snake] = data[camel]
    return terms


def referral_out(referral_type: str, value: Decimal, currency: str) -> dict[str, Any]:
    if referral_type == Program.ReferralType.FIXED:
        minor = to_minor(Decimal(value).normalize(), currency)
        return {"type": "fixed", "value": from_minor(minor, currency), "currency": currency, "amountMinor": minor}
    return {"type": "percent", "value": _dec(Decimal(value))}


def program_json(program: Program) -> dict[str, Any]:
    return {
        "programId": program.id,
        "businessId": program.workspace_id,
        "productId": program.product_id,
        "name": program.name,
        "referralCommission": referral_out(program.referral_type, program.referral_value, program.referral_currency),
        "recurringCommission": {"percent": _dec(program.recurring_percent),
                                "durationMonths": program.recurring_duration_months},
        "supportCommission": {"percent": _dec(program.support_percent)},
        "attributionWindowDays": program.attribution_window_days,
        "holdDays": program.hold_days,
        "payoutFrequency": program.payout_frequency,
        "payoutThreshold": [money_out(amount, currency)
                            for currency, amount in sorted((program.payout_threshold or {}).items())],
        "conflictMode": program.conflict_mode,
        "enrollmentMode": program.enrollment_mode,
        "createdAt": iso(program.created_at),
        "updatedAt": iso(program.updated_at),
    }


class ReferralCommissionOut(serializers.Serializer):
    type = serializers.ChoiceField(choices=Program.ReferralType.choices)
    value = serializers.CharField(help_text="Percent, or for fixed the amount in major units.")
    currency = serializers.CharField(required=False)
    amountMinor = serializers.IntegerField(required=False)


class RecurringCommissionOut(serializers.Serializer):
    percent = serializers.CharField()
    durationMonths = serializers.IntegerField(allow_null=True)


class SupportCommissionOut(serializers.Serializer):
    percent = serializers.CharField()


class ProgramOut(serializers.Serializer):
    programId = serializers.CharField()
    businessId = serializers.CharField()
    productId = serializers.CharField()
    name = serializers.CharField()
    referralCommission = ReferralCommissionOut()
    recurringCommission = RecurringCommissionOut()
    supportCommission = SupportCommissionOut()
    attributionWindowDays = serializers.IntegerField()
    holdDays = serializers.IntegerField()
    payoutFrequency = serializers.ChoiceField(choices=Program.PayoutFrequency.choices)
    payoutThreshold = MoneySerializer(many=True)
    conflictMode = serializers.ChoiceField(choices=Program.ConflictMode.choices)
    enrollmentMode = serializers.ChoiceField(choices=Program.EnrollmentMode.choices)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


_PROGRAM_EXAMPLE = {
    "programId": "prog_…", "businessId": "biz_…", "productId": "prod_…", "name": "Partners 2024",
    "referralCommission": {"type": "percent", "value": "20"},
    "recurringCommission": {"percent": "10", "durationMonths": 12},
    "supportCommission": {"percent": "5"}, "attributionWindowDays": 90, "holdDays": 14,
    "payoutFrequency": "monthly", "payoutThreshold": [{"amount": "50.00", "currency": "USD", "amountMinor": 5000}],
    "conflictMode": "disclosed", "enrollmentMode": "manual",
    "createdAt": "2024-05-01T12:00:00Z", "updatedAt": "2024-05-01T12:00:00Z",
}


class ProgramListView(APIView):
    """``/api/programs``: create a program; list the workspace's programs."""

    @extend_schema(
        operation_id="programs_create", tags=["programs"], summary="Create a program",
        request=ProgramIn, responses={201: ProgramOut, **WRITE_ERRORS},
        examples=[
            OpenApiExample("program", request_only=True, value={
                "businessId": "biz_…", "productId": "prod_…", "name": "Partners 2024",
                "referralCommission": {"type": "percent", "value": "20"},
                "recurringCommission": {"percent": "10", "durationMonths": 12},
                "supportCommission": {"percent": "5"}, "attributionWindowDays": 90, "holdDays": 14,
                "payoutFrequency": "monthly", "payoutThreshold": [{"amount": "50.00", "currency": "USD"}],
                "conflictMode": "disclosed", "enrollmentMode": "manual"}),
            OpenApiExample("created", response_only=True, status_codes=["201"], value=_PROGRAM_EXAMPLE),
        ],
    )
    def post(self, request: Request) -> Response:
        data = _validated(ProgramIn, request)
        workspace = request.auth.workspace
        product = _get(Product.objects.filter(workspace=workspace), "productId", data["productId"])
        program = services.program_create(workspace=workspace, product=product, name=data["name"].strip(),
                                          **program_terms_in(data))
        return Response(program_json(program), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="programs_list", tags=["programs"], summary="List programs",
        parameters=[*CURSOR_PARAMETERS,
                    OpenApiParameter("productId", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False)],
        responses={200: paginated_serializer("ProgramPage", ProgramOut), **READ_ERRORS},
        examples=[OpenApiExample("page", response_only=True, status_codes=["200"],
                                 value={"data": [_PROGRAM_EXAMPLE], "hasMore": False, "nextCursor": None})],
    )
    def get(self, request: Request) -> Response:
        qs = selectors.program_list(workspace_id=request.auth.workspace_id)
        if product_id := request.query_params.get("productId"):
            qs = qs.filter(product_id=product_id)
        page = cursor_paginate(request, qs, ordering=("-created_at", "-id"))
        return paginated_response([program_json(p) for p in page.rows], page)


class ProgramDetailView(APIView):
    """``/api/programs/<programId>``."""

    @extend_schema(operation_id="programs_retrieve", tags=["programs"], summary="Get a program",
                   responses={200: ProgramOut, **DETAIL_ERRORS},
                   examples=[OpenApiExample("program", response_only=True, status_codes=["200"],
                                            value=_PROGRAM_EXAMPLE)])
    def get(self, request: Request, program_id: str) -> Response:
        program = _get(selectors.program_list(workspace_id=request.auth.workspace_id), "programId", program_id)
        return Response(program_json(program))


# --- enrollments --------------------------------------------------------------------------------

def terms_out(terms: dict[str, Any] | None) -> dict[str, Any] | None:
    """The snapshotted terms (agents.terms, snake_case, minor units) in the API's camelCase shape."""
    if not terms:
        return None
    referral = terms.get("referral") or {}
    if referral.get("type") == "fixed":
        referral_json = {"type": "fixed", **money_out(referral["amount"], referral["currency"])}
        referral_json["value"] = referral_json["amount"]
    else:
        referral_json = {"type": "percent", "value": referral.get("percent")}
    recurring = terms.get("recurring") or {}
    return {
        "referralCommission": referral_json,
        "recurringCommission": {"percent": recurring.get("percent"),
                                "durationMonths": recurring.get("duration_months")},
        "supportCommission": {"percent": (terms.get("support") or {}).get("percent")},
        "attributionWindowDays": terms.get("attribution_window_days"),
        "holdDays": terms.get("hold_days"),
        "payoutFrequency": terms.get("payout_frequency"),
        "payoutThreshold": [money_out(amount, currency)
                            for currency, amount in sorted((terms.get("payout_threshold") or {}).items())],
    }


def enrollment_json(enrollment: Enrollment) -> dict[str, Any]:
    return {
        "enrollmentId": enrollment.id,
        "businessId": enrollment.workspace_id,
        "agentId": enrollment.agent_id,
        "programId": enrollment.program_id,
        "productId": enrollment.program.product_id,
        "status": enrollment.status,
        "referralCode": enrollment.referral_code,
        "reason": enrollment.reason,
        "terms": terms_out(enrollment.terms),
        "appliedAt": iso(enrollment.applied_at),
        "decidedAt": iso(enrollment.decided_at),
    }


class TermsOut(serializers.Serializer):
    referralCommission = ReferralCommissionOut()
    recurringCommission = RecurringCommissionOut()
    supportCommission = SupportCommissionOut()
    attributionWindowDays = serializers.IntegerField()
    holdDays = serializers.IntegerField()
    payoutFrequency = serializers.CharField()
    payoutThreshold = MoneySerializer(many=True)


class EnrollmentOut(serializers.Serializer):
    enrollmentId = serializers.CharField()
    businessId = serializers.CharField()
    agentId = serializers.CharField()
    programId = serializers.CharField()
    productId = serializers.CharField()
    status = serializers.ChoiceField(choices=Enrollment.Status.choices)
    referralCode = serializers.CharField(allow_null=True, help_text="Set once approved.")
    reason = serializers.CharField(allow_blank=True, help_text="Reason given with the latest decision.")
    terms = TermsOut(allow_null=True, help_text="The program's terms snapshotted at approval.")
    appliedAt = serializers.DateTimeField()
    decidedAt = serializers.DateTimeField(allow_null=True)


class EnrollmentIn(StrictSerializer):
    enrollmentId = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    referralCode = serializers.CharField(read_only=True)
    businessId = serializers.CharField()
    agentId = serializers.CharField(help_text="agt_…")
    programId = serializers.CharField(help_text="prog_…")


class ApproveIn(StrictSerializer):
    status = serializers.CharField(read_only=True)
    businessId = serializers.CharField()
    referralCode = serializers.RegexField(
        r"^[A-Za-z0-9]{3,32}$", required=False, allow_null=True,
        help_text="3–32 letters and digits, unique in the workspace (upper-cased); generated when omitted.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class DecisionIn(StrictSerializer):
    status = serializers.CharField(read_only=True)
    businessId = serializers.CharField()
    reason = serializers.CharField(max_length=2000, help_text="Why; kept with the decision and its event.")


_ENROLLMENT_EXAMPLE = {
    "enrollmentId": "enr_…", "businessId": "biz_…", "agentId": "agt_…", "programId": "prog_…",
    "productId": "prod_…", "status": "approved", "referralCode": "JANE2024", "reason": "",
    "terms": {"referralCommission": {"type": "percent", "value": "20"},
              "recurringCommission": {"percent": "10", "durationMonths": 12},
              "supportCommission": {"percent": "5"}, "attributionWindowDays": 90, "holdDays": 14,
              "payoutFrequency": "monthly", "payoutThreshold": []},
    "appliedAt": "2024-05-01T12:00:00Z", "decidedAt": "2024-05-01T12:10:00Z",
}


def _enrollments(request: Request) -> Any:
    return selectors.enrollment_list(workspace_id=request.auth.workspace_id).select_related("program")


class EnrollmentListView(APIView):
    """``/api/enrollments``: enroll an agent in a program (status applied); list enrollments."""

    @extend_schema(
        operation_id="enrollments_create", tags=["enrollments"], summary="Enroll an agent in a program",
        description="Creates the enrollment with status `applied` (`approved` at once for an open program).",
        request=EnrollmentIn, responses={201: EnrollmentOut, **WRITE_ERRORS},
        examples=[OpenApiExample("enroll", request_only=True,
                                 value={"businessId": "biz_…", "agentId": "agt_…", "programId": "prog_…"}),
                  OpenApiExample("applied", response_only=True, status_codes=["201"],
                                 value={**_ENROLLMENT_EXAMPLE, "status": "applied", "referralCode": None,
                                        "terms": None, "decidedAt": None})],
    )
    def post(self, request: Request) -> Response:
        data = _validated(EnrollmentIn, request)
        workspace_id = request.auth.workspace_id
        agent = _get(selectors.agent_list(workspace_id=workspace_id), "agentId", data["agentId"])
        program = _get(selectors.program_list(workspace_id=workspace_id), "programId", data["programId"])
        enrollment = services.enrollment_apply(agent=agent, program=program, actor=_actor(request))
        return Response(enrollment_json(enrollment), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="enrollments_list", tags=["enrollments"], summary="List enrollments",
        parameters=[*CURSOR_PARAMETERS,
                    OpenApiParameter("agentId", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False),
                    OpenApiParameter("programId", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False),
                    OpenApiParameter("status", {"type": "string", "enum": list(Enrollment.Status.values)},
                                     OpenApiParameter.QUERY, required=False)],
        responses={200: paginated_serializer("EnrollmentPage", EnrollmentOut), **READ_ERRORS},
        examples=[OpenApiExample("page", response_only=True, status_codes=["200"],
                                 value={"data": [_ENROLLMENT_EXAMPLE], "hasMore": False, "nextCursor": None})],
    )
    def get(self, request: Request) -> Response:
        qs = _enrollments(request)
        params = request.query_params
        if agent_id := params.get("agentId"):
            qs = qs.filter(agent_id=agent_id)
        if program_id := params.get("programId"):
            qs = qs.filter(program_id=program_id)
        if status_filter := params.get("status"):
            if status_filter not in Enrollment.Status.values:
                raise ApplicationError(f"status must be one of {', '.join(Enrollment.Status.values)}",
                                       field="status", code="invalid_field")
            qs = qs.filter(status=status_filter)
        page = cursor_paginate(request, qs, ordering=("-applied_at", "-id"))
        return paginated_response([enrollment_json(e) for e in page.rows], page)


class EnrollmentDetailView(APIView):
    """``/api/enrollments/<enrollmentId>``."""

    @extend_schema(operation_id="enrollments_retrieve", tags=["enrollments"], summary="Get an enrollment",
                   responses={200: EnrollmentOut, **DETAIL_ERRORS},
                   examples=[OpenApiExample("enrollment", response_only=True, status_codes=["200"],
                                            value=_ENROLLMENT_EXAMPLE)])
    def get(self, request: Request, enrollment_id: str) -> Response:
        return Response(enrollment_json(_get(_enrollments(request), "enrollmentId", enrollment_id)))


def _decision_schema(decision: str, request_serializer: type[serializers.Serializer],
                     example: dict[str, Any], result: dict[str, Any]) -> Any:
    return extend_schema(
        operation_id=f"enrollments_{decision}", tags=["enrollments"], summary=f"{decision.capitalize()} an enrollment",
        description=f"Records the decision as an `enrollment.{decision}d` event"
                    + (" and snapshots the program's current terms." if decision == "approve" else "."),
        request=request_serializer, responses={200: EnrollmentOut, **WRITE_ERRORS},
        examples=[OpenApiExample(decision, request_only=True, value=example),
                  OpenApiExample(f"{decision}d", response_only=True, status_codes=["200"],
                                 value={**_ENROLLMENT_EXAMPLE, **result})],
    )


class EnrollmentApproveView(APIView):
    """``POST /api/enrollments/<id>/approve`` ``{referralCode?}`` → status approved, referralCode."""

    @_decision_schema("approve", ApproveIn, {"businessId": "biz_…", "referralCode": "JANE2024"}, {})
    def post(self, request: Request, enrollment_id: str) -> Response:
        data = _validated(ApproveIn, request)
        enrollment = _get(_enrollments(request), "enrollmentId", enrollment_id)
        enrollment = services.enrollment_approve(enrollment=enrollment, referral_code=data.get("referralCode"),
                                                 reason=data.get("reason", ""), actor=_actor(request))
        return Response(enrollment_json(enrollment))


class EnrollmentRejectView(APIView):
    """``POST /api/enrollments/<id>/reject`` ``{reason}``."""

    @_decision_schema("reject", DecisionIn, {"businessId": "biz_…", "reason": "Not a fit for this program"},
                      {"status": "rejected", "referralCode": None, "terms": None,
                       "reason": "Not a fit for this program"})
    def post(self, request: Request, enrollment_id: str) -> Response:
        data = _validated(DecisionIn, request)
        enrollment = _get(_enrollments(request), "enrollmentId", enrollment_id)
        enrollment = services.enrollment_reject(enrollment=enrollment, reason=data["reason"], actor=_actor(request))
        return Response(enrollment_json(enrollment))


class EnrollmentRemoveView(APIView):
    """``POST /api/enrollments/<id>/remove`` ``{reason}``: future commissions end, earned ones stay."""

    @_decision_schema("remove", DecisionIn, {"businessId": "biz_…", "reason": "Left the partner network"},
                      {"status": "removed", "reason": "Left the partner network"})
    def post(self, request: Request, enrollment_id: str) -> Response:
        data = _validated(DecisionIn, request)
        enrollment = _get(_enrollments(request), "enrollmentId", enrollment_id)
        enrollment = services.enrollment_remove(enrollment=enrollment, reason=data["reason"], actor=_actor(request))
        return Response(enrollment_json(enrollment))


# --- agents -------------------------------------------------------------------------------------

def agent_json(agent: Agent, enrollments: list[Enrollment] | None = None) -> dict[str, Any]:
    enrollments = list(agent.enrollments.all()) if enrollments is None else enrollments
    return {
        "agentId": agent.id,
        "businessId": agent.workspace_id,
        "email": agent.email,
        "name": agent.name,
        "createdAt": iso(agent.created_at),
        "enrollments": [
            {"enrollmentId": e.id, "programId": e.program_id, "productId": e.program.product_id,
             "status": e.status, "referralCode": e.referral_code}
            for e in sorted(enrollments, key=lambda e: (e.applied_at, e.id))
        ],
    }


class AgentEnrollmentOut(serializers.Serializer):
    enrollmentId = serializers.CharField()
    programId = serializers.CharField()
    productId = serializers.CharField()
    status = serializers.ChoiceField(choices=Enrollment.Status.choices)
    referralCode = serializers.CharField(allow_null=True)


class AgentOut(serializers.Serializer):
    agentId = serializers.CharField()
    businessId = serializers.CharField()
    email = serializers.EmailField()
    name = serializers.CharField()
    createdAt = serializers.DateTimeField()
    enrollments = AgentEnrollmentOut(many=True)


class AgentIn(StrictSerializer):
    agentId = serializers.CharField(read_only=True)
    businessId = serializers.CharField()
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(max_length=200)


_AGENT_EXAMPLE = {
    "agentId": "agt_…", "businessId": "biz_…", "email": "jane@partners.example", "name": "Jane Partner",
    "createdAt": "2024-05-01T12:00:00Z",
    "enrollments": [{"enrollmentId": "enr_…", "programId": "prog_…", "productId": "prod_…",
                     "status": "approved", "referralCode": "JANE2024"}],
}


def _agents(request: Request) -> Any:
    return selectors.agent_list(workspace_id=request.auth.workspace_id).prefetch_related("enrollments__program")


class AgentListView(APIView):
    """``/api/agents``: create an agent; list agents with their enrollments."""

    @extend_schema(
        operation_id="agents_create", tags=["agents"], summary="Create an agent",
        description="A duplicate email answers 409 with the existing agent's `agentId`.",
        request=AgentIn, responses={201: AgentOut, **WRITE_ERRORS},
        examples=[OpenApiExample("agent", request_only=True,
                                 value={"businessId": "biz_…", "email": "jane@partners.example",
                                        "name": "Jane Partner"}),
                  OpenApiExample("created", response_only=True, status_codes=["201"],
                                 value={**_AGENT_EXAMPLE, "enrollments": []})],
    )
    def post(self, request: Request) -> Response:
        data = _validated(AgentIn, request)
        workspace = request.auth.workspace
        try:
            agent = services.agent_create(workspace=workspace, email=data["email"], name=data["name"])
        except ConflictError as exc:
            existing = Agent.objects.filter(workspace=workspace, email=services.normalise_email(data["email"])).first()
            if existing is not None:
                exc.extra["agentId"] = existing.id
            raise
        return Response(agent_json(agent, []), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="agents_list", tags=["agents"], summary="List agents with their enrollments",
        parameters=[*CURSOR_PARAMETERS,
                    OpenApiParameter("email", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False)],
        responses={200: paginated_serializer("AgentPage", AgentOut), **READ_ERRORS},
        examples=[OpenApiExample("page", response_only=True, status_codes=["200"],
                                 value={"data": [_AGENT_EXAMPLE], "hasMore": False, "nextCursor": None})],
    )
    def get(self, request: Request) -> Response:
        qs = _agents(request)
        if email := request.query_params.get("email"):
            qs = qs.filter(email=services.normalise_email(email))
        page = cursor_paginate(request, qs, ordering=("-created_at", "-id"))
        return paginated_response([agent_json(a) for a in page.rows], page)


class AgentDetailView(APIView):
    """``/api/agents/<agentId>``, with the agent's enrollments."""

    @extend_schema(operation_id="agents_retrieve", tags=["agents"], summary="Get an agent and its enrollments",
                   responses={200: AgentOut, **DETAIL_ERRORS},
                   examples=[OpenApiExample("agent", response_only=True, status_codes=["200"],
                                            value=_AGENT_EXAMPLE)])
    def get(self, request: Request, agent_id: str) -> Response:
        return Response(agent_json(_get(_agents(request), "agentId", agent_id)))

