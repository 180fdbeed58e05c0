"""Keyset (cursor) pagination for every API list: ``?limit=`` and an opaque ``?cursor=``.

Why keyset and not offsets: the lists grow while a client pages through them (events arrive every
second), and an offset page then skips or repeats rows. A cursor holds the ordering values of the
last row returned, so the next page starts strictly after it whatever was inserted meanwhile, and
each page costs one indexed range query however deep the client is.

Every list answers ``{"data": [...], "hasMore": bool, "nextCursor": str | null}``.

Use it in two ways:

* In an ``APIView``: ``page = cursor_paginate(request, queryset, ordering=("-created_at", "-id"))``
  then ``return paginated_response([to_json(row) for row in page.rows], page)``.
* As a DRF pagination class on a generic view: ``pagination_class = CursorPagination`` with
  ``cursor_ordering = ("position",)`` on the view (drf-spectacular then documents it by itself).

For the OpenAPI schema of an ``APIView`` list: ``extend_schema(parameters=[*CURSOR_PARAMETERS, …],
responses={200: paginated_serializer("AgentList", AgentOut)})``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Model, Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from ingestion.errors import ApplicationError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

CURSOR_PARAMETERS = [
    OpenApiParameter(
        "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, OpenApiParameter.QUERY, required=False,
        description=f"Page size, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT}). A larger value is refused (400).",
    ),
    OpenApiParameter(
        "cursor", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
        description="The previous page's `nextCursor`; omit it for the first page.",
    ),
]


@dataclass(frozen=True)
class Page:
    """One page of rows and the cursor that continues after its last row (None at the end)."""

    rows: list[Any]
    has_more: bool
    next_cursor: str | None


def page_limit(request: Request) -> int:
    """Return ``?limit=`` as an int in 1..MAX_LIMIT, or refuse it with a 400 naming the field."""
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit():
        raise ApplicationError("limit must be a whole number", field="limit", code="invalid_field")
    value = int(raw)
    if not 1 <= value <= MAX_LIMIT:
        raise ApplicationError(f"limit must be between 1 and {MAX_LIMIT}", field="limit", code="invalid_field")
    return value


def _encode(values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, (date, datetime)) else str(v) if isinstance(v, Decimal) else v
             for v in values]
    raw = json.dumps(plain, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, model: type[Model], fields: Sequence[str]) -> list[Any]:
    invalid = ApplicationError("the cursor is not one this API returned", field="cursor", code="invalid_field")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid from None
    if not isinstance(values, list) or len(values) != len(fields):
        raise invalid
    out = []
    for name, value in zip(fields, values, strict=True):
        try:
            out.append(model._meta.get_field(name).to_python(value))
        except Exception:  # noqa: BLE001 - any conversion failure is a forged or stale cursor
            raise invalid from None
        if out[-1] is None:
            raise invalid
    return out


def _after(fields: Sequence[str], descending: bool, values: Sequence[Any]) -> Q:
    """Rows strictly after ``values`` in the ordering: (a > x) | (a = x & b > y) | …"""
    op = "lt" if descending else "gt"
    condition = Q()
    for index, name in enumerate(fields):
        term = Q(**{f"{name}__{op}": values[index]})
        for prev in range(index):
            term &= Q(**{fields[prev]: values[prev]})
        condition |= term
    return condition


def cursor_paginate(request: Request, queryset: QuerySet, *, ordering: Sequence[str]) -> Page:
    """Return the page of ``queryset`` after ``?cursor=`` in ``ordering``, ``?limit=`` rows long.

    ``ordering`` is all ascending or all descending (``"-created_at", "-id"``) and must end with a
    unique field, so that the cursor names exactly one position.
    """
    descending = ordering[0].startswith("-")
    if any(f.startswith("-") != descending for f in ordering):
        raise ValueError("cursor ordering must be all ascending or all descending")
    pk_name = queryset.model._meta.pk.name
    fields = [pk_name if f.lstrip("-") == "pk" else f.lstrip("-") for f in ordering]
    ordering = [("-" if descending else "") + f for f in fields]
    limit = page_limit(request)
    cursor = request.query_params.get("cursor")
    qs = queryset.order_by(*ordering)
    if cursor:
        qs = qs.filter(_after(fields, descending, _decode(cursor, queryset.model, fields)))
    rows = list(qs[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode([_value(rows[-1], name) for name in fields]) if has_more else None
    return Page(rows=rows, has_more=has_more, next_cursor=next_cursor)


def _value(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, dict) else getattr(row, name)


def paginated_body(data: list[Any], page: Page) -> dict[str, Any]:
    return {"data": data, "hasMore": page.has_more, "nextCursor": page.next_cursor}


def paginated_response(data: list[Any], page: Page) -> Response:
    """The list answer every endpoint gives: ``{"data", "hasMore", "nextCursor"}``."""
    return Response(paginated_body(data, page))


def paginated_serializer(name: str, item: serializers.BaseSerializer | type[serializers.BaseSerializer]
                         ) -> serializers.Serializer:
    """A documentation-only serializer for a page of ``item`` (drf-spectacular component ``name``).

    ``item`` is a serializer class or a single-object instance (an ``inline_serializer``); either way
    ``data`` is documented as an array of it. An instance is never used as ``data`` itself: that
    would document ``data`` as one object while the view answers a list.
    """
    if isinstance(item, serializers.ListSerializer):
        child = item
    else:
        child = (item if isinstance(item, type) else type(item))(many=True)
    return inline_serializer(name, fields={
        "data": child,
        "hasMore": serializers.BooleanField(help_text="True when another page follows."),
        "nextCursor": serializers.CharField(
            allow_null=True, help_text="Pass as ?cursor= to get the next page; null on the last page."),
    })


class CursorPagination(BasePagination):
    """DRF pagination class over ``cursor_paginate``; the view sets ``cursor_ordering``."""

    default_ordering: tuple[str, ...] = ("-pk",)

    def __init__(self) -> None:
        self.page: Page | None = None

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list[Any]:
        ordering = getattr(view, "cursor_ordering", None) or self.default_ordering
        self.page = cursor_paginate(request, queryset, ordering=ordering)
        return self.page.rows

    def get_paginated_response(self, data: list[Any]) -> Response:
        assert self.page is not None
        return paginated_response(data, self.page)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["data", "hasMore", "nextCursor"],
            "properties": {
                "data": schema,
                "hasMore": {"type": "boolean"},
                "nextCursor": {"type": "string", "nullable": True},
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
             "description": f"Page size, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT})."},
            {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "The previous page's nextCursor."},
        ]
