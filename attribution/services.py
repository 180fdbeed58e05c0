"""Recording referral-link clicks: the only write attribution makes outside its projector.

The click is an event in the store like any other; the view (and the demo) only append it and
redirect. Which customer the click earns is decided later, by the projector, from events alone.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.utils import timezone

from agents.models import Enrollment
from ingestion.ids import new_id
from ingestion.store import NewEvent, event_append

_CLICK_ID = re.compile(r"^clk_[a-z0-9]{8,36}$")


@dataclass(frozen=True)
class ClickRecorded:
    """A stored click: its id, the event, where to send the visitor, and the cookies' lifetime."""

    click_id: str
    event_id: str
    position: int
    redirect_url: str
    max_age: int


def ip_hash(ip: str) -> str:
    """Return the salted SHA-256 of an IP address, so no raw IP is ever stored."""
    if not ip:
        return ""
    return hashlib.sha256(f"{settings.SECRET_KEY}:refairn-ip:{ip}".encode()).hexdigest()


def valid_click_id(value: str | None) -> str:
    """Return ``value`` when it looks like one of our click ids (a cookie is untrusted input)."""
    return value if value and _CLICK_ID.match(value) else ""


def with_query(url: str, params: dict[str, str]) -> str:
    """Add ``params`` to ``url``, keeping its existing query (our keys replace any same-named ones)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def landing_target(product_url: str, requested: str | None) -> str:
    """Return where the visitor lands: ``requested`` (``?to=``) when it stays on the product's site.

    A relative path is joined to the product's origin; an absolute URL must have the product URL's
    scheme and host. Anything else falls back to the product URL, so the link is never an open
    redirect.
    """
    if not requested:
        return product_url
    base = urlsplit(product_url)
    if requested.startswith("/") and not requested.startswith("//") and "\\" not in requested:
        target = urlsplit(requested)
        return urlunsplit((base.scheme, base.netloc, target.path, target.query, target.fragment))
    target = urlsplit(requested)
    if target.scheme == base.scheme and target.netloc.lower() == base.netloc.lower():
        return requested
    return product_url


def click_record(*, enrollment: Enrollment, ip: str = "", user_agent: str = "", referrer: str = "",
                 requested_landing: str | None = None, first_click_id: str = "",
                 occurred_at: datetime | None = None) -> ClickRecorded:
    """Append ``click.recorded`` for an approved enrollment's code and say where to redirect.

    ``first_click_id`` is the visitor's earlier click (the ``refairn_click`` cookie); the projector
    follows it to the visitor's first click, where the attribution window starts.
    """
    product_url = enrollment.program.product.url
    click_id = new_id("clk", 24)
    landing = landing_target(product_url, requested_landing)
    first = valid_click_id(first_click_id) or click_id
    appended = event_append(NewEvent(
        workspace_id=enrollment.workspace_id,
        source="link",
        source_event_id=click_id,
        type="click.recorded",
        occurred_at=occurred_at or timezone.now(),
        data={
            "click_id": click_id,
            "referral_code": enrollment.referral_code,
            "landing_url": landing,
            "referrer": referrer[:2000],
            "ip_hash": ip_hash(ip),
            "user_agent": user_agent[:1000],
            "first_click_id": first,
        },
    ))
    terms = enrollment.terms or {}
    days = terms.get("attribution_window_days", enrollment.program.attribution_window_days)
    return ClickRecorded(
        click_id=click_id, event_id=appended.event_id, position=appended.position,
        redirect_url=with_query(landing, {"ref": enrollment.referral_code or "", "rf_click": click_id}),
        max_age=int(days) * 86400,
    )
