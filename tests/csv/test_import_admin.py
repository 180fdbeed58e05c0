"""The console's CSV upload page: form, dry run, real run, the job's result, workspace scoping."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from agents.models import Enrollment
from ingestion.models import ImportJob
from ingestion.workspaces import CreatedWorkspace

from .conftest import csv_events, make_csv, row

pytestmark = pytest.mark.django_db
UPLOAD_URL = "/admin/ingestion/importjob/upload/"
DATA = make_csv([row(), row("bob@example.com", code="BEN"), row("cy@example.com", amount="$5")])


@pytest.fixture
def admin_client_(db: None, codes: dict[str, Enrollment]) -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def _post(client: Client, workspace_id: str, data: bytes = DATA, **fields: Any) -> Any:
    return client.post(UPLOAD_URL, {"workspace": workspace_id,
                                     "file": SimpleUploadedFile("customers.csv", data, content_type="text/csv"),
                                     **fields}, follow=True)


def test_the_upload_page_shows_the_form_and_the_expected_columns(admin_client_: Client) -> None:
    """GET shows the form (workspace, file, dry run) and lists the columns."""
    response = admin_client_.get(UPLOAD_URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="file"' in page
    assert 'name="dry_run"' in page
    assert "Subscription Status" in page


def test_the_import_list_links_to_the_upload_page(admin_client_: Client) -> None:
    """The CSV imports list has an 'Upload a CSV' button."""
    response = admin_client_.get("/admin/ingestion/importjob/")
    assert UPLOAD_URL in response.content.decode()


@pytest.mark.smoke
def test_a_dry_run_upload_appends_nothing_and_shows_the_plan(admin_client_: Client, tenant: CreatedWorkspace) -> None:
    """Dry run: the job page shows what would be appended and the row errors; the store is unchanged."""
    response = _post(admin_client_, tenant.workspace.id, dry_run="on")
    page = response.content.decode()
    job = ImportJob.objects.get()
    assert response.redirect_chain[-1][0] == f"/admin/ingestion/importjob/{quote(job.id)}/change/"
    assert job.dry_run
    assert job.status == "done"
    assert csv_events(tenant.workspace.id) == []
    assert "would append 4 events" in page
    assert "customer.created" in page
    assert "payment.succeeded" in page
    assert "is not a plain number" in page


def test_a_real_upload_imports_the_rows_and_shows_the_result(admin_client_: Client, tenant: CreatedWorkspace) -> None:
    """Without dry run the rows go in; the job page shows the counts and the bad row's line and reason."""
    page = _post(admin_client_, tenant.workspace.id).content.decode()
    assert len(csv_events(tenant.workspace.id)) == 4
    assert "appended 4 events" in page
    assert "<td>4</td><td>Amount Paid</td>" in page


def test_a_file_that_is_not_csv_is_refused_on_the_form(admin_client_: Client, tenant: CreatedWorkspace) -> None:
    """A binary file gets the one clear error on the form; no job is created."""
    response = _post(admin_client_, tenant.workspace.id, data=b"\x00\x01binary")
    assert response.status_code == 200
    assert "This is not a CSV file: it contains binary data." in response.content.decode()
    assert not ImportJob.objects.exists()


def test_an_operator_can_import_only_into_their_own_workspaces(
        tenant: CreatedWorkspace, other_tenant: CreatedWorkspace, codes: dict[str, Enrollment]) -> None:
    """A staff operator sees only their workspaces in the form, and cannot post another's."""
    operator = User.objects.create_user("op", "op@example.com", "pw", is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="view_importjob"))
    tenant.workspace.operators.add(operator)
    client = Client()
    client.force_login(operator)
    page = client.get(UPLOAD_URL).content.decode()
    assert tenant.workspace.id in page
    assert other_tenant.workspace.id not in page
    response = _post(client, other_tenant.workspace.id)
    assert "Select a valid choice" in response.content.decode()
    assert not ImportJob.objects.exists()
    _post(client, tenant.workspace.id)
    assert ImportJob.objects.get().workspace_id == tenant.workspace.id


def test_a_staff_user_without_permission_cannot_upload(db: None) -> None:
    """Without the permission to view imports, the upload page is forbidden."""
    user = User.objects.create_user("nobody", "n@example.com", "pw", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get(UPLOAD_URL).status_code == 403
