"""The CSV importer appends batch by batch: each batch committed on its own, counted once it is in.

Batches of a few events, so a small file is appended in many batches; ``transaction=True``, so each
batch really commits on its own, as in production.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from agents.models import Enrollment
from agents.services import enrollment_remove
from ingestion import csv_import
from ingestion.csv_import import ImportResult
from ingestion.models import Event, Workspace
from ingestion.store import Appended, NewEvent
from ingestion.workspaces import CreatedWorkspace, workspace_create
from tests.factories import AgentFactory, ProgramFactory, approved_enrollment

from .conftest import make_csv, row

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SMALL_BATCH = 6  # events per batch: 3 rows, so the file below is appended in about 20 batches


def payments_file(rows: int = 60) -> bytes:
    """Rows of 17 customers: repeat payments, trials, cancellations, an inactive code (GONE: the
    row is refused), a bad amount, and one payment reported twice (a duplicate of an earlier line)."""
    out: list[tuple[str, ...]] = []
    for index in range(rows):
        amount = "0" if index % 11 == 0 else ("oops" if index % 13 == 7 else "49.00")
        out.append(row(f"c{index % 17}@example.com", name=f"Customer {index % 17}", amount=amount,
                       code=("ANNA", "BEN", "", "GONE")[index % 4] if index % 17 else "ANNA",
                       status="cancelled" if index % 5 == 0 else "active",
                       date=(date(2024, 1, 1) + timedelta(days=index)).isoformat()))
    out.append(out[10])
    return make_csv(out)


@pytest.fixture
def twin(codes: dict[str, Enrollment]) -> Workspace:
    """A second workspace with the same agent codes as the tenant's (ANNA, BEN; GONE removed)."""
    created = workspace_create(name="Acme twin", base_currency="USD", product_url="https://twin.acme.test/")
    program = ProgramFactory(workspace=created.workspace, product=created.product)
    for code in ("ANNA", "BEN", "GONE"):
        enrollment = approved_enrollment(program=program, code=code, agent=AgentFactory(
            workspace=created.workspace, email=f"{code.lower()}@partners.test"))
        if code == "GONE":
            enrollment_remove(enrollment=enrollment, reason="left")
    return created.workspace


@pytest.fixture
def small_batches(settings: Any) -> int:
    settings.REFAIRN_CSV_BATCH_EVENTS = SMALL_BATCH
    return SMALL_BATCH


def test_a_failing_append_reaches_the_caller_and_keeps_the_batches_before_it(
        run: Callable[..., ImportResult], tenant: CreatedWorkspace, small_batches: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The third append raises: the error reaches the caller; the first two batches stay, nothing after."""
    real = csv_import.event_append_many
    sent: list[list[str]] = []

    def failing(events: list[NewEvent]) -> list[Appended]:
        sent.append([event.source_event_id for event in events])
        if len(sent) == 3:
            raise RuntimeError("the database went away")
        return real(events)

    monkeypatch.setattr(csv_import, "event_append_many", failing)
    progress: list[int] = []
    with pytest.raises(RuntimeError, match="went away"):
        run(payments_file(), progress=lambda r: progress.append(r.events_appended))
    assert len(sent) == 3
    stored = list(Event.objects.filter(workspace=tenant.workspace, source="csv").order_by("position")
                  .values_list("source_event_id", flat=True))
    assert stored == sent[0] + sent[1]
    assert progress[-1] == len(stored)  # the two appended batches were counted and reported, the third not


def test_uploading_again_after_a_failure_appends_only_what_is_missing(
        run: Callable[..., ImportResult], tenant: CreatedWorkspace, twin: Workspace, small_batches: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = csv_import.event_append_many
    calls = [0]

    def failing(events: list[NewEvent]) -> list[Appended]:
        calls[0] += 1
        if calls[0] == 4:
            raise RuntimeError("the database went away")
        return real(events)

    monkeypatch.setattr(csv_import, "event_append_many", failing)
    with pytest.raises(RuntimeError):
        run(payments_file())
    partial = Event.objects.filter(workspace=tenant.workspace, source="csv").count()
    monkeypatch.setattr(csv_import, "event_append_many", real)
    again = run(payments_file())
    clean = csv_import.import_csv(workspace=twin, stream=io.BytesIO(payments_file()), filename="test.csv")
    assert 0 < partial < clean.events_appended
    assert again.events_appended == clean.events_appended - partial
    assert again.events_duplicate == clean.events_duplicate + partial
    assert Event.objects.filter(workspace=tenant.workspace, source="csv").count() == clean.events_appended
    assert run(payments_file()).events_appended == 0


def test_progress_arrives_batch_by_batch_with_rising_counts(
        run: Callable[..., ImportResult], small_batches: int) -> None:
    snapshots: list[dict[str, Any]] = []
    run(payments_file(), progress=lambda r: snapshots.append(r.as_dict()))
    done = [snapshot["rows"]["done"] for snapshot in snapshots]
    batches = done[1:-1]  # the first call (nothing read yet) and the last (the cancellations) repeat
    assert done[0] == 0
    assert len(batches) > 10
    assert batches == sorted(set(batches))
    assert done[-1] == len(payments_file().splitlines()) - 1


def test_a_file_appended_in_many_small_batches_equals_one_appended_in_large_ones(
        run: Callable[..., ImportResult], tenant: CreatedWorkspace, twin: Workspace, settings: Any) -> None:
    """Batch boundaries change nothing: same events, same counts (batches over 100 events go by COPY)."""
    data = payments_file(rows=300)
    settings.REFAIRN_CSV_BATCH_EVENTS = SMALL_BATCH
    small = run(data).as_dict()
    settings.REFAIRN_CSV_BATCH_EVENTS = 240
    large = csv_import.import_csv(workspace=twin, stream=io.BytesIO(data), filename="test.csv").as_dict()

    def stored(workspace_id: str) -> list[tuple]:
        return list(Event.objects.filter(workspace_id=workspace_id, source="csv").order_by("position")
                    .values_list("type", "source_event_id", "occurred_at", "data"))

    assert small["events"]["appended"] > 100
    assert small["rows"]["invalid"] > 0
    assert large == small
    assert stored(tenant.workspace.id) == stored(twin.id)
