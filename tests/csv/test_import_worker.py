"""The import job on a real Celery worker, through the real Redis broker (not eager mode)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from agents.models import Enrollment
from ingestion.models import Event, ImportJob
from ingestion.workspaces import CreatedWorkspace
from refairn.celery import app
from tests.conftest import redis_url
from tests.testapp.support import running, start_celery_worker, wait_until

from .conftest import make_csv, row


@pytest.mark.smoke
def test_the_import_task_is_found_by_celery_autodiscovery() -> None:
    """A worker's start-up discovery registers the import task, with acks_late, no result, a long time limit."""
    app.loader.import_default_modules()  # what ``celery worker`` does at start-up (autodiscover_tasks)
    task = app.tasks["ingestion.import_tasks.import_run"]
    assert task.acks_late is True
    assert task.ignore_result is True
    assert task.time_limit >= 3600


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_runs_an_uploaded_import_through_the_broker(
        transactional_db: None, tenant: CreatedWorkspace, codes: dict[str, Enrollment], media_root: Path,
        tmp_path: Path) -> None:
    """POST /api/imports with a broker: 202 queued; a ``celery worker`` subprocess imports the rows."""
    logs = tmp_path / "logs"
    logs.mkdir()
    worker = start_celery_worker(redis_url(), logs / "worker.log", REFAIRN_DATA_DIR=str(media_root.parent))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.api_key.secret}")
    with running(worker):
        wait_until(lambda: "ready." in worker.output() or not worker.alive(), timeout=60, interval=0.2,
                   message="the worker to be ready")
        assert worker.alive(), worker.output()[-3000:]
        data = make_csv([row(), row("bob@example.com", code="BEN")])
        with override_settings(REFAIRN_RUN_IMPORTS_INLINE=False):
            response = api.post("/api/imports", {
                "businessId": tenant.workspace.id,
                "file": SimpleUploadedFile("customers.csv", data, content_type="text/csv"),
            }, format="multipart")
        assert response.status_code == 202
        assert response.json()["status"] == "queued"
        job_id = response.json()["importId"]
        try:
            wait_until(lambda: ImportJob.objects.get(pk=job_id).status in ("done", "failed"), timeout=60,
                       interval=0.2, message="the worker to run the import")
        except TimeoutError:
            pytest.fail(f"import not run; worker log:\n{worker.output()[-4000:]}")
    job = ImportJob.objects.get(pk=job_id)
    assert (job.status, job.events_appended, job.rows_done) == ("done", 4, 2), job.message
    assert Event.objects.filter(workspace=tenant.workspace, source="csv").count() == 4
    assert "ingestion.import_tasks.import_run" in worker.output()
