"""The CSV importer's pipelined append (issue #9): a batch is appended on a second thread while the
next one is read and planned, on PostgreSQL, outside any transaction.

These tests run the pipeline for real: ``transaction=True`` (so the importer is not inside the
test's transaction) and batches of a few events, so that many appends are handed over. Each run
records on which thread every append ran, so a test of the pipelined path fails if the pipeline
was not used. Timings are never asserted here (bench/csv_import.py measures them).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from agents.models import Enrollment
from agents.services import enrollment_remove
from ingestion import csv_import
from ingestion.csv_import import ImportResult, import_csv, pipeline_appends
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


@pytest.fixture
def append_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the thread each append of the importer ran on, in call order."""
    threads: list[str] = []
    real = csv_import.event_append_many

    def spy(events: list[NewEvent]) -> list[Appended]:
        threads.append(threading.current_thread().name)
        return real(events)

    monkeypatch.setattr(csv_import, "event_append_many", spy)
    return threads


def on_main_thread(threads: list[str]) -> bool:
    return bool(threads) and all(name == threading.main_thread().name for name in threads)


def on_append_thread(threads: list[str]) -> bool:
    return bool(threads) and all(name != threading.main_thread().name for name in threads)


def import_into(workspace: Workspace, data: bytes, *, pipeline: bool, settings: Any) -> dict[str, Any]:
    """Import ``data`` with the pipeline on or off; return the result, plan, progress snapshots and events."""
    settings.REFAIRN_CSV_PIPELINE = pipeline
    plan: list[dict[str, Any]] = []
    progress: list[dict[str, Any]] = []
    result = import_csv(workspace=workspace, stream=io.BytesIO(data), filename="payments.csv",
                        plan=plan.append, progress=lambda r: progress.append(r.as_dict()))
    events = [(e.type, e.source_event_id, e.occurred_at, e.data, e.raw)
              for e in Event.objects.filter(workspace=workspace, source="csv").order_by("position")]
    return {"result": result.as_dict(), "plan": plan, "progress": progress, "events": events}


def test_the_pipelined_import_appends_the_same_events_and_counts_as_the_synchronous_one(
        tenant: CreatedWorkspace, twin: Workspace, small_batches: int, append_threads: list[str],
        settings: Any) -> None:
    """Same file, pipeline off then on: the same events in the same order, the same result and plan."""
    data = payments_file()
    synchronous = import_into(twin, data, pipeline=False, settings=settings)
    assert on_main_thread(append_threads)
    append_threads.clear()
    pipelined = import_into(tenant.workspace, data, pipeline=True, settings=settings)
    assert on_append_thread(append_threads)
    assert len(append_threads) > 10
    assert pipelined["events"] == synchronous["events"]
    assert pipelined["result"] == synchronous["result"]
    assert pipelined["plan"] == synchronous["plan"]
    assert pipelined["result"]["rows"]["invalid"] > 0
    assert pipelined["result"]["events"]["appended"] > 0


def test_batches_appended_by_copy_on_the_append_thread_match_the_synchronous_import(
        tenant: CreatedWorkspace, twin: Workspace, append_threads: list[str], settings: Any) -> None:
    """Batches over the store's one-message limit (100 events) go through COPY; pipelined, the same."""
    settings.REFAIRN_CSV_BATCH_EVENTS = 240
    data = payments_file(rows=700)
    synchronous = import_into(twin, data, pipeline=False, settings=settings)
    append_threads.clear()
    pipelined = import_into(tenant.workspace, data, pipeline=True, settings=settings)
    assert on_append_thread(append_threads)
    assert len(append_threads) >= 3
    assert pipelined["events"] == synchronous["events"]
    assert pipelined["result"] == synchronous["result"]


def test_progress_arrives_in_order_batch_by_batch_as_without_the_pipeline(
        tenant: CreatedWorkspace, twin: Workspace, small_batches: int, append_threads: list[str],
        settings: Any) -> None:
    """Each progress call counts exactly the batches whose append is done, rows_done rising each time."""
    data = payments_file()
    synchronous = import_into(twin, data, pipeline=False, settings=settings)
    append_threads.clear()
    pipelined = import_into(tenant.workspace, data, pipeline=True, settings=settings)
    assert on_append_thread(append_threads)
    assert pipelined["progress"] == synchronous["progress"]
    done = [snapshot["rows"]["done"] for snapshot in pipelined["progress"]]
    batches = done[1:-1]  # the first call (nothing read yet) and the last (the cancellations) repeat
    assert done[0] == 0
    assert batches == sorted(set(batches))
    assert done[-1] == len(payments_file().splitlines()) - 1


def test_an_append_failing_on_the_append_thread_reaches_the_caller_and_stops_the_import(
        run: Callable[..., ImportResult], tenant: CreatedWorkspace, small_batches: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The third append raises: the error reaches the caller; the first two batches stay, nothing after."""
    real = csv_import.event_append_many
    sent: list[list[str]] = []
    threads: list[str] = []

    def failing(events: list[NewEvent]) -> list[Appended]:
        sent.append([event.source_event_id for event in events])
        threads.append(threading.current_thread().name)
        if len(sent) == 3:
            raise RuntimeError("the database went away")
        return real(events)

    monkeypatch.setattr(csv_import, "event_append_many", failing)
    progress: list[int] = []
    with pytest.raises(RuntimeError, match="went away"):
        run(payments_file(), progress=lambda r: progress.append(r.events_appended))
    assert len(sent) == 3
    assert on_append_thread(threads)
    stored = list(Event.objects.filter(workspace=tenant.workspace, source="csv").order_by("position")
                  .values_list("source_event_id", flat=True))
    assert stored == sent[0] + sent[1]
    assert progress[-1] == len(stored)  # the two appended batches were counted and reported, the third not


def test_a_failure_while_planning_the_next_batch_still_counts_the_batch_in_flight(
        run: Callable[..., ImportResult], tenant: CreatedWorkspace, small_batches: int, append_threads: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The store check of the fourth batch fails while the third is appended: the third is still reported."""
    real = csv_import._stored_keys
    checks: list[int] = []

    def failing(workspace_id: str, keys: list[str]) -> set[str]:
        checks.append(len(keys))
        if len(checks) == 4:
            raise RuntimeError("lost the connection")
        return real(workspace_id, keys)

    monkeypatch.setattr(csv_import, "_stored_keys", failing)
    progress: list[int] = []
    with pytest.raises(RuntimeError, match="lost the connection"):
        run(payments_file(), progress=lambda r: progress.append(r.events_appended))
    assert len(append_threads) == 3
    assert on_append_thread(append_threads)
    stored = Event.objects.filter(workspace=tenant.workspace, source="csv").count()
    assert stored > 0
    assert progress[-1] == stored


def test_a_re_upload_through_the_pipeline_appends_nothing(
        run: Callable[..., ImportResult], tenant: CreatedWorkspace, small_batches: int,
        append_threads: list[str]) -> None:
    """The second upload of the same file finds every event in the store and appends none."""
    first = run(payments_file())
    assert on_append_thread(append_threads)
    count = Event.objects.filter(workspace=tenant.workspace).count()
    append_threads.clear()
    again = run(payments_file())
    assert append_threads == []  # the store check answers every key: nothing is even sent to append
    assert again.events_appended == 0
    assert again.events_duplicate == first.events_appended + first.events_duplicate
    assert again.rows_new == 0
    assert again.rows_duplicate == first.rows_new + first.rows_duplicate
    assert Event.objects.filter(workspace=tenant.workspace).count() == count


def test_inside_a_transaction_the_import_appends_on_the_callers_connection(
        run: Callable[..., ImportResult], tenant: CreatedWorkspace, small_batches: int,
        append_threads: list[str]) -> None:
    """Within atomic() a second connection could not see the caller's rows: appends stay on the caller's."""
    with transaction.atomic():
        assert not pipeline_appends(dry_run=False)
        result = run(payments_file())
    assert on_main_thread(append_threads)
    assert Event.objects.filter(workspace=tenant.workspace, source="csv").count() == result.events_appended


def test_the_pipeline_is_chosen_outside_transactions_for_real_runs_only(settings: Any) -> None:
    """On PostgreSQL, outside a transaction, a real run pipelines; a dry run or the switch set off does not."""
    assert pipeline_appends(dry_run=False)
    assert not pipeline_appends(dry_run=True)
    settings.REFAIRN_CSV_PIPELINE = False
    assert not pipeline_appends(dry_run=False)


def _sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _settled(expected: int) -> Iterator[int]:
    # A closed session leaves pg_stat_activity a moment after the client hangs up.
    deadline = time.monotonic() + 5
    while True:
        count = _sessions()
        yield count
        if count == expected or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def test_the_append_threads_connection_is_closed_when_the_import_ends(
        run: Callable[..., ImportResult], small_batches: int, append_threads: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No database session is left behind by the append thread, after a success or a failure."""
    before = _sessions()
    run(payments_file())
    assert on_append_thread(append_threads)
    assert list(_settled(before))[-1] == before

    def failing(events: list[NewEvent]) -> list[Appended]:
        raise RuntimeError("refused")

    monkeypatch.setattr(csv_import, "event_append_many", failing)
    with pytest.raises(RuntimeError, match="refused"):
        run(payments_file(rows=90))
    assert list(_settled(before))[-1] == before
