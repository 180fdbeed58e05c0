"""Shared pieces of the HTTP API, for every app's ``api.py``.

* ``read_json_object(request)``: the body as a dict, within the size limit (413), parsed once.
* ``require_business_id(request, body)``: 400 when missing, 403 when not the key's workspace.
* ``parse_money`` / ``money_out``: money in (``amount`` decimal string or ``amountMinor``) and out
  (``{"amount": "99.00", "currency": "USD", "amountMinor": 9900}``).
* ``parse_datetime`` (ISO 8601), ``iso(dt)`` (UTC ``…Z``), ``parse_email``.
* ``StrictSerializer``: a DRF serializer that refuses unknown and read-only fields (400) instead of
  silently dropping them, for the management endpoints.
* ``ERROR_RESPONSES`` / ``error_responses(...)``: documented error answers for drf-spectacular.

Errors are raised as ``ApplicationError`` and rendered by ``ingestion.errors.exception_handler``:
``{"error": {"code": "invalid_field", "message": "...", "field": "amount"}}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request

from .errors import ApplicationError
from .money import MoneyError, exponent, from_minor, normalise_currency, to_minor

INVALID = "invalid_field"
# Larger than any amount a business reports (10^15 minor units), far below a 64-bit overflow.
MAX_MINOR = 10**15
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# A pragmatic check (local part without spaces or specials, a dotted domain), not RFC 5322 in full.
_EMAIL = re.compile(r"^[^@\s\"<>(),;:\\\[\]]+@" + _LABEL + r"(?:\." + _LABEL + r")+$")
_DECIMAL = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")


def invalid(message: str, field: str | None) -> ApplicationError:
    """A 400 naming the offending field."""
    return ApplicationError(message, field=field, code=INVALID)


# --- the body ---------------------------------------------------------------------------------

def body_limit() -> int:
    return int(getattr(settings, "REFAIRN_MAX_BODY_BYTES", 256 * 1024))


def read_json_object(request: Request | HttpRequest, *, limit: int | None = None) -> dict[str, Any]:
    """Return the JSON object of the body; 413 past ``limit`` bytes, 400 if not a JSON object.

    The declared ``Content-Length`` is checked before anything is read, and at most ``limit + 1``
    bytes are read whatever it says, so an oversized body never reaches the parser or memory.
    """
    limit = body_limit() if limit is None else limit
    django_request: HttpRequest = getattr(request, "_request", request)
    too_large = ApplicationError(f"The body is larger than {limit // 1024} KiB.", code="payload_too_large",
                                 status_code=413)
    try:
        declared = int(django_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    content_type = django_request.META.get("CONTENT_TYPE", "")
    if content_type and "json" not in content_type.lower():
        raise ApplicationError("Send the body as application/json.", code="unsupported_media_type",
                               status_code=415)
    raw = django_request.read(limit + 1)
    if len(raw) > limit:
        raise too_large
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise ApplicationError(f"The body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApplicationError("The body must be a JSON object.", code="invalid_json")
    return body


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def require_business_id(request: Request, body: Mapping[str, Any]) -> None:
    """400 when ``businessId`` is missing, 403 when it names another workspace than the key's."""
    if "businessId" not in body or body["businessId"] in (None, ""):
        raise invalid("businessId is required", "businessId")
    if body["businessId"] != request.auth.workspace_id:
        raise ApplicationError("businessId does not match the API key's workspace.", field="businessId",
                               code="forbidden", status_code=403)


# --- values -----------------------------------------------------------------------------------

def parse_email(value: Any, field: str = "email") -> str:
    """Return the email trimmed and lower-cased (PRODUCT.md: plus-addressing kept), or 400."""
    if not isinstance(value, str):
        raise invalid(f"{field} must be a string", field)
    email = value.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise invalid(f"{field} is not a valid email address", field)
    return email


def parse_datetime(value: Any, field: str) -> datetime:
    """Parse ISO 8601 (``2024-05-01T12:00:00Z``, an offset, or a date = midnight UTC) into UTC.

    A time without an offset is read as UTC, the only zone Refairn keeps.
    """
    if not isinstance(value, str):
        raise invalid(f"{field} must be an ISO 8601 string such as 2024-05-01T12:00:00Z", field)
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(f"{field} is not an ISO 8601 date or time: {value!r}", field) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """Format a datetime as ISO 8601 UTC with a ``Z`` (``2024-05-01T12:00:00Z``)."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def parse_currency(value: Any, field: str = "currency") -> str:
    try:
        return normalise_currency(value)
    except MoneyError:
        raise invalid(f"{field} must be an ISO 4217 code such as USD, got {value!r}", field) from None


def parse_amount(value: Any, currency: str, field: str = "amount") -> int:
    """A major-unit decimal string (``"99.00"``) → exact minor units, within the currency's exponent."""
    if not isinstance(value, str):
        raise invalid(f'{field} must be a decimal string such as "99.00" (or send {field}Minor as an integer)',
                      field)
    text = value.strip()
    if text.startswith("-"):
        raise invalid(f"{field} must not be negative", field)
    if not _DECIMAL.match(text):
        raise invalid(f'{field} must be a plain decimal number such as "99.00", got {value!r}', field)
    try:
        minor = to_minor(text, currency)
    except MoneyError:
        places = exponent(currency)
        raise invalid(f"{currency} has {places} decimal place{'s' if places != 1 else ''}; {value!r} has more",
                      field) from None
    if minor > MAX_MINOR:
        raise invalid(f"{field} is too large", field)
    return minor


def parse_minor(value: Any, field: str = "amountMinor") -> int:
    """An integer amount in minor units (``9900`` = 99.00 USD)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{field} must be an integer number of minor units", field)
    if value < 0:
        raise invalid(f"{field} must not be negative", field)
    if value > MAX_MINOR:
        raise invalid(f"{field} is too large", field)
    return value


def parse_money(amount: Any, amount_minor: Any, currency: str, *, field: str = "amount",
                required: bool = True) -> int | None:
    """Return minor units from ``amount`` and/or ``amountMinor``; both given must agree."""
    minor_field = f"{field}Minor"
    from_major = None if amount is None else parse_amount(amount, currency, field)
    from_minor_units = None if amount_minor is None else parse_minor(amount_minor, minor_field)
    if from_major is not None and from_minor_units is not None and from_major != from_minor_units:
        raise invalid(f"{field} ({amount}) and {minor_field} ({amount_minor}) disagree", minor_field)
    value = from_major if from_major is not None else from_minor_units
    if value is None and required:
        raise invalid(f"{field} (decimal string) or {minor_field} (integer) is required", field)
    return value


def money_out(amount_minor: int, currency: str) -> dict[str, Any]:
    """The API's money: ``{"amount": "99.00", "currency": "USD", "amountMinor": 9900}``."""
    return {"amount": from_minor(amount_minor, currency), "currency": currency, "amountMinor": amount_minor}


# --- serializers for the management endpoints ---------------------------------------------------

class StrictSerializer(serializers.Serializer):
    """Refuse (400) a field the client may not set: unknown names and read-only fields alike.

    DRF ignores both silently by default, which lets a client believe it set a status or an id.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                field = self.fields.get(key)
                if field is None:
                    raise serializers.ValidationError({key: ["unknown field"]})
                if field.read_only:
                    raise serializers.ValidationError({key: ["read-only field; it cannot be set"]})
        return super().to_internal_value(data)


class MoneySerializer(serializers.Serializer):
    """Money as the API answers it (documentation)."""

    amount = serializers.CharField(help_text='Major units as a decimal string, e.g. "99.00".')
    currency = serializers.CharField(help_text="ISO 4217 code.")
    amountMinor = serializers.IntegerField(help_text="The same amount in integer minor units, e.g. 9900.")


def _error_serializer() -> serializers.Serializer:
    return inline_serializer("Error", fields={
        "error": inline_serializer("ErrorDetail", fields={
            "code": serializers.CharField(help_text="invalid_field, not_found, duplicate_event, …"),
            "message": serializers.CharField(),
            "field": serializers.CharField(required=False, help_text="The body or query field at fault."),
        }),
    })


ERROR = _error_serializer()
_ERROR_TEXT = {
    400: ("The body or a field is invalid.", {"error": {"code": "invalid_field", "message": "currency must be an "
                                                         "ISO 4217 code such as USD, got 'XYZ'", "field": "currency"}}),
    401: ("Missing, unknown or revoked API key.", {"error": {"code": "unauthenticated",
                                                              "message": "Unknown or revoked API key."}}),
    403: ("businessId is not the key's workspace.", {"error": {"code": "forbidden", "message": "businessId does not "
                                                               "match the API key's workspace.",
                                                               "field": "businessId"}}),
    404: ("No such object in the key's workspace.", {"error": {"code": "not_found", "message": "Not found."}}),
    409: ("Conflict with the current state.", {"error": {"code": "conflict", "message": "…"}}),
    413: ("The body is over the size limit.", {"error": {"code": "payload_too_large",
                                                          "message": "The body is larger than 256 KiB."}}),
    415: ("The body is not JSON.", {"error": {"code": "unsupported_media_type",
                                               "message": "Send the body as application/json."}}),
    429: ("Over the key's request rate; retry after Retry-After seconds.",
          {"error": {"code": "rate_limited", "message": "Too many requests."}}),
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Documented error answers (the one error shape) for ``extend_schema(responses=…)``."""
    return {
        status: OpenApiResponse(ERROR, description=_ERROR_TEXT[status][0], examples=[
            OpenApiExample(f"error {status}", value=_ERROR_TEXT[status][1], response_only=True,
                           status_codes=[str(status)]),
        ])
        for status in statuses
    }


READ_ERRORS = error_responses(400, 401, 429)
DETAIL_ERRORS = error_responses(401, 404, 429)
# A detail read that also takes query parameters (``?asOf=``) can refuse one of them.
DETAIL_QUERY_ERRORS = error_responses(400, 401, 404, 429)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 415, 429)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Document ``ingestion.auth.ApiKeyAuthentication`` as HTTP Bearer in the OpenAPI schema."""

    target_class = "ingestion.auth.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "rf_live_… / rf_test_… secret key"}


def query_choice(request: Any, name: str, choices: Sequence[str]) -> str | None:
    """A query parameter that must be one of ``choices`` (absent or empty: ``None``); else 400."""
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if value not in choices:
        raise invalid(f"{name} must be one of {', '.join(choices)}", name)
    return value
