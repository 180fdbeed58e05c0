"""Turn an unreachable database into a JSON 503 for every view, so providers retry later."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

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
