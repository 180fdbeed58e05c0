"""One error shape for the whole API: ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A domain failure with an HTTP status; raised by services, mapped once, here."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None,
                 status_code: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.extra = extra


class NotFoundError(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class ConflictError(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return {"error": error, **extra}


def error_response(code: str, message: str, status_code: int, field: str | None = None,
                   headers: dict[str, str] | None = None, **extra: Any) -> JsonResponse:
    """A plain Django JSON error, for views outside DRF (webhooks, middleware)."""
    response = JsonResponse(error_body(code, message, field, **extra), status=status_code)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def first_validation_error(detail: Any, path: str = "") -> tuple[str | None, str]:
    """Return (dotted field path, message) of the first error in a DRF ValidationError detail."""
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        sub = path if key in ("non_field_errors", "__all__") else (f"{path}.{key}" if path else str(key))
        return first_validation_error(value, sub)
    if isinstance(detail, list) and detail:
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                if value:
                    return first_validation_error(value, f"{path}[{index}]")
                continue
            return path or None, str(value)
    return path or None, str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map every failure an API view can raise to the error shape with the right status."""
    headers: dict[str, str] = {}
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.field, **exc.extra), status=exc.status_code)
    if isinstance(exc, exceptions.ValidationError):
        field, message = first_validation_error(exc.detail)
        return Response(error_body("invalid_field", message, field), status=400)
    if isinstance(exc, (Http404, exceptions.NotFound)):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return Response(error_body("unauthenticated", str(exc.detail)), status=401,
                        headers={"WWW-Authenticate": 'Bearer realm="refairn"'})
    if isinstance(exc, exceptions.PermissionDenied):
        return Response(error_body("forbidden", str(exc.detail)), status=403)
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1) + (0 if exc.wait is None or exc.wait == int(exc.wait) else 1)
        headers["Retry-After"] = str(max(wait, 1))
        return Response(error_body("rate_limited", "Too many requests."), status=429, headers=headers)
    if isinstance(exc, exceptions.ParseError):
        return Response(error_body("invalid_json", str(exc.detail)), status=400)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return Response(error_body("unsupported_media_type", str(exc.detail)), status=415)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return Response(error_body("method_not_allowed", str(exc.detail)), status=405)
    if isinstance(exc, exceptions.APIException):
        return Response(error_body(exc.default_code, str(exc.detail)), status=exc.status_code)
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable: %s", type(exc).__name__)
        return Response(error_body("unavailable", "The database is unavailable; retry later."),
                        status=503, headers={"Retry-After": "5"})
    if isinstance(exc, DatabaseError):
        logger.exception("database error")
        return Response(error_body("unavailable", "A database error occurred; retry later."),
                        status=503, headers={"Retry-After": "5"})
    return None
