"""Fault 6 (issue #9): a worker killed (SIGKILL) in the middle of a projection batch.

Two ways a worker dies: its pool process alone (the main process sees the loss and, with
``reject_on_worker_lost``, requeues the task), or the whole worker (its unacknowledged wake-up is
stuck until the visibility timeout; the beat run catches up). Either way the batch that was
being applied rolls back with its checkpoint, and the projections end equal to a clean rebuild.

The workers, the writer and the broker are real processes: a ``celery -A refairn worker`` on a
private redis-server (so killing things never disturbs the shared Redis), the test PostgreSQL
database, and the ``tests/testapp/driver.py`` writer.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from agents.models import Enrollment
from ingestion import projections
from ingestion.models import Event, Product, ProjectionCheckpoint
from ingestion.store import NewEvent, event_append_many, store_head
from ingestion.workspaces import CreatedWorkspace
from tests.factories import ProgramFactory, approved_enrollment
from tests.testapp.models import ProjectedEvent
from tests.testapp.projectors import RECORDER, DependentProjector
from tests.testapp.support import (
    Driver,
    Process,
    RedisServer,
    child_pids,
    database_url,
    running,
    start_celery_worker,
    wait_for_worker_ready,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.usefixtures("no_wakeups")]

CUSTOMERS = 12
# Small batches and a slow test projector, so a worker spends most of its time inside a batch.
WORKER_ENV = {"REFAIRN_PROJECTION_BATCH_SIZE": "25", "REFAIRN_TEST_PROJECTOR_SLEEP": "0.004",
              "REFAIRN_CATCH_UP_SECONDS": "1"}


@pytest.fixture
def redis_server(tmp_path: Path) -> Any:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _customers(workspace_id: str, product_id: str) -> list[str]:
    """An approved agent with code KILLTEST and customers who signed up with it; return their emails."""
    program = ProgramFactory(product=Product.objects.get(pk=product_id))
    enrollment = approved_enrollment(program=program, code="KILLTEST")
    assert enrollment.status == Enrollment.Status.APPROVED
    emails = [f"customer{i}@example.com" for i in range(CUSTOMERS)]
    event_append_many([
        NewEvent(workspace_id=workspace_id, source="api", source_event_id=f"signup-{email}", type="customer.created",
                 occurred_at=timezone.now(),
                 data={"email": email, "name": f"Customer {i}", "referral_code": "KILLTEST", "product_id": product_id})
        for i, email in enumerate(emails)
    ])
    return emails


def _payments(workspace_id: str, emails: list[str], prefix: str, count: int) -> None:
    event_append_many([
        NewEvent(workspace_id=workspace_id, source="api", source_event_id=f"{prefix}-{i}", type="payment.succeeded",
                 occurred_at=timezone.now() + timedelta(seconds=1),
                 data={"payment_ref": f"{prefix}-{i}", "email": emails[i % len(emails)], "amount": 1000 + i,
                       "currency": "USD"})
        for i in range(count)
    ])


def _caught_up() -> bool:
    head = store_head()
    names = projections.registered()
    positions = dict(ProjectionCheckpoint.objects.filter(name__in=names).values_list("name", "position"))
    return all(positions.get(name, 0) >= head for name in names)


def _mid_batch(application_name: str) -> bool:
    """True while a session of that process has an open transaction that has written rows."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                       "AND backend_xid IS NOT NULL", [application_name])
        return bool(cursor.fetchone()[0])


def _sessions(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application_name])
        return int(cursor.fetchone()[0])


def _projection_state() -> dict[str, list[tuple]]:
    """Every row of every projection table (attribution, commissions, test projectors), without
    auto-increment ids, in a canonical order: what "equal to a clean rebuild" compares."""
    state: dict[str, list[tuple]] = {}
    for label in ("attribution", "commissions", "testapp"):
        for model in apps.get_app_config(label).get_models():
            fields = [f.attname for f in model._meta.concrete_fields
                      if not (f.primary_key and f.get_internal_type() in ("AutoField", "BigAutoField"))]
            rows = [tuple(repr(value) for value in row) for row in model.objects.values_list(*fields)]
            state[model._meta.label] = sorted(rows)
    return state


def _assert_recorder_consistent() -> None:
    """The recorder's rows are exactly the events up to its checkpoint, each once: no partial batch."""
    checkpoint = projections.checkpoint_position(RECORDER)
    applied = Counter(ProjectedEvent.objects.filter(projector=RECORDER).values_list("position", flat=True))
    expected = Counter(Event.objects.filter(position__lte=checkpoint).values_list("position", flat=True))
    assert applied == expected


def _kill_when_mid_batch(worker: Process, application_name: str, *, whole_worker: bool,
                         still_ok: Callable[[], bool] = lambda: True) -> None:
    def inside() -> bool:
        assert still_ok(), "the load generator failed"
        assert worker.alive(), worker.output()[-3000:]
        return _mid_batch(application_name)

    wait_until(inside, timeout=60, interval=0.002, message="the worker to be inside a projection batch")
    if whole_worker:
        worker.kill(signal.SIGKILL)
        worker.popen.wait(10)
    else:
        pool = child_pids(worker.pid)
        assert pool, "the prefork worker has no pool process"
        for pid in pool:
            os.kill(pid, signal.SIGKILL)


def test_killed_pool_process_task_is_redelivered_and_completed(
    transactional_db: None, tenant: CreatedWorkspace, recorder: Any, dependent: DependentProjector,
    redis_server: RedisServer, logs_dir: Path,
) -> None:
    """One wake-up is published; the worker's pool process is SIGKILLed while it is inside a batch.
    With acks_late + reject_on_worker_lost the task is requeued and run again, so with no other
    wake-up and no beat every projection still reaches the store head, each event applied once."""
    ws = tenant.workspace.id
    emails = _customers(ws, tenant.product.id)
    _payments(ws, emails, "pay", 250)
    app_name = "h6-kill-child"
    worker = start_celery_worker(redis_server.url, logs_dir / "worker.log",
                                 DATABASE_URL=database_url(application_name=app_name), **WORKER_ENV)
    publisher = Driver(logs_dir / "publisher.log", CELERY_BROKER_URL=redis_server.url)
    with running(worker):
        try:
            wait_for_worker_ready(worker)
            publisher.call(op="publish")  # the only wake-up this test ever sends
        finally:
            publisher.stop()
        _kill_when_mid_batch(worker, app_name, whole_worker=False)
        try:
            wait_until(_caught_up, timeout=90, interval=0.2, message="the requeued task to finish")
        except TimeoutError:
            pytest.fail(f"not caught up; worker log:\n{worker.output()[-4000:]}")
        log = worker.output()
    assert "WorkerLostError" in log
    _assert_recorder_consistent()
    assert Counter(ProjectedEvent.objects.filter(projector=RECORDER).values_list("position", flat=True)) == \
        Counter(Event.objects.values_list("position", flat=True))


def test_worker_killed_mid_batch_under_load_ends_equal_to_a_clean_rebuild(
    transactional_db: None, tenant: CreatedWorkspace, recorder: Any, dependent: DependentProjector,
    redis_server: RedisServer, logs_dir: Path,
) -> None:
    """While a writer process appends attributed payments (wake-ups through the broker), the whole
    worker is SIGKILLed inside a batch. The killed batch left nothing behind; a restarted worker
    with beat catches up; and every projection table (attribution, ledger, test projectors) then
    equals what a clean rebuild from the store produces."""
    ws = tenant.workspace.id
    emails = _customers(ws, tenant.product.id)
    _payments(ws, emails, "early", 60)
    first, second = "h6-kill-1", "h6-kill-2"
    writer = Driver(logs_dir / "writer.log", CELERY_BROKER_URL=redis_server.url)
    written: list[Any] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            written.extend(writer.append(ws, "load", 300, spacing=0.005, timeout=120, payment={"emails": emails}))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    load = threading.Thread(target=write)
    try:
        worker = start_celery_worker(redis_server.url, logs_dir / "worker-1.log",
                                     DATABASE_URL=database_url(application_name=first), **WORKER_ENV)
        with running(worker):
            wait_for_worker_ready(worker)
            load.start()
            _kill_when_mid_batch(worker, first, whole_worker=True, still_ok=lambda: not errors)
        assert not worker.alive()
        wait_until(lambda: _sessions(first) == 0, timeout=30, message="the killed worker's sessions to end")
        _assert_recorder_consistent()
        assert load.is_alive() or store_head() > projections.checkpoint_position(RECORDER)

        restarted = start_celery_worker(redis_server.url, logs_dir / "worker-2.log", beat=True,
                                        DATABASE_URL=database_url(application_name=second), **WORKER_ENV)
        with running(restarted):
            load.join(120)
            assert not load.is_alive()
            assert not errors, errors
            try:
                wait_until(_caught_up, timeout=90, interval=0.2, message="the restarted worker to catch up")
            except TimeoutError:
                pytest.fail(f"not caught up; worker log:\n{restarted.output()[-4000:]}")
    finally:
        writer.stop()

    assert len(written) == 300
    assert all(row[3] is True for row in written)
    incremental = _projection_state()
    projections.rebuild()
    rebuilt = _projection_state()
    assert incremental == rebuilt
    assert Counter(ProjectedEvent.objects.filter(projector=RECORDER).values_list("position", flat=True)) == \
        Counter(Event.objects.values_list("position", flat=True))
    assert len(rebuilt["attribution.PaymentAttribution"]) > 0, "attribution decided nothing: not exercised"
    assert len(rebuilt["commissions.LedgerEntry"]) > 0, "the ledger wrote nothing: not exercised"
