"""The public referral link of an enrollment, as agents hand it out (``/r/<code>``)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse

from agents.models import Enrollment
from agents.selectors import enrollment_for_link


def referral_link_path(enrollment: Enrollment) -> str:
    """``/r/<code>``, with ``?b=<businessId>`` when another workspace's earlier approval owns the bare code."""
    path = reverse("referral-link", args=[enrollment.referral_code])
    owner = enrollment_for_link(code=enrollment.referral_code)
    if owner is not None and owner.pk != enrollment.pk:
        path += "?" + urlencode({"b": enrollment.workspace_id})
    return path
