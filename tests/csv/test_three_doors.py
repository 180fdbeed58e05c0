"""Three doors, one importer: the admin upload, POST /api/imports and manage.py import_csv."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from agents.models import Enrollment
from ingestion import csv_import, import_jobs
from ingestion.models import ImportJob
from ingestion.workspaces import CreatedWorkspace

from .conftest import csv_events, make_csv, row

pytestmark = pytest.mark.django_db
DATA = make_csv([row(), row("bob@example.com", code="BEN"), row("cy@example.com", amount="$5")])


def test_every_door_runs_the_same_importer_and_the_later_doors_find_everything_in(
        tenant: CreatedWorkspace, codes: dict[str, Enrollment], api: APIClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any) -> None:
    """The same file through the command, the API and the admin: one importer call each, events
    appended once (source csv), and the second and third doors count all four as already in."""
    calls: list[str] = []

    def spy(**kwargs: Any) -> csv_import.ImportResult:
        calls.append(kwargs["filename"])
        return csv_import.import_csv(**kwargs)

    monkeypatch.setattr(import_jobs, "import_csv", spy)
    path = tmp_path / "door-cli.csv"
    path.write_bytes(DATA)
    call_command("import_csv", "--business", tenant.workspace.id, str(path), "--no-progress", stdout=io.StringIO())

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/imports", {"businessId": tenant.workspace.id,
                                             "file": SimpleUploadedFile("door-api.csv", DATA)}, format="multipart")
    assert response.status_code == 202, response.content

    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    admin.post("/admin/ingestion/importjob/upload/", {
        "workspace": tenant.workspace.id, "file": SimpleUploadedFile("door-admin.csv", DATA)}, follow=True)

    assert calls == ["door-cli.csv", "door-api.csv", "door-admin.csv"]
    jobs = list(ImportJob.objects.order_by("created_at").values_list(
        "filename", "dry_run", "status", "events_appended", "events_duplicate", "rows_invalid"))
    assert jobs == [("door-cli.csv", False, "done", 4, 0, 1), ("door-api.csv", False, "done", 0, 4, 1),
                    ("door-admin.csv", False, "done", 0, 4, 1)]
    events = csv_events(tenant.workspace.id)
    assert [e.type for e in events] == ["customer.created", "payment.succeeded"] * 2
    assert {e.source for e in events} == {"csv"}
