"""The Celery app. Tasks are wake-ups for projection batches, never the unit of work."""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refairn.settings.base")

logger = logging.getLogger(__name__)


def _survive_broker_loss() -> None:
    """Keep a worker alive when Redis goes away while it holds an unacknowledged task.

    With ``acks_late`` a worker nearly always holds one. Celery 5.7 / kombu 5.7, on losing the
    broker, first ``collect()``s the connection (which fails half-way while Redis is down and
    then detaches the transport), then ``close()``s it again; that second close tries to put
    the held messages back through the detached transport and raises ``AttributeError``
    ("'NoneType' object has no attribute 'hostname'"), which is not a connection error, so the
    worker dies with "Unrecoverable error" instead of reconnecting (tests/faults/
    test_broker_down.py reproduces it). Here, when the transport is already detached, the
    restore is skipped: the messages stay in Redis's unacked set, which kombu restores after
    its visibility timeout, and the beat run catches the projections up meanwhile. Acking or
    rejecting, after the reconnection, a task that ran across the outage hits the same detached
    channel; see ``_undeliverable``.
    """
    try:
        from kombu.transport import redis as kombu_redis
    except ImportError:  # pragma: no cover - redis extra not installed
        return
    original = kombu_redis.QoS.restore_unacked
    if getattr(original, "refairn_guarded", False):
        return

    def restore_unacked(self: Any, client: Any = None) -> Any:
        if client is None and getattr(self.channel.connection, "client", None) is None:
            logger.warning("broker connection already closed; %d unacknowledged message(s) stay in Redis "
                           "until its visibility timeout", len(self._delivered))
            self._delivered.clear()
            return None
        return original(self, client)

    @functools.wraps(kombu_redis.QoS.ack)
    def ack(self: Any, delivery_tag: Any) -> Any:
        if _detached(self):
            _undeliverable("ack", delivery_tag, self)
            return None
        return original_ack(self, delivery_tag)

    @functools.wraps(kombu_redis.QoS.reject)
    def reject(self: Any, delivery_tag: Any, requeue: bool = False) -> Any:
        if _detached(self):
            _undeliverable("reject", delivery_tag, self)
            return None
        return original_reject(self, delivery_tag, requeue=requeue)

    original_ack, original_reject = kombu_redis.QoS.ack, kombu_redis.QoS.reject
    restore_unacked.refairn_guarded = True  # type: ignore[attr-defined]
    kombu_redis.QoS.restore_unacked = restore_unacked
    kombu_redis.QoS.ack = ack
    kombu_redis.QoS.reject = reject


def _detached(qos: Any) -> bool:
    """True when the QoS's channel no longer has a live transport (its connection was replaced)."""
    return getattr(getattr(qos.channel, "connection", None), "client", None) is None


def _undeliverable(what: str, delivery_tag: Any, qos: Any) -> None:
    """A task that was running while the broker went away finishes after the worker reconnected:
    kombu 5.7 then acks it through the old, detached channel and raises ``AttributeError``
    ("'NoneType' object has no attribute 'client'"), an "Unrecoverable error" that kills the
    worker (tests/faults/test_broker_down.py reproduces it). The ack is skipped instead: the
    message stays in Redis's unacked set and is delivered again after the visibility timeout,
    which costs one extra wake-up (a projection run is idempotent), never a lost one."""
    logger.warning("broker connection was replaced while a task ran; its %s is skipped and the message "
                   "is redelivered after the visibility timeout", what)
    qos._delivered.pop(delivery_tag, None)


_survive_broker_loss()

app = Celery("refairn")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
