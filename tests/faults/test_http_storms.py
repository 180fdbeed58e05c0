"""Faults 5 and 10 (issue #9), through a real gunicorn on the test database.

5. A duplicate storm: one signed Stripe delivery sent 100 times at once → exactly one event.
10. A load run during which gunicorn workers are SIGKILLed → every acknowledged id is stored.

The app runs with a broker URL on a closed port: projection wake-ups fail fast and are dropped
(what the storm measures is the store, not projections), so no request runs projections inline.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ingestion.models import Delivery, Event
from ingestion.workspaces import CreatedWorkspace, provider_secret_set
from tests.testapp.support import (
    child_pids,
    free_port,
    http,
    production_env,
    running,
    start_gunicorn,
    stripe_delivery,
    wait_until,
)

# A load thread that dies on an unexpected exception would silently stop sending: fail instead.
pytestmark = [pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")]

SECRET = "whsec_storm_0123456789abcdef0123456789abcdef"


def _env() -> dict[str, str]:
    return production_env(CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")


def test_the_same_signed_delivery_sent_100_times_concurrently_stores_one_event(
    transactional_db: None, tenant: CreatedWorkspace, logs_dir: Path,
) -> None:
    """100 clients released together post the same signed Stripe delivery to gunicorn (2 workers ×
    10 threads, so many requests race in the database): every request is answered 200, exactly one
    event is stored, one delivery is ``accepted`` and the other 99 ``duplicate``, all naming it."""
    provider_secret_set(workspace=tenant.workspace, provider="stripe", secret=SECRET)
    body, headers = stripe_delivery(SECRET, "evt_storm_0001")
    app, base = start_gunicorn(_env(), logs_dir / "gunicorn.log", workers=2, threads=10)
    barrier = threading.Barrier(100, timeout=60)
    answers: list[tuple[int, Any, float]] = []

    def send() -> None:
        barrier.wait()
        answers.append(http(base, "POST", f"/webhooks/stripe/{tenant.workspace.id}", raw=body, headers=headers,
                            timeout=60))

    with running(app):
        threads = [threading.Thread(target=send) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)

    assert Counter(a[0] for a in answers) == {200: 100}, [a for a in answers if a[0] != 200][:3]
    events = list(Event.objects.filter(source="stripe").values_list("event_id", flat=True))
    assert len(events) == 1
    assert {tuple(a[1]["eventIds"]) for a in answers} == {(events[0],)}
    verdicts = Counter(Delivery.objects.filter(provider="stripe").values_list("verdict", flat=True))
    assert verdicts == {"accepted": 1, "duplicate": 99}


def test_every_acknowledged_event_survives_gunicorn_workers_killed_mid_run(
    transactional_db: None, tenant: CreatedWorkspace, logs_dir: Path,
) -> None:
    """Six clients post unique API events for a few seconds while gunicorn workers are SIGKILLed
    one after another (the master respawns them). Requests on a killed worker may fail, but every
    event answered 200 is in the store, exactly once, and the service answers after the kills."""
    app, base = start_gunicorn(_env(), logs_dir / "gunicorn.log", workers=3)
    answers: dict[str, int] = {}
    stop = threading.Event()

    def load(n: int) -> None:
        i = 0
        while not stop.is_set():
            event_id = f"k{n}-{i}"
            body = {"businessId": tenant.workspace.id, "productId": tenant.product.id, "eventId": event_id,
                    "email": f"{event_id}@example.com", "amountMinor": 100 + i, "currency": "USD"}
            answers[event_id] = http(base, "POST", "/api/events/payment-succeeded", body,
                                     headers={"Authorization": f"Bearer {tenant.api_key.secret}"})[0]
            i += 1

    killed: list[int] = []
    with running(app):
        threads = [threading.Thread(target=load, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        try:
            for _ in range(3):
                time.sleep(0.7)
                workers = wait_until(lambda: child_pids(app.pid), timeout=20, message="gunicorn workers")
                victim = workers[len(killed) % len(workers)]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            time.sleep(0.7)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        final = http(base, "POST", "/api/events/payment-succeeded", {
            "businessId": tenant.workspace.id, "productId": tenant.product.id, "eventId": "final",
            "email": "final@example.com", "amountMinor": 1, "currency": "USD",
        }, headers={"Authorization": f"Bearer {tenant.api_key.secret}"})

    assert len(killed) == 3
    assert final[0] == 200, final
    acknowledged = {event_id for event_id, status in answers.items() if status == 200}
    assert len(acknowledged) > 20
    assert set(answers.values()) <= {0, 200}, Counter(answers.values())  # 0: connection cut by a kill
    stored = Counter(row["body"]["eventId"] for row in Event.objects.filter(source="api").values_list("raw", flat=True))
    assert acknowledged <= set(stored), sorted(acknowledged - set(stored))[:5]
    assert max(stored.values()) == 1
