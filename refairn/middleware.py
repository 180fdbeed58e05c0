"""Request-level safety nets: an unreachable database becomes a JSON 503 for every view (so
providers retry later), and error reports never print a provider's secret header."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.debug import SafeExceptionReporterFilter

from ingestion.errors import error_response

logger = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            logger.warning("database unavailable while serving %s: %s", request.path, type(exception).__name__)
            return error_response("unavailable", "The database is unavailable; retry later.", 503,
                                  headers={"Retry-After": "5"})
        return None


class SecretSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's error-report filter, also hiding the request headers that carry a provider secret.

    Django hides headers whose names look secret (``Authorization``, ``*-Signature``, cookies),
    but Flutterwave v3 sends the merchant's secret hash verbatim in ``Verif-Hash``, so the error
    report of any 500 on that webhook (mailed to ADMINS, shown by DEBUG) would print it. Every
    header a provider declares in ``redacted_headers`` is hidden here, as are names with ``HASH``.
    """

    hidden_settings = re.compile("API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HASH|HTTP_COOKIE", flags=re.IGNORECASE)

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        for key in _provider_secret_meta_keys():
            if key in meta:
                meta[key] = self.cleansed_substitute
        return meta


def _provider_secret_meta_keys() -> set[str]:
    from ingestion.providers import registered

    return {"HTTP_" + header.upper().replace("-", "_")
            for provider in registered().values() for header in provider.redacted_headers}
