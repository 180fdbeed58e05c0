"""The console's CSV upload page and how an import job's result is shown (used by ``ImportJobAdmin``).

The page calls the same services as ``POST /api/imports``: ``import_job_create`` (which refuses a
file that is plainly not CSV at once) and ``import_job_start`` (in process, or a Celery task).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .console import operator_workspace_ids
from .csv_import import COLUMNS, ImportFileError, max_bytes, max_rows
from .import_jobs import import_job_create, import_job_start, plan_preview
from .models import ImportJob, Workspace


class ImportUploadForm(forms.Form):
    workspace = forms.ModelChoiceField(queryset=Workspace.objects.none(), label="Workspace")
    file = forms.FileField(label="CSV file", help_text="UTF-8, comma-separated, with a header row.")
    dry_run = forms.BooleanField(
        required=False, initial=True, label="Dry run",
        help_text="Check every row and show what would be appended, without appending anything.")

    def __init__(self, *args: Any, workspace_ids: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        workspaces = Workspace.objects.all()
        if workspace_ids is not None:
            workspaces = workspaces.filter(id__in=workspace_ids)
        field = self.fields["workspace"]
        field.queryset = workspaces  # type: ignore[attr-defined]
        if workspaces.count() == 1:
            field.initial = workspaces.first()

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > max_bytes():
            raise forms.ValidationError(f"The file is {upload.size:,} bytes; the limit is {max_bytes():,} bytes.")
        return upload


def upload_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """GET: the upload form. POST: create the job, run or queue it, and show its page."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    workspace_ids = operator_workspace_ids(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None, workspace_ids=workspace_ids)
    if request.method == "POST" and form.is_valid():
        try:
            job = import_job_create(workspace=form.cleaned_data["workspace"], upload=form.cleaned_data["file"],
                                    dry_run=form.cleaned_data["dry_run"],
                                    created_by=f"user:{request.user.get_username()}")
        except ImportFileError as exc:
            form.add_error("file", exc.message)
        else:
            import_job_start(job)
            job.refresh_from_db()
            level = messages.SUCCESS if job.status == ImportJob.Status.DONE and not job.rows_invalid else (
                messages.ERROR if job.status == ImportJob.Status.FAILED else messages.WARNING)
            messages.add_message(request, level, job.message or f"Import {job.id} is {job.status}.")
            return HttpResponseRedirect(reverse("admin:ingestion_importjob_change", args=[quote(job.id)]))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Import customers and payments from CSV",
        "opts": model_admin.model._meta,
        "form": form,
        "columns": COLUMNS,
        "max_bytes": max_bytes(),
        "max_rows": max_rows(),
        "has_view_permission": True,
    }
    return TemplateResponse(request, "admin/ingestion/importjob/upload.html", context)


def errors_html(job: ImportJob) -> SafeString:
    """The job's row errors as a table: line, column, reason."""
    if not job.errors:
        return format_html("<p>{}</p>", "No row errors.")
    rows = format_html_join(
        "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((error.get("line") or "", error.get("column") or "", error.get("reason")) for error in job.errors))
    more = ""
    if job.rows_invalid > len({error.get("line") for error in job.errors}):
        more = format_html("<p>{} invalid rows in all; the first {} errors are listed.</p>",
                           job.rows_invalid, len(job.errors))
    return format_html("<table><thead><tr><th>line</th><th>column</th><th>reason</th></tr></thead>"
                       "<tbody>{}</tbody></table>{}", rows, more)


def plan_html(job: ImportJob) -> SafeString:
    """A dry run's plan (first rows): per row, each event it would append or find already there."""
    if not job.dry_run:
        return format_html("<p>{}</p>", "Not a dry run.")
    preview = plan_preview(job)
    if not preview:
        return format_html("<p>{}</p>", "No planned rows.")
    lines = []
    for entry in preview:
        for event in entry["events"]:
            data = event["data"]
            detail = ", ".join(f"{key}={value}" for key, value in data.items() if key != "payment_ref")
            lines.append((entry["line"], event["type"], event["outcome"], event["occurredAt"][:10], detail))
    rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", lines)
    return format_html("<table><thead><tr><th>line</th><th>event</th><th>outcome</th><th>date</th><th>data</th>"
                       "</tr></thead><tbody>{}</tbody></table><p>{}</p>", rows,
                       f"First {len(preview)} planned rows; GET /api/imports/{job.id}/plan gives them all.")
