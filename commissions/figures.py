"""Figures from the ledger for the console landing page and the agent dashboard's chart.

Statuses are never stored (see ``commissions.selectors``), so the totals here go through the
same status derivation as the API's balances: a figure on the landing page and an agent's
balance cannot disagree. Chart series carry decimal strings in major units, never floats;
Chart.js reads a numeric string as a number.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Sum
from django.db.models.functions import TruncMonth, TruncWeek
from django.utils import timezone

from ingestion.money import from_minor

from .models import LedgerEntry
from .selectors import entries_with_status, payable_pairs

BUCKETS = ("pending", "earned", "payable", "on_hold")


def commission_totals(workspace_ids: list[str] | None, *, as_of: datetime | None = None) -> list[dict[str, Any]]:
    """Sum the ledger per currency into pending, earned, payable and on-hold amounts at ``as_of``.

    Amounts are net (a refund's reversal lowers its commission's bucket), in minor units with a
    formatted major-unit twin (``pending_display`` …). Paid and fully reversed money is left out:
    these are the amounts an operator still has to act on. ``workspace_ids`` scopes the figure
    (``None``: every workspace).
    """
    as_of = as_of or timezone.now()
    if workspace_ids is None:
        workspace_ids = list(LedgerEntry.objects.order_by().values_list("workspace_id", flat=True).distinct())
    sums: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BUCKETS, 0))
    for workspace_id in sorted(workspace_ids):
        rows = (entries_with_status(workspace_id=workspace_id, as_of=as_of).order_by()
                .values("agent_id", "currency", "ledger_status").annotate(total=Sum("amount")))
        rows = list(rows)
        if not rows:
            continue
        pairs = payable_pairs(workspace_id=workspace_id, as_of=as_of)
        for row in rows:
            status = row["ledger_status"]
            if status == "earned" and (row["agent_id"], row["currency"]) in pairs:
                status = "payable"
            if status in BUCKETS:
                sums[row["currency"]][status] += row["total"] or 0
    result = []
    for currency in sorted(sums):
        row: dict[str, Any] = {"currency": currency, **sums[currency]}
        row.update({f"{bucket}_display": from_minor(sums[currency][bucket], currency) for bucket in BUCKETS})
        result.append(row)
    return result


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + (day.month - 1) - months_back
    return date(index // 12, index % 12 + 1, 1)


def _series(rows: list[dict[str, Any]], labels: list[date]) -> dict[str, list[str]]:
    """Turn ``{period, currency, total}`` rows into one major-unit list per currency, zeros filled."""
    index = {label: i for i, label in enumerate(labels)}
    minor: dict[str, list[int]] = defaultdict(lambda: [0] * len(labels))
    for row in rows:
        period = row["period"]
        period = period.date() if isinstance(period, datetime) else period
        if period in index:
            minor[row["currency"]][index[period]] += row["total"] or 0
    return {currency: [from_minor(v, currency) for v in minor[currency]] for currency in sorted(minor)}


def commissions_per_week(workspace_ids: list[str] | None, *, weeks: int = 12,
                         now: datetime | None = None) -> dict[str, Any]:
    """Net commissions per ISO week (Monday, UTC) of the last ``weeks`` weeks, one series per currency.

    Each entry counts in the week of its ``occurred_at`` (the payment for a commission, the
    refund, dispute or void for a reversal), so a week shows what it earned minus what it gave back.
    """
    now = now or timezone.now()
    labels = [_week_start(now.astimezone(UTC).date()) - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    since = datetime.combine(labels[0], datetime.min.time(), tzinfo=UTC)
    qs = LedgerEntry.objects.filter(occurred_at__gte=since, occurred_at__lte=now)
    if workspace_ids is not None:
        qs = qs.filter(workspace_id__in=workspace_ids)
    rows = list(qs.annotate(period=TruncWeek("occurred_at", tzinfo=UTC)).order_by()
                .values("period", "currency").annotate(total=Sum("amount")))
    return {"labels": [label.isoformat() for label in labels], "series": _series(rows, labels)}


def earnings_per_month(*, workspace_id: str, agent_id: str, months: int = 12,
                       now: datetime | None = None) -> dict[str, Any]:
    """One agent's net earnings per calendar month (UTC) of the last ``months`` months, per currency."""
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    labels = [_month_start(today, n) for n in range(months - 1, -1, -1)]
    since = datetime.combine(labels[0], datetime.min.time(), tzinfo=UTC)
    rows = list(LedgerEntry.objects.filter(workspace_id=workspace_id, agent_id=agent_id, occurred_at__gte=since,
                                           occurred_at__lte=now)
                .annotate(period=TruncMonth("occurred_at", tzinfo=UTC)).order_by()
                .values("period", "currency").annotate(total=Sum("amount")))
    return {"labels": [label.strftime("%Y-%m") for label in labels], "series": _series(rows, labels)}
