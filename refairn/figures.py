"""The figures an operator checks first, for the console landing page.

``refairn`` may import every app (wiring only), so this is where figures from the store,
attribution and the ledger meet. Each figure is scoped to the operator's workspaces
(``None`` = superuser, all of them).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone

from ingestion.models import Delivery, Event
from ingestion.projections import projection_lag


def _scoped(qs: QuerySet, workspace_ids: list[str] | None, field: str = "workspace_id") -> QuerySet:
    return qs if workspace_ids is None else qs.filter(**{f"{field}__in": workspace_ids})


def events_by_source(workspace_ids: list[str] | None, *, hours: int = 24) -> dict[str, int]:
    since = timezone.now() - timedelta(hours=hours)
    rows = (
        _scoped(Event.objects.filter(recorded_at__gte=since), workspace_ids)
        .values("source").annotate(n=Count("position")).order_by("source")
    )
    return {row["source"]: row["n"] for row in rows}


def failed_deliveries(workspace_ids: list[str] | None, *, hours: int = 24) -> int:
    since = timezone.now() - timedelta(hours=hours)
    verdicts = [Delivery.Verdict.REJECTED, Delivery.Verdict.ERROR]
    return _scoped(Delivery.objects.filter(received_at__gte=since, verdict__in=verdicts), workspace_ids).count()


def console_figures(workspace_ids: list[str] | None) -> dict[str, Any]:
    """Return every landing-page figure; ledger and attribution figures come from their apps."""
    from commissions.figures import commission_totals, commissions_per_week
    from attribution.figures import unattributed_payments

    return {
        "events_by_source": events_by_source(workspace_ids),
        "failed_deliveries": failed_deliveries(workspace_ids),
        "unattributed_payments": unattributed_payments(workspace_ids),
        "commission_totals": commission_totals(workspace_ids),
        "commissions_per_week": commissions_per_week(workspace_ids),
        "projection_lag": projection_lag(),
    }
