"""``GET /api/customers``: the workspace's customers and to which agent (and why) each is attributed.

Customers are a projection (``attribution.projector``) of the event store, so they appear once
the projector has run past the signup or payment that named them.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion.api_io import DETAIL_ERRORS, READ_ERRORS, iso, parse_email
from ingestion.errors import ApplicationError, NotFoundError
from refairn.pagination import CURSOR_PARAMETERS, cursor_paginate, paginated_response, paginated_serializer

from .models import Customer


def customer_json(customer: Customer) -> dict[str, Any]:
    attributed = bool(customer.agent_id)
    return {
        "customerId": customer.id,
        "businessId": customer.workspace_id,
        "customerRef": customer.customer_ref or None,
        "email": customer.email or None,
        "name": customer.name,
        "productId": customer.product_id or None,
        "status": customer.status,
        "agentId": customer.agent_id or None,
        "enrollmentId": customer.enrollment_id or None,
        "programId": customer.program_id or None,
        "referralCode": customer.referral_code or None,
        "attribution": {
            "via": customer.attributed_via or None,
            "eventId": customer.attributed_event_id or None,
            "at": iso(customer.attributed_at),
            "clickId": customer.click_id or None,
            "clickEventId": customer.click_event_id or None,
            "detail": customer.attribution_detail,
        } if attributed else None,
        "unattributedReason": None if attributed else (customer.unattributed_reason or None),
        "supportAgentId": customer.support_agent_id or None,
        "supportEventId": customer.support_event_id or None,
        "firstPaymentAt": iso(customer.first_payment_at),
        "firstPaymentEventId": customer.first_payment_event_id or None,
        "paymentsCount": customer.payments_count,
        "cancelledAt": iso(customer.cancelled_at),
        "cancelledEventId": customer.cancelled_event_id or None,
        "signupEventId": customer.signup_event_id or None,
        "createdAt": iso(customer.created_at),
        "createdFromEventId": customer.created_event_id,
    }


class AttributionOut(serializers.Serializer):
    via = serializers.ChoiceField(choices=Customer.Via.choices, allow_null=True,
                                  help_text="How: a link click, a code at signup, a code in payment metadata, or "
                                            "an operator reassignment.")
    eventId = serializers.CharField(allow_null=True, help_text="The event that decided it.")
    at = serializers.DateTimeField(allow_null=True)
    clickId = serializers.CharField(allow_null=True, help_text="The visitor's first click, when credited.")
    clickEventId = serializers.CharField(allow_null=True, help_text="The click.recorded event credited (evt_…).")
    detail = serializers.CharField(allow_blank=True)


class CustomerOut(serializers.Serializer):
    customerId = serializers.CharField(help_text="Refairn's id (cus_…).")
    businessId = serializers.CharField()
    customerRef = serializers.CharField(allow_null=True, help_text="Your own id (the customerId of your events).")
    email = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_blank=True)
    productId = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=Customer.Status.choices)
    agentId = serializers.CharField(allow_null=True, help_text="The agent the customer is attributed to.")
    enrollmentId = serializers.CharField(allow_null=True)
    programId = serializers.CharField(allow_null=True)
    referralCode = serializers.CharField(allow_null=True)
    attribution = AttributionOut(allow_null=True)
    unattributedReason = serializers.ChoiceField(choices=Customer.Unattributed.choices, allow_null=True)
    supportAgentId = serializers.CharField(allow_null=True)
    supportEventId = serializers.CharField(allow_null=True, help_text="The support.assigned event of supportAgentId.")
    firstPaymentAt = serializers.DateTimeField(allow_null=True)
    firstPaymentEventId = serializers.CharField(allow_null=True,
                                                help_text="The payment.succeeded event of firstPaymentAt.")
    paymentsCount = serializers.IntegerField()
    cancelledAt = serializers.DateTimeField(allow_null=True)
    cancelledEventId = serializers.CharField(allow_null=True, help_text="The subscription.cancelled event.")
    signupEventId = serializers.CharField(allow_null=True, help_text="The customer.created event (null for a "
                                          "customer first named by a payment).")
    createdAt = serializers.DateTimeField()
    createdFromEventId = serializers.CharField(help_text="The first event that named this customer (evt_…).")


_CUSTOMER_EXAMPLE = {
    "customerId": "cus_…", "businessId": "biz_…", "customerRef": "user_4812", "email": "jane@example.com",
    "name": "Jane Doe", "productId": "prod_…", "status": "customer", "agentId": "agt_…", "enrollmentId": "enr_…",
    "programId": "prog_…", "referralCode": "JANE2024",
    "attribution": {"via": "code", "eventId": "evt_7a…", "at": "2024-05-01T12:00:00Z", "clickId": None,
                    "clickEventId": None, "detail": "code JANE2024 given at signup"},
    "unattributedReason": None, "supportAgentId": None, "supportEventId": None,
    "firstPaymentAt": "2024-05-01T12:05:00Z", "firstPaymentEventId": "evt_7b…", "paymentsCount": 1,
    "cancelledAt": None, "cancelledEventId": None, "signupEventId": "evt_7a…", "createdAt": "2024-05-01T12:00:00Z",
    "createdFromEventId": "evt_7a…",
}


class CustomerListView(APIView):
    """``GET /api/customers?email=&agentId=&status=``, newest first."""

    @extend_schema(
        operation_id="customers_list", tags=["customers"], summary="List customers",
        parameters=[
            *CURSOR_PARAMETERS,
            OpenApiParameter("email", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
                             description="Matched trimmed and lower-cased."),
            OpenApiParameter("agentId", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
                             description="Customers attributed to this agent."),
            OpenApiParameter("customerRef", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
                             description="Your own customer id."),
            OpenApiParameter("status", {"type": "string", "enum": list(Customer.Status.values)},
                             OpenApiParameter.QUERY, required=False),
        ],
        responses={200: paginated_serializer("CustomerPage", CustomerOut), **READ_ERRORS},
        examples=[OpenApiExample("page", response_only=True, status_codes=["200"],
                                 value={"data": [_CUSTOMER_EXAMPLE], "hasMore": False, "nextCursor": None})],
    )
    def get(self, request: Request) -> Response:
        qs = Customer.objects.filter(workspace_id=request.auth.workspace_id)
        params = request.query_params
        if (email := params.get("email")) is not None and email != "":
            qs = qs.filter(email=parse_email(email))
        if agent_id := params.get("agentId"):
            qs = qs.filter(agent_id=agent_id)
        if customer_ref := params.get("customerRef"):
            qs = qs.filter(customer_ref=customer_ref)
        if status := params.get("status"):
            if status not in Customer.Status.values:
                raise ApplicationError(f"status must be one of {', '.join(Customer.Status.values)}",
                                       field="status", code="invalid_field")
            qs = qs.filter(status=status)
        page = cursor_paginate(request, qs, ordering=("-created_position", "-id"))
        return paginated_response([customer_json(c) for c in page.rows], page)


class CustomerDetailView(APIView):
    """``GET /api/customers/<customerId>``."""

    @extend_schema(operation_id="customers_retrieve", tags=["customers"], summary="Get a customer",
                   responses={200: CustomerOut, **DETAIL_ERRORS},
                   examples=[OpenApiExample("customer", response_only=True, status_codes=["200"],
                                            value=_CUSTOMER_EXAMPLE)])
    def get(self, request: Request, customer_id: str) -> Response:
        customer = Customer.objects.filter(workspace_id=request.auth.workspace_id, pk=customer_id).first()
        if customer is None:
            raise NotFoundError("Not found.")
        return Response(customer_json(customer))
