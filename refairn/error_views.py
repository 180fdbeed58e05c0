"""Django's last-resort 400, 403, 404 and 500 answers, in the contract's JSON error shape for machine paths.

A SaaS backend or a payment provider calling ``/api/…`` or ``/webhooks/…`` parses JSON; an HTML
error page from a mistyped path or an unhandled exception would break its error handling (and a
provider would log an opaque body). Those paths answer ``{"error": {"code", "message"}}``
(DESIGN.md "The contract, exactly"); every other path keeps Django's own pages. The 500 message
is fixed on purpose: the exception's text may carry data that must not reach the caller.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from ingestion.errors import error_response

MACHINE_PREFIXES = ("/api", "/webhooks")


def is_machine_path(request: HttpRequest) -> bool:
    """True for ``/api``, ``/api/…``, ``/webhooks`` and ``/webhooks/…`` (not ``/apiary``)."""
    path = request.path_info
    return any(path == prefix or path.startswith(prefix + "/") for prefix in MACHINE_PREFIXES)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400``: a request Django refuses before any view (a ``Host`` not in ``ALLOWED_HOSTS``,
    too many form fields, another ``SuspiciousOperation``). The reason is not echoed: it may quote
    the request."""
    if is_machine_path(request):
        return error_response("bad_request", "The request was refused as malformed or unsafe.", 400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler403``: a ``PermissionDenied`` raised outside the API's own views (which answer 403
    in the JSON shape themselves)."""
    if is_machine_path(request):
        return error_response("forbidden", "You do not have permission to do this.", 403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: JSON ``not_found`` under /api/ and /webhooks/, Django's page elsewhere."""
    if is_machine_path(request):
        return error_response("not_found", "Not found.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: JSON ``server_error`` under /api/ and /webhooks/, Django's page elsewhere."""
    if is_machine_path(request):
        return error_response("server_error", "An internal error occurred; it has been logged.", 500)
    return defaults.server_error(request)
