"""``GET /r/<code>``: record the click, set the first-party cookies, redirect to the product.

The view appends and redirects; it decides no attribution (the projector does, from events).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from agents.selectors import enrollment_for_link

from .domain import normalise_code
from .services import click_record

CODE_COOKIE = "refairn_code"
CLICK_COOKIE = "refairn_click"


@never_cache
@require_GET
def referral_link(request: HttpRequest, code: str) -> HttpResponse:
    """Record a click on an approved code and 302 to the product URL with ``ref`` and ``rf_click``.

    An unknown, not approved or ambiguous code (the same code in two workspaces and no ``?b=``
    businessId) answers a plain 404 page and records nothing.
    """
    enrollment = enrollment_for_link(code=normalise_code(code), business_id=request.GET.get("b", ""))
    if enrollment is None or not enrollment.program.product.url:
        return TemplateResponse(request, "attribution/link_not_found.html", {"code": code}, status=404)
    recorded = click_record(
        enrollment=enrollment,
        ip=request.META.get("REMOTE_ADDR", ""),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        referrer=request.META.get("HTTP_REFERER", ""),
        requested_landing=request.GET.get("to"),
        first_click_id=request.COOKIES.get(CLICK_COOKIE, ""),
    )
    response = HttpResponseRedirect(recorded.redirect_url)
    for name, value in ((CODE_COOKIE, enrollment.referral_code or ""), (CLICK_COOKIE, recorded.click_id)):
        response.set_cookie(name, value, max_age=recorded.max_age, samesite="Lax", secure=request.is_secure())
    return response
