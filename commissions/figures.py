"""Console figures from the ledger (filled in once the ledger models land)."""

from typing import Any


def commission_totals(workspace_ids: list[str] | None) -> list[dict[str, Any]]:
    return []


def commissions_per_week(workspace_ids: list[str] | None) -> dict[str, Any]:
    return {"labels": [], "series": {}}
