"""Fault 9 (issue #9): concurrent writer processes while a projector tails the store → 0 missed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from ingestion import projections
from ingestion.models import Event
from ingestion.workspaces import CreatedWorkspace
from tests.testapp.models import ProjectedEvent
from tests.testapp.projectors import RECORDER, RecordingProjector
from tests.testapp.support import Driver

WRITERS = 4
PER_WRITER = 60


@pytest.mark.postgres
@pytest.mark.slow
def test_projector_tailing_four_writer_processes_misses_nothing(
    transactional_db: None, tenant: CreatedWorkspace, recorder: RecordingProjector, logs_dir: Path,
) -> None:
    """Four OS processes append concurrently, each holding its transaction open a random few
    milliseconds before and after drawing a position, while the recording projector tails the store
    in small batches: afterwards every stored event was applied exactly once (none skipped)."""
    ws = tenant.workspace.id
    drivers = [Driver(logs_dir / f"writer-{n}.log", no_wakeups=True) for n in range(WRITERS)]
    answers: dict[int, list] = {}
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            answers[n] = drivers[n].append(ws, f"w{n}", PER_WRITER, hold=0.004, timeout=120)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    try:
        threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        tailed = 0
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            tailed += projections.run_projection(RECORDER, batch_size=17)
            time.sleep(0.005)
        for t in threads:
            t.join(10)
        tailed += projections.run_projection(RECORDER, batch_size=17)
    finally:
        for driver in drivers:
            driver.stop()

    assert not errors, errors
    appended = [row for rows in answers.values() for row in rows]
    assert len(appended) == WRITERS * PER_WRITER
    assert all(row[3] is True for row in appended), [row for row in appended if row[3] is not True][:3]
    stored = Counter(Event.objects.filter(workspace_id=ws).values_list("position", flat=True))
    applied = Counter(ProjectedEvent.objects.filter(projector=RECORDER).values_list("position", flat=True))
    assert len(stored) == WRITERS * PER_WRITER
    assert applied == stored, f"missed: {sorted(set(stored) - set(applied))[:10]}"
    assert tailed == WRITERS * PER_WRITER
