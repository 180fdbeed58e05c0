"""``POST /api/imports`` and ``GET /api/imports/<id>``: upload, job, progress, counts, row errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.utils import override_settings
from rest_framework.test import APIClient

from agents.models import Enrollment
from ingestion.models import Event, ImportJob
from ingestion.workspaces import CreatedWorkspace

from .conftest import csv_events, make_csv, row

pytestmark = pytest.mark.django_db

GOOD_AND_BAD = make_csv([row(), row("bob@example.com", code="BEN"), row("cy@example.com", amount="$5")])


def upload(data: bytes, name: str = "customers.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


@pytest.fixture
def post(api: APIClient, tenant: CreatedWorkspace, codes: dict[str, Enrollment],
         django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """POST /api/imports, running the in-process job the way the request's commit would."""

    def _post(data: bytes = GOOD_AND_BAD, *, client: APIClient | None = None, **fields: Any) -> Any:
        body = {"businessId": tenant.workspace.id, "file": upload(data), **fields}
        with django_capture_on_commit_callbacks(execute=True):
            return (client or api).post("/api/imports", body, format="multipart")

    return _post


@pytest.mark.smoke
def test_an_upload_answers_202_with_an_import_id_and_imports_the_rows(post: Callable[..., Any],
                                                                      tenant: CreatedWorkspace) -> None:
    """POST answers 202 with imp_…; without a broker the job has already run, with its counts and errors."""
    response = post()
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["importId"].startswith("imp_")
    assert response["Location"] == f"/api/imports/{body['importId']}"
    assert body["status"] == "done"
    assert body["progress"] == {"rowsTotal": 3, "rowsDone": 3, "percent": 100}
    assert body["counts"] == {"rowsInvalid": 1, "eventsAppended": 4, "eventsDuplicate": 0}
    assert body["errors"] == [{"line": 4, "column": "Amount Paid", "reason": body["errors"][0]["reason"]}]
    assert len(csv_events(tenant.workspace.id)) == 4


def test_get_shows_the_jobs_progress_counts_and_row_errors(post: Callable[..., Any], api: APIClient) -> None:
    """GET /api/imports/<id> gives status, progress, counts, extra columns and row errors."""
    import_id = post(make_csv([(*row(), "x")], header=(*make_csv([]).decode().strip().split(","), "Notes")))
    import_id = import_id.json()["importId"]
    body = api.get(f"/api/imports/{import_id}").json()
    assert body["status"] == "done"
    assert body["extraColumns"] == ["Notes"]
    assert body["counts"]["eventsAppended"] == 2
    assert "appended 2 events" in body["message"]


def test_uploading_the_same_file_again_appends_nothing_and_the_counts_say_so(post: Callable[..., Any]) -> None:
    """A second upload of the same file reports every event as a duplicate."""
    post()
    body = post().json()
    assert body["counts"] == {"rowsInvalid": 1, "eventsAppended": 0, "eventsDuplicate": 4}


def test_a_dry_run_appends_nothing_and_shows_its_plan(post: Callable[..., Any], api: APIClient,
                                                      tenant: CreatedWorkspace) -> None:
    """dryRun=true: nothing appended; the job shows the plan and /plan streams every planned row."""
    body = post(dryRun="true").json()
    assert csv_events(tenant.workspace.id) == []
    assert body["dryRun"] is True
    assert body["counts"]["eventsAppended"] == 4
    assert [entry["line"] for entry in body["plan"]] == [2, 3]
    assert body["plan"][0]["events"][1]["data"]["payment_ref"] == "nk:ada@example.com|2024-05-03|4900|USD"
    response = api.get(body["planUrl"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert lines == body["plan"]


def test_a_real_import_has_no_plan(post: Callable[..., Any], api: APIClient) -> None:
    """Only a dry run has a plan: a real import's /plan is 404."""
    import_id = post().json()["importId"]
    assert api.get(f"/api/imports/{import_id}/plan").status_code == 404


@pytest.mark.parametrize("flag", ["maybe", "2"])
def test_a_dry_run_flag_that_is_not_a_boolean_is_400(post: Callable[..., Any], flag: str) -> None:
    """dryRun must be true or false."""
    response = post(dryRun=flag)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "dryRun"


def test_an_upload_without_a_file_is_400(api: APIClient, tenant: CreatedWorkspace) -> None:
    """The multipart field 'file' is required."""
    response = api.post("/api/imports", {"businessId": tenant.workspace.id}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "file"


def test_an_upload_for_another_business_is_403_and_without_a_key_401(
        api: APIClient, other_tenant: CreatedWorkspace) -> None:
    """businessId must be the key's workspace (403); no key is 401."""
    body = {"businessId": other_tenant.workspace.id, "file": upload(GOOD_AND_BAD)}
    assert api.post("/api/imports", body, format="multipart").status_code == 403
    body["file"] = upload(GOOD_AND_BAD)
    assert APIClient().post("/api/imports", body, format="multipart").status_code == 401
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(("data", "message"), [
    (b"\x00\x01\x02binary", "binary data"),
    (b"name,email\r\nAda,ada@example.com\r\n", "no header row with the expected columns"),
    (b"Customer Name,Customer Email\r\nAda,ada@example.com\r\n", "Missing required columns: Plan"),
])
def test_a_file_that_is_plainly_not_the_csv_is_refused_at_once(post: Callable[..., Any], data: bytes,
                                                                message: str) -> None:
    """Binary content or missing columns: 400 invalid_file, and no job is created."""
    response = post(data)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_file"
    assert message in response.json()["error"]["message"]
    assert not ImportJob.objects.exists()


def test_a_file_over_the_size_limit_is_413(post: Callable[..., Any]) -> None:
    """REFAIRN_CSV_MAX_BYTES applies to uploads: 413 file_too_large."""
    with override_settings(REFAIRN_CSV_MAX_BYTES=len(GOOD_AND_BAD) - 1):
        response = post()
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"


def test_a_defect_found_past_the_start_fails_the_job_with_one_error(post: Callable[..., Any],
                                                                     tenant: CreatedWorkspace) -> None:
    """A row cap exceeded (found by the job's full check) marks the job failed; nothing is appended."""
    with override_settings(REFAIRN_CSV_MAX_ROWS=2):
        body = post().json()
    assert body["status"] == "failed"
    assert "more than 2 rows" in body["message"]
    assert body["errors"] == [{"line": None, "column": None, "reason": body["message"]}]
    assert csv_events(tenant.workspace.id) == []


def test_another_workspaces_import_is_404(post: Callable[..., Any], other_tenant: CreatedWorkspace) -> None:
    """An import id of another workspace answers 404, never the job."""
    import_id = post().json()["importId"]
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_tenant.api_key.secret}")
    assert other.get(f"/api/imports/{import_id}").status_code == 404
    assert other.get("/api/imports/imp_nope").status_code == 404


def test_with_a_broker_the_upload_is_queued_until_the_request_commits(
        api: APIClient, tenant: CreatedWorkspace, settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    """Imports not run in process: 202 with a queued job, one publish waiting for the commit, nothing appended."""
    settings.REFAIRN_RUN_IMPORTS_INLINE = False
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post("/api/imports", {"businessId": tenant.workspace.id, "file": upload(GOOD_AND_BAD)},
                            format="multipart")
    assert response.json()["status"] == "queued"
    assert len(callbacks) == 1
    assert not Event.objects.filter(source="csv").exists()
