"""The event API for SaaS backends: ``POST /api/events/<kind>``, ``/api/events/batch``, event reads.

The hot path (DESIGN.md "The HTTP surface") is: authenticate (one query, in
``ingestion.auth``), count the key's rate (one cache operation), read and parse the body once,
check the fields with plain functions (``ingestion.event_inputs``), confirm the product from a
per-process cache, append (one insert), answer. No serializer, no projection work, no other query.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from django.http import JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from refairn.pagination import CURSOR_PARAMETERS, cursor_paginate, paginated_response, paginated_serializer

from .api_io import (
    DETAIL_ERRORS,
    READ_ERRORS,
    error_responses,
    invalid,
    iso,
    read_json_object,
    require_business_id,
)
from .errors import ApplicationError, NotFoundError
from .event_inputs import FIELDS, KINDS, check_idempotency_key, event_from_body
from .lookups import lookup
from .models import Event, Product
from .store import Appended, NewEvent, event_append, event_append_many

MAX_BATCH = 1000
# A batch of 1,000 realistic events is 200–300 KiB, over the single-event limit of 256 KiB.
BATCH_BODY_LIMIT = 1024 * 1024

# --- references: product (cached) and agent ------------------------------------------------------

_PRODUCT_TTL = 60.0
_products: dict[str, tuple[float, frozenset[str]]] = {}


def product_known(workspace_id: str, product_id: str) -> bool:
    """Is ``product_id`` a product of the workspace? From a per-process cache, one query on a miss.

    Products are never moved between workspaces; a product seen in the last minute is taken as
    still there, and any id not in the cached set reloads the set, so a new product is found at
    once. This keeps the per-request query count at auth + insert.
    """
    now = time.monotonic()
    entry = _products.get(workspace_id)
    if entry is not None and now - entry[0] < _PRODUCT_TTL and product_id in entry[1]:
        return True
    ids = frozenset(Product.objects.filter(workspace_id=workspace_id).values_list("id", flat=True))
    _products[workspace_id] = (now, ids)
    return product_id in ids


def check_references(new: NewEvent) -> None:
    """404 for a productId (or, on support events, an agentId) that is not the workspace's."""
    product_id = new.data.get("product_id")
    if product_id is not None and not product_known(new.workspace_id, product_id):
        raise NotFoundError(f"unknown productId {product_id!r}", field="productId")
    if new.type.startswith("support.") and not lookup("agent_exists")(new.workspace_id, new.data["agent_id"]):
        raise NotFoundError(f"unknown agentId {new.data['agent_id']!r}", field="agentId")


def _actor(request: Request) -> str:
    return f"api-key:{request.auth.id}"


def accepted_body(appended: Appended) -> dict[str, Any]:
    return {"success": True, "eventId": appended.event_id, "position": appended.position}


def duplicate_body(appended: Appended) -> dict[str, Any]:
    return {
        "error": {"code": "duplicate_event",
                  "message": "This event was already received; nothing was appended."},
        "eventId": appended.event_id,
        "position": appended.position,
    }


# --- documentation (drf-spectacular only; the views never run these serializers) -----------------

def _doc_field(field: Any) -> serializers.Field:
    options: dict[str, Any] = {"required": field.required, "help_text": field.help}
    if not field.required:
        options["allow_null"] = True
    kind = field.kind
    if kind == "email":
        return serializers.EmailField(**options)
    if kind == "datetime":
        return serializers.DateTimeField(**options)
    if kind == "minor":
        return serializers.IntegerField(min_value=0, max_value=10**15, **options)
    if kind == "amount":
        return serializers.RegexField(r"^[0-9]+(\.[0-9]+)?$", **options)
    if kind == "currency":
        return serializers.CharField(min_length=3, max_length=3, **options)
    if kind == "outcome":
        return serializers.ChoiceField(choices=["opened", "won", "lost"], **options)
    if kind == "provider":
        from .workspaces import PROVIDERS

        return serializers.ChoiceField(choices=list(PROVIDERS), **options)
    if kind == "code":
        return serializers.CharField(max_length=200, **options)
    return serializers.CharField(max_length=200 if kind == "id" else 500, **options)


def _component(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.split("-")) + "Event"


def event_doc_serializer(kind: str, *, batch_item: bool = False) -> serializers.Serializer:
    fields: dict[str, serializers.Field] = {}
    if batch_item:
        fields["type"] = serializers.CharField(help_text=f"The event kind: {kind}.")
    for field in FIELDS[kind]:
        doc = _doc_field(field)
        if batch_item and field.name in ("businessId", "productId"):
            doc = _doc_field(replace(field, required=False, help=field.help + " Defaults to the batch's."))
        fields[field.name] = doc
    return inline_serializer(_component(kind) + ("Item" if batch_item else ""), fields=fields)


EVENT_ACCEPTED = inline_serializer("EventAccepted", fields={
    "success": serializers.BooleanField(),
    "eventId": serializers.CharField(help_text="The stored event's id (evt_…)."),
    "position": serializers.IntegerField(help_text="Its position in the store."),
})
EVENT_DUPLICATE = inline_serializer("EventDuplicate", fields={
    "error": inline_serializer("DuplicateDetail", fields={
        "code": serializers.CharField(), "message": serializers.CharField(),
    }),
    "eventId": serializers.CharField(help_text="The ORIGINAL event's id."),
    "position": serializers.IntegerField(help_text="The original event's position."),
})

_EXAMPLES: dict[str, dict[str, Any]] = {
    "customer-created": {"businessId": "biz_…", "productId": "prod_…", "customerId": "user_4812",
                         "email": "jane@example.com", "name": "Jane Doe", "referralCode": "JANE2024",
                         "occurredAt": "2024-05-01T12:00:00Z"},
    "payment-succeeded": {"businessId": "biz_…", "productId": "prod_…", "paymentId": "pi_3PQ1x2",
                          "customerId": "user_4812", "email": "jane@example.com", "amount": "99.00",
                          "currency": "USD", "subscriptionId": "sub_981", "plan": "Pro monthly",
                          "paymentDate": "2024-05-01T12:05:00Z"},
    "payment-refunded": {"businessId": "biz_…", "productId": "prod_…", "paymentId": "pi_3PQ1x2",
                         "refundId": "re_77", "amount": "99.00", "currency": "USD",
                         "refundedAt": "2024-05-09T08:00:00Z"},
    "payment-disputed": {"businessId": "biz_…", "productId": "prod_…", "paymentId": "pi_3PQ1x2",
                         "disputeId": "dp_12", "amountMinor": 9900, "currency": "USD", "outcome": None},
    "subscription-cancelled": {"businessId": "biz_…", "productId": "prod_…", "subscriptionId": "sub_981",
                               "customerId": "user_4812", "cancelledAt": "2024-08-01T00:00:00Z"},
    "support-assigned": {"businessId": "biz_…", "productId": "prod_…", "customerId": "user_4812",
                         "agentId": "agt_…"},
    "support-unassigned": {"businessId": "biz_…", "productId": "prod_…", "customerId": "user_4812",
                           "agentId": "agt_…"},
}
_ACCEPTED_EXAMPLE = OpenApiExample("accepted", value={"success": True, "eventId": "evt_8kq…", "position": 1042},
                                   response_only=True, status_codes=["200"])
_DUPLICATE_EXAMPLE = OpenApiExample(
    "duplicate", response_only=True, status_codes=["409"],
    value={"error": {"code": "duplicate_event", "message": "This event was already received; nothing was "
                     "appended."}, "eventId": "evt_8kq…", "position": 1042})

_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="Dedupes explicitly when no eventId is given: a retry with the same key answers 409 with the "
                "original event's id. In a batch, item i uses '<key>:<i>'.")


def _event_schema(kind: str) -> Any:
    canonical = KINDS[kind]
    return extend_schema(
        operation_id=f"events_{kind.replace('-', '_')}",
        tags=["events"],
        summary=f"Report {canonical}",
        description=f"Append one `{canonical}` event. Unknown fields are refused (400). Answers 200 with the "
                    "stored event's id and position, or 409 with the original's id when it was already received.",
        parameters=[_IDEMPOTENCY_HEADER],
        request=event_doc_serializer(kind),
        responses={
            200: OpenApiResponse(EVENT_ACCEPTED, description="Appended."),
            409: OpenApiResponse(EVENT_DUPLICATE, description="Already received; the original's id."),
            **error_responses(400, 401, 403, 404, 413, 415, 429),
        },
        examples=[OpenApiExample(kind, value=_EXAMPLES[kind], request_only=True), _ACCEPTED_EXAMPLE,
                  _DUPLICATE_EXAMPLE],
    )


# --- the event endpoints ------------------------------------------------------------------------

class JsonAcceptNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, answered at once for what nearly every client sends.

    With the one JSON renderer, no query string (so no ``?format=``) and an ``Accept`` that is
    absent, ``*/*`` or ``application/json``, DRF's own answer is always (that renderer,
    ``application/json``); parsing the header and the query for it was ~5 % of an API request's
    CPU in process. Anything else goes through DRF's negotiation unchanged (406, ``?format=``).
    """

    _PLAIN_ACCEPT = frozenset({None, "*/*", "application/json"})

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        meta = request.META
        if (not format_suffix and len(renderers) == 1 and renderers[0].media_type == "application/json"
                and not meta.get("QUERY_STRING") and meta.get("HTTP_ACCEPT") in self._PLAIN_ACCEPT):
            return renderers[0], "application/json"
        return super().select_renderer(request, renderers, format_suffix)


class EventCreateView(APIView):
    """``POST /api/events/<kind>``: validate one event and append it."""

    kind = ""
    content_negotiation_class = JsonAcceptNegotiation

    def post(self, request: Request) -> JsonResponse:
        body = read_json_object(request)
        require_business_id(request, body)
        key = check_idempotency_key(request.META.get("HTTP_IDEMPOTENCY_KEY"))
        raw: dict[str, Any] = {"body": body}
        if key:
            raw["headers"] = {"Idempotency-Key": key}
        new = event_from_body(self.kind, body, workspace_id=request.auth.workspace_id, idempotency_key=key,
                              actor=_actor(request), raw=raw)
        check_references(new)
        appended = event_append(new)
        if not appended.created:
            return JsonResponse(duplicate_body(appended), status=409)
        return JsonResponse(accepted_body(appended))


def event_view(kind: str) -> Any:
    """Build the view of one event kind, with its own OpenAPI operation."""

    @_event_schema(kind)
    def post(self: EventCreateView, request: Request) -> JsonResponse:
        return EventCreateView.post(self, request)

    view = type(_component(kind) + "View", (EventCreateView,), {"kind": kind, "post": post})
    return view.as_view()


# --- batch --------------------------------------------------------------------------------------

_BATCH_KEYS = frozenset({"businessId", "productId", "events"})
_DOTTED = {canonical: kind for kind, canonical in KINDS.items()}


def _item_error(index: int, exc: ApplicationError) -> dict[str, Any]:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.field:
        error["field"] = exc.field
    return {"index": index, "status": exc.status_code, "error": error}


BATCH_RESULTS = inline_serializer("BatchItemResult", many=True, fields={
    "index": serializers.IntegerField(help_text="Position of the item in the request's events list."),
    "status": serializers.IntegerField(help_text="200 appended, 409 duplicate, 400/403/404 refused."),
    "eventId": serializers.CharField(required=False, help_text="New event (200) or the original (409)."),
    "position": serializers.IntegerField(required=False),
    "error": inline_serializer("BatchItemError", required=False, fields={
        "code": serializers.CharField(), "message": serializers.CharField(),
        "field": serializers.CharField(required=False),
    }),
})
BATCH_RESPONSE = inline_serializer("BatchResponse", fields={
    "success": serializers.BooleanField(help_text="True when no item was refused (duplicates are not refusals)."),
    "accepted": serializers.IntegerField(),
    "duplicates": serializers.IntegerField(),
    "rejected": serializers.IntegerField(),
    "results": BATCH_RESULTS,
})


def _batch_item_docs() -> Any:
    from drf_spectacular.utils import PolymorphicProxySerializer

    return PolymorphicProxySerializer(
        component_name="BatchEventItem",
        serializers={kind: event_doc_serializer(kind, batch_item=True) for kind in KINDS},
        resource_type_field_name="type",
        many=True,
    )


class EventBatchView(APIView):
    """``POST /api/events/batch``: up to 1,000 events, each answered on its own."""

    @extend_schema(
        operation_id="events_batch",
        tags=["events"],
        summary="Report up to 1,000 events at once",
        description="Each item is `{type, …fields of that event kind}`; `productId` defaults to the batch's. "
                    "Every item gets its own result (200, 409, 400, 403, 404) and one bad item does not stop "
                    "the others; the accepted items are appended together. The body limit is 1 MiB.",
        parameters=[_IDEMPOTENCY_HEADER],
        request=inline_serializer("BatchRequest", fields={
            "businessId": serializers.CharField(help_text="Your workspace id (biz_…)."),
            "productId": serializers.CharField(required=False, help_text="Default productId of the items."),
            "events": _batch_item_docs(),
        }),
        responses={200: OpenApiResponse(BATCH_RESPONSE, description="One result per item."),
                   **error_responses(400, 401, 403, 404, 413, 415, 429)},
        examples=[
            OpenApiExample("batch", request_only=True, value={
                "businessId": "biz_…", "productId": "prod_…", "events": [
                    {"type": "customer-created", "email": "jane@example.com", "referralCode": "JANE2024"},
                    {"type": "payment-succeeded", "paymentId": "pi_1", "email": "jane@example.com",
                     "amount": "99.00", "currency": "USD"},
                ]}),
            OpenApiExample("results", response_only=True, status_codes=["200"], value={
                "success": False, "accepted": 1, "duplicates": 0, "rejected": 1, "results": [
                    {"index": 0, "status": 200, "eventId": "evt_…", "position": 1043},
                    {"index": 1, "status": 400, "error": {"code": "invalid_field",
                                                          "message": "USD has 2 decimal places; '99.999' has more",
                                                          "field": "amount"}},
                ]}),
        ],
    )
    def post(self, request: Request) -> JsonResponse:
        body = read_json_object(request, limit=BATCH_BODY_LIMIT)
        require_business_id(request, body)
        for name in body:
            if name not in _BATCH_KEYS:
                raise invalid(f"unknown field {name!r}; a batch is {{businessId, productId?, events}}", name)
        items = body.get("events")
        if not isinstance(items, list) or not items:
            raise invalid("events must be a non-empty list", "events")
        if len(items) > MAX_BATCH:
            raise invalid(f"a batch holds at most {MAX_BATCH} events, got {len(items)}", "events")
        workspace_id = request.auth.workspace_id
        default_product = body.get("productId")
        if default_product is not None:
            if not isinstance(default_product, str):
                raise invalid("productId must be a string", "productId")
            if not product_known(workspace_id, default_product):
                raise NotFoundError(f"unknown productId {default_product!r}", field="productId")
        key = check_idempotency_key(request.META.get("HTTP_IDEMPOTENCY_KEY"))
        actor = _actor(request)

        results: list[dict[str, Any] | None] = [None] * len(items)
        valid: list[tuple[int, NewEvent]] = []
        for index, item in enumerate(items):
            try:
                valid.append((index, self._item(index, item, workspace_id, default_product, key, actor)))
            except ApplicationError as exc:
                results[index] = _item_error(index, exc)
        appended = event_append_many([new for _, new in valid]) if valid else []
        accepted = duplicates = 0
        for (index, _), outcome in zip(valid, appended, strict=True):
            results[index] = {"index": index, "status": 200 if outcome.created else 409,
                              "eventId": outcome.event_id, "position": outcome.position}
            if outcome.created:
                accepted += 1
            else:
                duplicates += 1
                results[index]["error"] = {"code": "duplicate_event", "message": "already received"}
        rejected = len(items) - accepted - duplicates
        return JsonResponse({"success": rejected == 0, "accepted": accepted, "duplicates": duplicates,
                             "rejected": rejected, "results": results})

    @staticmethod
    def _item(index: int, item: Any, workspace_id: str, default_product: str | None, key: str | None,
              actor: str) -> NewEvent:
        if not isinstance(item, dict):
            raise invalid("each event must be a JSON object", "events")
        kind = item.get("type")
        kind = _DOTTED.get(kind, kind) if isinstance(kind, str) else None
        if kind not in KINDS:
            raise invalid(f"type must be one of {', '.join(KINDS)}", "type")
        fields = {name: value for name, value in item.items() if name != "type"}
        if "businessId" in fields:
            if fields["businessId"] != workspace_id:
                raise ApplicationError("businessId does not match the API key's workspace.", field="businessId",
                                       code="forbidden", status_code=403)
        else:
            fields["businessId"] = workspace_id
        new = event_from_body(kind, fields, workspace_id=workspace_id, actor=actor, product_id=default_product,
                              idempotency_key=f"{key}:{index}" if key else None, raw={"body": item})
        check_references(new)
        return new


# --- reads --------------------------------------------------------------------------------------

def event_json(event: Event, *, with_raw: bool = False) -> dict[str, Any]:
    out = {
        "eventId": event.event_id,
        "position": event.position,
        "type": event.type,
        "source": event.source,
        "sourceEventId": event.source_event_id,
        "occurredAt": iso(event.occurred_at),
        "recordedAt": iso(event.recorded_at),
        "data": event.data,
        "actor": event.actor,
        "schemaVersion": event.schema_version,
    }
    if with_raw:
        out["raw"] = event.raw
    return out


_EVENT_FIELDS = {
    "eventId": serializers.CharField(),
    "position": serializers.IntegerField(),
    "type": serializers.CharField(help_text="Canonical type, e.g. payment.succeeded."),
    "source": serializers.ChoiceField(choices=Event.Source.choices),
    "sourceEventId": serializers.CharField(help_text="The key the event was deduplicated on."),
    "occurredAt": serializers.DateTimeField(),
    "recordedAt": serializers.DateTimeField(),
    "data": serializers.DictField(help_text="The canonical payload (snake_case, money in minor units)."),
    "actor": serializers.CharField(allow_blank=True),
    "schemaVersion": serializers.IntegerField(),
}
EVENT_OUT = inline_serializer("StoredEvent", fields=_EVENT_FIELDS)
EVENT_DETAIL = inline_serializer("StoredEventDetail", fields={
    **_EVENT_FIELDS, "raw": serializers.JSONField(allow_null=True, help_text="The input as received."),
})
_EVENT_EXAMPLE = {"eventId": "evt_8kq…", "position": 1042, "type": "payment.succeeded", "source": "api",
                  "sourceEventId": "payment:pi_3PQ1x2", "occurredAt": "2024-05-01T12:05:00Z",
                  "recordedAt": "2024-05-01T12:05:01Z",
                  "data": {"payment_ref": "pi_3PQ1x2", "amount": 9900, "currency": "USD", "email": "jane@example.com"},
                  "actor": "api-key:key_…", "schemaVersion": 1}


class EventListView(APIView):
    """``GET /api/events``: the workspace's events in store order, cursor-paginated."""

    @extend_schema(
        operation_id="events_list",
        tags=["events"],
        summary="List stored events",
        description="The workspace's events in store (position) order, oldest first. Follow `nextCursor` to "
                    "read everything after the last page, including events appended meanwhile.",
        parameters=[
            *CURSOR_PARAMETERS,
            OpenApiParameter("type", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
                             description="Canonical type (payment.succeeded) or kind (payment-succeeded)."),
            OpenApiParameter("source", {"type": "string", "enum": list(Event.Source.values)},
                             OpenApiParameter.QUERY, required=False, description="Where events came from."),
        ],
        responses={200: paginated_serializer("StoredEventPage", EVENT_OUT.__class__), **READ_ERRORS},
        examples=[OpenApiExample("page", response_only=True, status_codes=["200"],
                                 value={"data": [_EVENT_EXAMPLE], "hasMore": True, "nextCursor": "WzEwNDJd"})],
    )
    def get(self, request: Request) -> Response:
        qs = Event.objects.filter(workspace_id=request.auth.workspace_id)
        kind = request.query_params.get("type")
        if kind:
            qs = qs.filter(type=KINDS.get(kind, kind))
        source = request.query_params.get("source")
        if source:
            if source not in Event.Source.values:
                raise invalid(f"source must be one of {', '.join(Event.Source.values)}", "source")
            qs = qs.filter(source=source)
        page = cursor_paginate(request, qs, ordering=("position",))
        return paginated_response([event_json(event) for event in page.rows], page)


class EventDetailView(APIView):
    """``GET /api/events/<eventId>``: one stored event of the workspace, with its raw input."""

    @extend_schema(
        operation_id="events_retrieve",
        tags=["events"],
        summary="Get one stored event",
        responses={200: EVENT_DETAIL, **DETAIL_ERRORS},
        examples=[OpenApiExample("event", response_only=True, status_codes=["200"],
                                 value={**_EVENT_EXAMPLE, "raw": {"body": {"paymentId": "pi_3PQ1x2"}}})],
    )
    def get(self, request: Request, event_id: str) -> Response:
        event = Event.objects.filter(workspace_id=request.auth.workspace_id, event_id=event_id).first()
        if event is None:
            raise NotFoundError("Not found.")
        return Response(event_json(event, with_raw=True))

