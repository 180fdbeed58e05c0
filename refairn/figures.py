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
    """Count the events the store accepted in the last ``hours``, per source (api, stripe, …)."""
    since = timezone.now() - timedelta(hours=hours)
    rows = (
        _scoped(Event.objects.filter(recorded_at__gte=since), workspace_ids)
        .values("source").annotate(n=Count("position")).order_by("source")
    )
    return {row["source"]: row["n"] for row in rows}


def failed_deliveries(workspace_ids: list[str] | None, *, hours: int = 24) -> int:
    """Count the webhook deliveries rejected or failed in the last ``hours``.

    A delivery for an unknown business has no workspace: only a superuser sees it.
    """
    since = timezone.now() - timedelta(hours=hours)
    verdicts = [Delivery.Verdict.REJECTED, Delivery.Verdict.ERROR]
    return _scoped(Delivery.objects.filter(received_at__gte=since, verdict__in=verdicts), workspace_ids).count()


def recent_operator_actions(workspace_ids: list[str] | None, *, limit: int = 8) -> list[Event]:
    """The latest operator events (approvals, payouts, voids …) with who did them."""
    qs = _scoped(Event.objects.filter(source=Event.Source.OPERATOR), workspace_ids)
    return list(qs.order_by("-position").only("position", "event_id", "type", "actor", "recorded_at",
                                               "workspace_id")[:limit])


def console_figures(workspace_ids: list[str] | None) -> dict[str, Any]:
    """Return every landing-page figure; ledger and attribution figures come from their apps.

    Projection lag is global (projections run over the whole store), so it is the same for
    every operator and reveals no workspace's data.
    """
    from attribution.figures import unattributed_payments
    from commissions.figures import commission_totals, commissions_per_week

    return {
        "events_by_source": events_by_source(workspace_ids),
        "failed_deliveries": failed_deliveries(workspace_ids),
        "unattributed_payments": unattributed_payments(workspace_ids),
        "commission_totals": commission_totals(workspace_ids),
        "commissions_per_week": commissions_per_week(workspace_ids),
        "projection_lag": projection_lag(),
        "operator_actions": recent_operator_actions(workspace_ids),
    }
