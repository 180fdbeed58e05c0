"""A real worker (issue #2 item 7): Celery configured as DESIGN.md says, and an appended event
projected by a ``celery worker`` subprocess through the real Redis broker (not eager mode)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import override_settings

from ingestion import projections, tasks
from ingestion.store import event_append
from ingestion.workspaces import CreatedWorkspace
from refairn.celery import app
from tests.testapp.models import ProjectedEvent
from tests.testapp.projectors import DEPENDENT, RECORDER
from tests.testapp.support import new_event, running, start_celery_worker, wait_until


@pytest.mark.smoke
def test_celery_is_configured_for_redelivery_and_json() -> None:
    """acks_late, reject_on_worker_lost, prefetch 1 and JSON only, on the app and on the task;
    the task is a wake-up that runs batches (no result stored)."""
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert list(conf.accept_content) == ["json"]
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert conf.task_always_eager is False
    task = tasks.run_projections
    assert task.name in app.tasks
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True
    assert task.ignore_result is True
    assert conf.beat_schedule["catch-up-projections"]["task"] == "ingestion.tasks.run_projections"


@pytest.mark.postgres
@pytest.mark.redis
def test_worker_projects_an_event_woken_through_the_broker(
    transactional_db: None, tenant: CreatedWorkspace, broker_url: str, logs_dir: Path,
) -> None:
    """With in-process runs off, an append publishes a wake-up to Redis after commit; a real
    ``celery -A refairn worker`` subprocess consumes it and projects the event (the test
    projectors' rows appear and their checkpoints reach the event's position)."""
    worker = start_celery_worker(broker_url, logs_dir / "worker.log")
    with running(worker):
        # Let the worker connect before the wake-up is published, so only the broker can deliver it.
        wait_until(lambda: "ready." in worker.output() or not worker.alive(), timeout=60, interval=0.2,
                   message="the worker to be ready")
        assert worker.alive(), worker.output()[-3000:]
        with override_settings(REFAIRN_RUN_PROJECTIONS_INLINE=False):
            projections._last_wake = 0.0  # the wake-up coalescing window starts empty
            appended = event_append(new_event(tenant.workspace.id, "via-worker", amount=42))

        def projected() -> bool:
            return projections.checkpoint_position(DEPENDENT) >= appended.position

        try:
            wait_until(projected, timeout=60, interval=0.2, message="the worker to project the event")
        except TimeoutError:
            pytest.fail(f"not projected; worker log:\n{worker.output()[-4000:]}")

    row = ProjectedEvent.objects.get(projector=RECORDER)
    assert (row.event_id, row.amount) == (appended.event_id, 42)
    assert projections.checkpoint_position(RECORDER) == appended.position
    assert "ingestion.tasks.run_projections" in worker.output()


@pytest.mark.parametrize("method", ["ack", "reject"])
def test_acking_through_a_closed_broker_channel_is_skipped_not_fatal(
    method: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """kombu 5.7 acks (or rejects) a task that ran across a broker outage through its old channel,
    whose transport is gone: unguarded that raises AttributeError and kills the worker
    ("Unrecoverable error"); refairn.celery skips it with a warning (the message is redelivered)."""
    from kombu.transport import redis as kombu_redis

    channel = kombu_redis.Channel.__new__(kombu_redis.Channel)
    # What Channel.close() leaves behind: no transport, no pool, not polling.
    channel.connection, channel._pool, channel._in_poll = None, None, False
    qos = kombu_redis.QoS.__new__(kombu_redis.QoS)
    qos.channel = channel
    qos._delivered = {"tag-1": object()}
    guarded = getattr(kombu_redis.QoS, method)

    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'client'"):
        guarded.__wrapped__(qos, "tag-1")
    guarded(qos, "tag-1")

    assert qos._delivered == {}
    assert f"its {method} is skipped" in caplog.text
