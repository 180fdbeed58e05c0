"""Read back what a webhook appended, in store order, for exact assertions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ingestion.models import Event


def appended(biz: str, provider: str) -> list[dict[str, Any]]:
    """Every event of ``provider`` in ``biz``: type, source_event_id, occurred_at and data."""
    return [
        {"type": e.type, "source_event_id": e.source_event_id, "occurred_at": e.occurred_at, "data": e.data}
        for e in Event.objects.filter(workspace_id=biz, source=provider).order_by("position")
    ]


def at(value: int | str) -> datetime:
    """A unix timestamp or an ISO string as an aware UTC datetime."""
    if isinstance(value, int):
        return datetime.fromtimestamp(value, tz=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
