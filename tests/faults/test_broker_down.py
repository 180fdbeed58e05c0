"""Fault 7 (issue #9): Redis stopped while events keep arriving.

The app (gunicorn), a worker with beat and the broker are real processes; the broker is a private
redis-server this test stops and starts again (the shared Redis is never touched). While it is
down every API request is still answered 200 and stored, and publishing the wake-up fails fast;
once it is back, the periodic (beat) run catches every projection up with no event skipped.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ingestion import projections
from ingestion.models import Event
from ingestion.store import event_append_many, store_head
from ingestion.workspaces import CreatedWorkspace
from tests.testapp.models import ProjectedEvent
from tests.testapp.projectors import DEPENDENT, RECORDER
from tests.testapp.support import (
    Driver,
    RedisServer,
    http,
    new_event,
    production_env,
    running,
    start_celery_worker,
    start_gunicorn,
    wait_for_worker_ready,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

# Generous bound: a publish that waited on a dead broker would take its full connection retry
# cycle (seconds to minutes); the settings bound it to a 0.5 s connect timeout and no retry.
HANG = 3.0


def _post_payments(base: str, tenant: CreatedWorkspace, prefix: str, count: int,
                   spacing: float = 0.0) -> list[tuple[int, Any, float]]:
    answers = []
    for i in range(count):
        body = {"businessId": tenant.workspace.id, "productId": tenant.product.id, "eventId": f"{prefix}-{i}",
                "email": f"{prefix}-{i}@example.com", "amountMinor": 1000 + i, "currency": "USD"}
        answers.append(http(base, "POST", "/api/events/payment-succeeded", body,
                            headers={"Authorization": f"Bearer {tenant.api_key.secret}"}))
        if spacing:
            time.sleep(spacing)  # past the 100 ms coalescing window: every append publishes
    return answers


def _caught_up() -> bool:
    head = store_head()
    return min(projections.checkpoint_position(n) for n in (RECORDER, DEPENDENT)) >= head > 0


def test_events_are_answered_and_stored_while_redis_is_down_and_beat_catches_up(
    transactional_db: None, tenant: CreatedWorkspace, recorder: Any, dependent: Any, tmp_path: Path,
    logs_dir: Path,
) -> None:
    """Redis stops: API appends keep answering 200 (no request waits on the broker) and are stored,
    the projections fall behind; Redis returns: with no new request, beat's run catches every
    projection up, each event applied exactly once; later appends wake the worker again."""
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    # As in docker-compose: the broker AND the cache (per-key rate counters) on the same Redis.
    env = production_env(CELERY_BROKER_URL=redis_server.url, CACHE_URL=redis_server.url.replace("/0", "/1"),
                         REFAIRN_CATCH_UP_SECONDS="1")
    app, base = start_gunicorn(env, logs_dir / "gunicorn.log")
    worker = start_celery_worker(redis_server.url, logs_dir / "worker.log", beat=True, REFAIRN_CATCH_UP_SECONDS="1")
    publisher = None
    try:
        with running(app), running(worker):
            wait_for_worker_ready(worker)
            before = _post_payments(base, tenant, "up", 5)
            assert [a[0] for a in before] == [200] * 5, before
            wait_until(_caught_up, timeout=60, message="projection while Redis is up")

            redis_server.stop()
            during = _post_payments(base, tenant, "down", 15, spacing=0.12)
            publisher = Driver(logs_dir / "publisher.log", CELERY_BROKER_URL=redis_server.url)
            publish_seconds = [publisher.call(op="publish")["seconds"] for _ in range(3)]

            assert [a[0] for a in during] == [200] * 15, during
            assert max(a[2] for a in during) < HANG, [round(a[2], 3) for a in during]
            assert max(publish_seconds) < HANG, publish_seconds
            answered = {a[1]["eventId"] for a in during}
            assert Event.objects.filter(event_id__in=answered).count() == 15
            assert projections.checkpoint_position(RECORDER) < store_head()

            redis_server.start()  # same port; no request is sent until beat has caught up
            try:
                wait_until(_caught_up, timeout=90, interval=0.2, message="beat to catch up after Redis returned")
            except TimeoutError:
                pytest.fail(f"not caught up; worker log:\n{worker.output()[-4000:]}")

            after = _post_payments(base, tenant, "back", 5)
            assert [a[0] for a in after] == [200] * 5, after
            wait_until(_caught_up, timeout=60, message="projection after Redis returned")
    finally:
        if publisher is not None:
            publisher.stop()
        redis_server.stop()

    stored = Counter(Event.objects.values_list("position", flat=True))
    assert len(stored) == 25
    for name in (RECORDER, DEPENDENT):
        assert Counter(ProjectedEvent.objects.filter(projector=name).values_list("position", flat=True)) == stored


def test_worker_holding_an_unacknowledged_task_survives_redis_going_away(
    transactional_db: None, tmp_path: Path, logs_dir: Path,
) -> None:
    """A worker that holds an unacknowledged wake-up (a countdown task it has reserved) when Redis
    stops keeps running and retries the connection, instead of dying with "Unrecoverable error"
    (the kombu 5.7 close path that refairn.celery guards)."""
    from refairn.celery import app as celery_app

    redis_server = RedisServer(tmp_path)
    redis_server.start()
    worker = start_celery_worker(redis_server.url, logs_dir / "worker.log")
    try:
        with running(worker):
            wait_for_worker_ready(worker)
            with celery_app.connection_for_write(url=redis_server.url) as conn:
                celery_app.send_task("ingestion.tasks.run_projections", countdown=120, connection=conn)
            wait_until(lambda: "received" in worker.output(), timeout=30, message="the worker to reserve the task")

            redis_server.stop()
            wait_until(lambda: "Cannot connect to redis" in worker.output() or not worker.alive(), timeout=30,
                       message="the worker to notice the broker is gone")
            log = worker.output()
            assert worker.alive(), log[-3000:]
            assert "Unrecoverable error" not in log
            assert "unacknowledged message(s) stay in Redis" in log
    finally:
        redis_server.stop()


def test_worker_acking_a_task_that_finished_while_redis_was_down_keeps_consuming(
    transactional_db: None, tenant: CreatedWorkspace, recorder: Any, dependent: Any, no_wakeups: None,
    tmp_path: Path, logs_dir: Path,
) -> None:
    """A projection task is held inside its batch (a gate file) until Redis has stopped; it then
    finishes while the broker is down, so its late ack waits for the connection. When Redis is
    back, that ack goes to the old, closed channel: the worker must log it and keep running (not
    die with "Unrecoverable error"), and a later wake-up is consumed and projected."""
    from refairn.celery import app as celery_app

    def wake() -> None:
        with celery_app.connection_for_write(url=redis_server.url) as conn:
            celery_app.send_task("ingestion.tasks.run_projections", connection=conn)

    redis_server = RedisServer(tmp_path)
    redis_server.start()
    gate = tmp_path / "gate"
    worker = start_celery_worker(redis_server.url, logs_dir / "worker.log", REFAIRN_TEST_PROJECTOR_GATE=str(gate))
    try:
        with running(worker):
            wait_for_worker_ready(worker)
            event_append_many([new_event(tenant.workspace.id, f"held-{i}") for i in range(3)])
            wake()
            wait_until(lambda: "received" in worker.output(), timeout=30, message="the worker to take the task")

            redis_server.stop()
            wait_until(lambda: "Cannot connect to redis" in worker.output() or not worker.alive(), timeout=30,
                       message="the worker to notice the broker is gone")
            assert projections.checkpoint_position(RECORDER) == 0, "the task was not held until Redis stopped"
            gate.touch()  # the held task finishes now, while the broker is down
            wait_until(lambda: "succeeded" in worker.output() or not worker.alive(), timeout=60,
                       message="the held task to finish")
            assert _caught_up()

            redis_server.start()
            wait_until(lambda: worker.output().count("Connected to redis") >= 2 or not worker.alive(), timeout=60,
                       message="the worker to reconnect")
            event_append_many([new_event(tenant.workspace.id, f"after-{i}") for i in range(3)])
            wake()
            try:
                wait_until(lambda: _caught_up() or not worker.alive(), timeout=60, message="the next wake-up")
            finally:
                log = worker.output()
            assert worker.alive(), log[-4000:]
            assert _caught_up()
    finally:
        redis_server.stop()

    assert "Unrecoverable error" not in log
    stored = Counter(Event.objects.values_list("position", flat=True))
    assert Counter(ProjectedEvent.objects.filter(projector=RECORDER).values_list("position", flat=True)) == stored
