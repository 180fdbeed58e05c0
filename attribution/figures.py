"""Console figures from attribution: payments no agent was credited with.

A payment that arrives before its customer's signup is parked unattributed and claimed later,
so this figure is "unattributed as far as the projection has read the store", which is why the
landing page shows the projection lag next to it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Sum

from ingestion.money import from_minor

from .models import PaymentRecord


def unattributed_payments(workspace_ids: list[str] | None) -> dict[str, Any]:
    """Count the distinct payments with no attribution, with their total per currency.

    ``workspace_ids`` limits the figure to an operator's workspaces (``None``: all of them).
    Each payment counts once whatever channels reported it (``PaymentRecord`` is per
    ``payment_ref``).
    """
    qs = PaymentRecord.objects.filter(attributed=False)
    if workspace_ids is not None:
        qs = qs.filter(workspace_id__in=workspace_ids)
    rows = qs.order_by("currency").values("currency").annotate(n=Count("id"), total=Sum("amount"))
    totals = [{"currency": row["currency"], "count": row["n"], "amount_minor": row["total"] or 0,
               "amount": from_minor(row["total"] or 0, row["currency"])} for row in rows]
    return {"count": sum(row["count"] for row in totals), "totals": totals}
