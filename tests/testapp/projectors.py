"""Test projectors: a recorder (one row per event) and a dependent that checks it runs behind.

Failure and slowness are switched by attributes (tests) or settings (a worker subprocess), so
the same classes serve the in-process tests and the real Celery worker.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings

from ingestion.projections import Projector
from ingestion.store import StoredEvent

from .models import ProjectedEvent

RECORDER = "test_recorder"
DEPENDENT = "test_dependent"
GATE_TIMEOUT = 120.0


class ProjectorFailure(RuntimeError):
    """Raised on purpose by a test projector in the middle of a batch."""


class RecordingProjector(Projector):
    """Writes one row per event, event by event, so a failure lands mid-batch after writes."""

    name = RECORDER

    def __init__(self) -> None:
        self.fail_at_position: int | None = None
        self.sleep_per_event: float = float(getattr(settings, "REFAIRN_TEST_PROJECTOR_SLEEP", 0.0))
        # A file path: each event waits (at most GATE_TIMEOUT s) until the file exists, so a test
        # can hold a worker's task inside a batch for exactly as long as it needs.
        self.gate: str = getattr(settings, "REFAIRN_TEST_PROJECTOR_GATE", "")

    def apply(self, event: StoredEvent) -> None:
        if self.fail_at_position is not None and event.position == self.fail_at_position:
            raise ProjectorFailure(f"{self.name} fails on purpose at position {event.position}")
        if self.sleep_per_event:
            time.sleep(self.sleep_per_event)
        if self.gate:
            deadline = time.monotonic() + GATE_TIMEOUT
            while not Path(self.gate).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        ProjectedEvent.objects.create(
            projector=self.name, position=event.position, event_id=event.event_id,
            workspace_id=event.workspace_id, type=event.type, amount=int(event.data.get("amount", 0)),
        )

    def reset(self) -> None:
        ProjectedEvent.objects.filter(projector=self.name).delete()


class DependentProjector(Projector):
    """Reads the recorder's table: records whether the recorder had already applied each event."""

    name = DEPENDENT
    depends_on = (RECORDER,)

    def apply_batch(self, events: Sequence[StoredEvent], carry: object = None) -> None:
        positions = [e.position for e in events]
        seen = set(
            ProjectedEvent.objects.filter(projector=RECORDER, position__in=positions)
            .values_list("position", flat=True)
        )
        ProjectedEvent.objects.bulk_create([
            ProjectedEvent(projector=self.name, position=e.position, event_id=e.event_id,
                           workspace_id=e.workspace_id, type=e.type, dependency_seen=e.position in seen)
            for e in events
        ])

    def reset(self) -> None:
        ProjectedEvent.objects.filter(projector=self.name).delete()
