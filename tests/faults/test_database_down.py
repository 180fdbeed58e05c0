"""Fault 8 (issue #9): PostgreSQL unreachable.

gunicorn reaches the test database through a TCP proxy this test owns; cutting the proxy makes
the database unreachable for the app (live connections broken, new ones refused) without touching
the shared PostgreSQL server. While it is cut, API and webhook requests answer a JSON 503 (so
providers and callers retry), /readyz says the database is why, and nothing half-done is stored;
when the proxy comes back the same processes serve again by themselves.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from ingestion.models import Delivery, Event
from ingestion.workspaces import CreatedWorkspace, provider_secret_set
from tests.testapp.support import (
    TcpProxy,
    database_url,
    http,
    production_env,
    running,
    start_gunicorn,
    stripe_delivery,
)

# A load thread that dies on an unexpected exception would silently stop sending: fail instead.
pytestmark = [pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")]

SECRET = "whsec_fault8_0123456789abcdef0123456789abcdef"


def _api_event(base: str, tenant: CreatedWorkspace, event_id: str) -> tuple[int, Any, float]:
    body = {"businessId": tenant.workspace.id, "productId": tenant.product.id, "eventId": event_id,
            "email": f"{event_id}@example.com", "amountMinor": 2500, "currency": "EUR"}
    return http(base, "POST", "/api/events/payment-succeeded", body,
                headers={"Authorization": f"Bearer {tenant.api_key.secret}"}, timeout=30)


def _webhook(base: str, tenant: CreatedWorkspace, event_id: str) -> tuple[int, Any, float]:
    body, headers = stripe_delivery(SECRET, event_id)
    return http(base, "POST", f"/webhooks/stripe/{tenant.workspace.id}", raw=body, headers=headers, timeout=30)


def _stored_api_ids() -> set[str]:
    return {row["body"]["eventId"] for row in Event.objects.filter(source="api").values_list("raw", flat=True)}


def test_database_unreachable_answers_503_stores_nothing_partial_and_resumes(
    transactional_db: None, tenant: CreatedWorkspace, logs_dir: Path,
) -> None:
    """Cut: API and webhook requests answer JSON 503 with Retry-After, /readyz 503 names the
    database, /healthz stays 200, nothing of those requests is stored. Under load across the cut,
    every answer is 200 or 503 (never a 500 or a hang) and every acknowledged event is stored.
    Restored: the same gunicorn serves 200 again at once, and retrying the refused requests stores
    each event exactly once."""
    provider_secret_set(workspace=tenant.workspace, provider="stripe", secret=SECRET)
    settings_dict = connection.settings_dict
    proxy = TcpProxy(settings_dict.get("HOST") or "127.0.0.1", int(settings_dict.get("PORT") or 5432))
    proxy.start()
    env = production_env(DATABASE_URL=database_url(host="127.0.0.1", port=proxy.port), CONN_MAX_AGE="60",
                         DB_CONNECT_TIMEOUT="2")
    app, base = start_gunicorn(env, logs_dir / "gunicorn.log")
    try:
        with running(app):
            # Up: both workers hold persistent connections through the proxy.
            assert [_api_event(base, tenant, f"up-{i}")[0] for i in range(4)] == [200] * 4
            assert _webhook(base, tenant, "evt_up_1")[0] == 200
            assert http(base, "GET", "/readyz")[0] == 200

            # Load across the cut: acknowledged ids must all be stored afterwards.
            answers: dict[str, int] = {}
            stop = threading.Event()

            def load(n: int) -> None:
                i = 0
                while not stop.is_set():
                    event_id = f"load-{n}-{i}"
                    answers[event_id] = _api_event(base, tenant, event_id)[0]
                    if answers[event_id] != 200:
                        return  # this client saw the cut; its refused request is retried below
                    i += 1

            threads = [threading.Thread(target=load, args=(n,)) for n in range(3)]
            for t in threads:
                t.start()
            time.sleep(0.5)
            proxy.stop()
            time.sleep(0.5)

            api = _api_event(base, tenant, "down-1")
            hook = _webhook(base, tenant, "evt_down_1")
            ready = http(base, "GET", "/readyz")
            alive = http(base, "GET", "/healthz")
            stop.set()
            for t in threads:
                t.join(60)

            assert (api[0], api[1]["error"]["code"]) == (503, "unavailable"), api
            assert (hook[0], hook[1]["error"]["code"]) == (503, "unavailable"), hook
            assert (ready[0], ready[1]["problems"]) == (503, ["database unreachable (OperationalError)"]), ready
            assert alive[0] == 200
            assert set(answers.values()) <= {200, 503}, Counter_of(answers)
            assert 503 in answers.values()

            proxy.start()  # same port: the app must find the database again by itself
            after = [_api_event(base, tenant, f"after-{i}")[0] for i in range(6)]
            assert after == [200] * 6, after
            assert _webhook(base, tenant, "evt_after_1")[0] == 200
            assert http(base, "GET", "/readyz")[0] == 200

            # Retried refusals: stored now (200), or already stored before the cut hit the answer (409).
            refused = [event_id for event_id, status in answers.items() if status != 200] + ["down-1"]
            retried = {event_id: _api_event(base, tenant, event_id)[0] for event_id in refused}
            assert set(retried.values()) <= {200, 409}, retried
            assert _webhook(base, tenant, "evt_down_1")[0] == 200
    finally:
        proxy.stop()

    stored = _stored_api_ids()
    acknowledged = {event_id for event_id, status in answers.items() if status == 200}
    assert acknowledged <= stored
    assert stored == {f"up-{i}" for i in range(4)} | {f"after-{i}" for i in range(6)} | set(answers) | {"down-1"}
    assert Event.objects.filter(source="api").count() == len(stored)  # each exactly once
    # Webhooks: the refused delivery was never recorded (no half-written delivery), its retry was.
    deliveries = list(Delivery.objects.filter(provider="stripe").values_list("verdict", flat=True))
    assert sorted(deliveries) == ["accepted", "accepted", "accepted"]
    assert Event.objects.filter(source="stripe").count() == 3


def Counter_of(answers: dict[str, int]) -> dict[int, int]:  # noqa: N802 - reads as a type in messages
    counts: dict[int, int] = {}
    for status in answers.values():
        counts[status] = counts.get(status, 0) + 1
    return counts
