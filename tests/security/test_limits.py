"""Security gate 13 (issue #9): every limit refuses what is past it.

Limits already tested where their feature lives (not repeated here):

* body size: API events 256 KiB (tests/api/test_events.py ``test_a_body_over_256_kib_is_413``,
  ``test_a_declared_length_over_256_kib_is_413_before_reading``), batch 1 MiB
  (tests/api/test_batch.py ``test_a_batch_over_1_mib_is_413``), webhooks 2 MiB for one provider
  (tests/providers/test_webhook_endpoint.py ``test_oversized_body_answers_413_without_reading_it``);
* rate per key, in one process (tests/api/test_throttling.py);
* CSV size and row cap in the importer and POST /api/imports (tests/csv/test_csv_import.py,
  tests/csv/test_imports_api.py);
* page size on /api/events (tests/api/test_reads.py).

Here: the same limits on every door they guard — every paginated list, every provider's webhook,
the admin upload and the ``import_csv`` command — and the per-key rate in the production shape,
where several gunicorn worker processes must share one counter per key through Redis.
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from ingestion.models import Delivery, Event, ImportJob
from ingestion.webhooks import MAX_WEBHOOK_BYTES
from ingestion.workspaces import CreatedWorkspace, provider_secret_set, workspace_create
from refairn.pagination import MAX_LIMIT
from tests.testapp.support import RedisServer, http, production_env, running, start_gunicorn, wait_until

PROVIDERS = ["stripe", "paystack", "flutterwave", "paddle", "lemonsqueezy"]
CSV_HEADER = b"Customer Name,Customer Email,Plan,Amount Paid,Subscription Status,Agent Code,Payment Date\r\n"


def _csv(rows: int) -> bytes:
    return CSV_HEADER + b"".join(f"C {i},c{i}@example.com,Pro,10.00,active,,2024-05-03\r\n".encode()
                                 for i in range(rows))


def _paginated_lists() -> list[str]:
    """Every GET operation of the OpenAPI schema that takes a ``limit`` (so new lists are checked too)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(path for path, operations in schema["paths"].items()
                  if any(p.get("name") == "limit" for p in operations.get("get", {}).get("parameters", [])))


# --- page size ------------------------------------------------------------------------------------

def test_every_paginated_list_refuses_a_page_over_200_and_serves_200(api: APIClient) -> None:
    """On each list of the API, ``limit=201`` is a 400 on ``limit`` and ``limit=200`` is served."""
    lists = _paginated_lists()
    assert {"/api/events", "/api/agents", "/api/customers", "/api/commissions", "/api/payouts"} <= set(lists)
    wrong: dict[str, tuple[int, int]] = {}
    for path in lists:
        over = api.get(path, {"limit": MAX_LIMIT + 1})
        at = api.get(path, {"limit": MAX_LIMIT})
        field = over.json().get("error", {}).get("field") if over.status_code == 400 else None
        if (over.status_code, field, at.status_code) != (400, "limit", 200):
            wrong[path] = (over.status_code, at.status_code)
    assert wrong == {}


# --- body size on every provider's webhook --------------------------------------------------------

@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_webhook_body_over_2_mib_is_413_for_every_provider(tenant: CreatedWorkspace, provider: str) -> None:
    """Past MAX_WEBHOOK_BYTES each provider's receiver answers 413, stores no body and appends nothing."""
    provider_secret_set(workspace=tenant.workspace, provider=provider, secret="limit-test-secret-0123456789")
    body = b'{"pad": "' + b"x" * MAX_WEBHOOK_BYTES + b'"}'
    response = Client().post(f"/webhooks/{provider}/{tenant.workspace.id}", data=body,
                             content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    delivery = Delivery.objects.get()
    assert (delivery.verdict, delivery.body) == ("rejected", "")
    assert Event.objects.exists() is False


# --- CSV size and row cap on the other doors -----------------------------------------------------

@pytest.fixture
def admin_client(db: None, settings: Any, tmp_path: Path) -> Client:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789")
    client = Client()
    client.force_login(user)
    return client


def _upload(client: Client, workspace_id: str, data: bytes) -> Any:
    return client.post("/admin/ingestion/importjob/upload/", {
        "workspace": workspace_id, "dry_run": "", "file": SimpleUploadedFile("c.csv", data, content_type="text/csv"),
    }, follow=True)


def test_the_admin_upload_refuses_a_csv_over_the_size_limit(admin_client: Client, tenant: CreatedWorkspace) -> None:
    """The console's upload form refuses a file past REFAIRN_CSV_MAX_BYTES; no job, no event."""
    data = _csv(5)
    with override_settings(REFAIRN_CSV_MAX_BYTES=len(data) - 1):
        response = _upload(admin_client, tenant.workspace.id, data)
    assert response.status_code == 200
    assert f"the limit is {len(data) - 1:,} bytes" in response.content.decode()
    assert ImportJob.objects.exists() is False
    assert Event.objects.filter(source="csv").exists() is False


def test_the_admin_upload_fails_a_csv_over_the_row_cap_and_appends_nothing(
    admin_client: Client, tenant: CreatedWorkspace,
) -> None:
    """Past REFAIRN_CSV_MAX_ROWS the uploaded job fails with the reason; nothing is appended."""
    with override_settings(REFAIRN_CSV_MAX_ROWS=3):
        _upload(admin_client, tenant.workspace.id, _csv(4))
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FAILED
    assert "more than 3 rows" in job.message
    assert Event.objects.filter(source="csv").exists() is False


def test_the_import_command_refuses_a_csv_over_the_size_limit(tenant: CreatedWorkspace, tmp_path: Path) -> None:
    """``manage.py import_csv`` stops before reading a file past REFAIRN_CSV_MAX_BYTES."""
    path = tmp_path / "big.csv"
    path.write_bytes(_csv(5))
    with override_settings(REFAIRN_CSV_MAX_BYTES=path.stat().st_size - 1), \
            pytest.raises(CommandError, match="REFAIRN_CSV_MAX_BYTES"):
        call_command("import_csv", "--business", tenant.workspace.id, str(path), "--no-progress")
    assert Event.objects.filter(source="csv").exists() is False


# --- the per-key rate across gunicorn workers -----------------------------------------------------

RATE = 6


def _status_of(connection: socket.socket) -> int:
    """The status code of the answer read from a raw connection (0 if none came)."""
    head = connection.recv(64)
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return int(match.group(1)) if match else 0


ACCESS = re.compile(r"^<(\d+)> (\d{3}) /api/events$", re.MULTILINE)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_the_rate_per_key_is_shared_by_every_gunicorn_worker_through_redis(
    transactional_db: None, tenant: CreatedWorkspace, tmp_path: Path, logs_dir: Path,
) -> None:
    """Production shape (2 gunicorn workers, CACHE_URL on Redis, REFAIRN_API_RATE=6/day): requests
    with one key, served by both workers, get exactly 6 answers 200 and 429 after that, whichever
    worker serves them; another workspace's key is still served."""
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    other = workspace_create(name="Globex", base_currency="EUR")
    env = production_env(CELERY_BROKER_URL=redis_server.url, CACHE_URL=redis_server.url.replace("/0", "/1"),
                         REFAIRN_API_RATE=f"{RATE}/day")
    log = logs_dir / "gunicorn.log"
    app, base = start_gunicorn(env, log, workers=2, extra_args=["--access-logformat", "%(p)s %(s)s %(U)s"])
    answers: list[int] = []
    host, port = base.removeprefix("http://").split(":")

    def get(secret: str) -> int:
        return http(base, "GET", "/api/events", headers={"Authorization": f"Bearer {secret}"})[0]

    def pids() -> set[str]:
        return {pid for pid, _ in ACCESS.findall(app.output())}

    try:
        with running(app):
            # Each round pins one sync worker with a request whose headers are not finished (it
            # blocks reading them), so the round's other requests must be served by the other worker;
            # then the pinned request is finished and answered by the first. Which worker is pinned
            # is the kernel's choice, so rounds repeat until both have served (bounded).
            for _ in range(10):
                with socket.create_connection((host, int(port)), timeout=15) as pinned:
                    pinned.sendall(f"GET /api/events HTTP/1.1\r\nHost: {host}\r\n"
                                   f"Authorization: Bearer {tenant.api_key.secret}\r\n".encode())
                    answers.extend(get(tenant.api_key.secret) for _ in range(2))
                    pinned.sendall(b"Connection: close\r\n\r\n")
                    answers.append(_status_of(pinned))
                served = len(answers)
                wait_until(lambda served=served: len(ACCESS.findall(app.output())) >= served, timeout=10,
                           message="the access log to show every request")
                if len(pids()) >= 2 and len(answers) > 2 * RATE:
                    break
            other_status = get(other.api_key.secret)
            # gunicorn logs a request after answering it: wait for the line of this last one.
            wait_until(lambda: len(ACCESS.findall(app.output())) >= len(answers) + 1, timeout=10,
                       message="the access log to show the other key's request")
            log_text = app.output()
    finally:
        redis_server.stop()

    assert len(pids()) >= 2, "only one gunicorn worker served: the sharing was not exercised"
    assert 0 not in answers, Counter(answers)
    assert len(answers) > 2 * RATE, Counter(answers)
    assert Counter(answers) == {200: RATE, 429: len(answers) - RATE}
    served_ok = Counter(pid for pid, status in ACCESS.findall(log_text) if status == "200")
    assert sum(served_ok.values()) == RATE + 1  # this key's six and the other key's one
    assert other_status == 200
