"""Fixtures shared by tests/ingestion and tests/faults (imported by their conftest modules)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion import projections
from tests.conftest import redis_url

from .projectors import DependentProjector, RecordingProjector


@pytest.fixture
def no_wakeups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Appends schedule nothing: the test drives the projection runner itself."""
    monkeypatch.setattr(projections, "schedule_run", lambda: None)


@pytest.fixture
def recorder() -> Iterator[RecordingProjector]:
    """The recording test projector, registered for this test only."""
    projector = projections.register(RecordingProjector())
    try:
        yield projector  # type: ignore[misc]
    finally:
        projections.unregister(projector.name)


@pytest.fixture
def dependent(recorder: RecordingProjector) -> Iterator[DependentProjector]:
    """The test projector that depends on the recorder, registered for this test only."""
    projector = projections.register(DependentProjector())
    try:
        yield projector  # type: ignore[misc]
    finally:
        projections.unregister(projector.name)


@pytest.fixture
def broker_url() -> str:
    """The real Redis broker the suite was given (tests using it are marked ``redis``)."""
    return redis_url()


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    """Where subprocess logs go (kept by pytest for a failing test's post-mortem)."""
    path = tmp_path / "logs"
    path.mkdir()
    return path
