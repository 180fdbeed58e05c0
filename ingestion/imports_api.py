"""``POST /api/imports`` (multipart CSV upload → 202 with an ``importId``) and ``GET /api/imports/<id>``.

The upload is stored and checked at once for what makes it plainly not CSV (size, binary
content, the header); the rows are imported by a job (``ingestion.import_jobs``): a Celery task
when a broker is configured, in process otherwise. The job's progress, counts and row errors are
read back with ``GET /api/imports/<id>``; a dry run's full plan with ``GET /api/imports/<id>/plan``.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .api_io import DETAIL_ERRORS, error_responses, invalid, iso, require_business_id
from .csv_import import SNIFF_BYTES, ImportFileError, max_bytes
from .errors import NotFoundError
from .import_jobs import import_job_create, import_job_start, plan_lines, plan_preview
from .models import ImportJob

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def parse_flag(value: Any, field: str) -> bool:
    """A form boolean: true/false, 1/0, yes/no, on/off (case-insensitive); absent = false."""
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise invalid(f"{field} must be true or false, got {value!r}", field)


def import_job_body(job: ImportJob, *, with_plan: bool = True) -> dict[str, Any]:
    """The API's view of an import job: progress, counts, row errors (and a dry run's plan preview)."""
    percent = 100 if job.status == ImportJob.Status.DONE else (
        int(job.rows_done * 100 / job.rows_total) if job.rows_total else 0)
    body: dict[str, Any] = {
        "importId": job.id,
        "businessId": job.workspace_id,
        "filename": job.filename,
        "status": job.status,
        "dryRun": job.dry_run,
        "progress": {"rowsTotal": job.rows_total, "rowsDone": job.rows_done, "percent": min(percent, 100)},
        "counts": {
            "rowsInvalid": job.rows_invalid,
            "eventsAppended": job.events_appended,
            "eventsDuplicate": job.events_duplicate,
        },
        "extraColumns": job.extra_columns,
        "errors": job.errors,
        "message": job.message,
        "createdAt": iso(job.created_at),
        "finishedAt": iso(job.finished_at),
    }
    if job.dry_run:
        body["planUrl"] = f"/api/imports/{job.id}/plan"
        if with_plan and job.status == ImportJob.Status.DONE:
            body["plan"] = plan_preview(job)
    return body


_ROW_ERROR_FIELDS = {
    "line": serializers.IntegerField(allow_null=True, help_text="Physical line in the file; the header is line 1."),
    "column": serializers.CharField(allow_null=True, help_text="e.g. Amount Paid; null for a whole-row fault."),
    "reason": serializers.CharField(),
}
_JOB = inline_serializer("ImportJob", fields={
    "importId": serializers.CharField(help_text="imp_…"),
    "businessId": serializers.CharField(),
    "filename": serializers.CharField(),
    "status": serializers.ChoiceField(choices=ImportJob.Status.values),
    "dryRun": serializers.BooleanField(),
    "progress": inline_serializer("ImportProgress", fields={
        "rowsTotal": serializers.IntegerField(), "rowsDone": serializers.IntegerField(),
        "percent": serializers.IntegerField(),
    }),
    "counts": inline_serializer("ImportCounts", fields={
        "rowsInvalid": serializers.IntegerField(),
        "eventsAppended": serializers.IntegerField(help_text="In a dry run: events a real run would append."),
        "eventsDuplicate": serializers.IntegerField(help_text="Events already in the store (or earlier in the file)."),
    }),
    "extraColumns": serializers.ListField(child=serializers.CharField(), help_text="Columns ignored."),
    "errors": inline_serializer("ImportRowError", fields=_ROW_ERROR_FIELDS, many=True),
    "message": serializers.CharField(),
    "createdAt": serializers.DateTimeField(),
    "finishedAt": serializers.DateTimeField(allow_null=True),
    "planUrl": serializers.CharField(required=False, help_text="Dry runs: every planned row, as JSON lines."),
    "plan": serializers.ListField(child=serializers.DictField(), required=False,
                                  help_text="Dry runs: the first 100 planned rows, each with its events."),
})
_EXAMPLE = {
    "importId": "imp_4k2m9x0c1v8b7n6q5w3e", "businessId": "biz_0a1b2c3d4e5f6g7h8i9j", "filename": "customers.csv",
    "status": "done", "dryRun": False, "progress": {"rowsTotal": 3, "rowsDone": 3, "percent": 100},
    "counts": {"rowsInvalid": 1, "eventsAppended": 4, "eventsDuplicate": 0}, "extraColumns": ["Notes"],
    "errors": [{"line": 4, "column": "Amount Paid", "reason": "'$49' is not a plain number: write the amount in "
                "major units without a currency symbol or thousands separator, e.g. 1234.50"}],
    "message": "3 of 3 rows read: 2 new, 0 already in, 1 invalid; appended 4 events, 0 already in the store.",
    "createdAt": "2024-05-01T12:00:00Z", "finishedAt": "2024-05-01T12:00:01Z",
}


_JANE = {"email": "jane@example.com", "amount": 4900, "currency": "USD", "plan": "Pro"}
_MAY, _JUNE = "nk:jane@example.com|2024-05-01|4900|USD", "nk:jane@example.com|2024-06-01|4900|USD"
_PLAN_EXAMPLE = "\n".join(json.dumps(line, ensure_ascii=False) for line in (
    {"line": 2, "events": [
        {"type": "customer.created", "sourceEventId": "customer:jane@example.com",
         "occurredAt": "2024-05-01T00:00:00Z", "outcome": "append",
         "data": {"email": "jane@example.com", "name": "Jane Doe", "referral_code": "ADA"}},
        {"type": "payment.succeeded", "sourceEventId": _MAY, "occurredAt": "2024-05-01T00:00:00Z",
         "outcome": "append", "data": {"payment_ref": _MAY, **_JANE}}]},
    {"line": 3, "events": [
        {"type": "payment.succeeded", "sourceEventId": _JUNE, "occurredAt": "2024-06-01T00:00:00Z",
         "outcome": "duplicate", "data": {"payment_ref": _JUNE, **_JANE}}]},
)) + "\n"


class ImportCreateView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="imports_create",
        summary="Upload a CSV of customers and payments",
        description=(
            "Multipart form: `businessId`, `file` (CSV, UTF-8), `dryRun` (optional, true/false). Answers 202 "
            "with the job; poll `GET /api/imports/{importId}`. Columns, matched by name in any order: Customer "
            "Name, Customer Email, Plan, Amount Paid, Subscription Status, Agent Code, Payment Date, optional "
            "Renewal Date and Currency. A file that is not CSV, lacks required columns, or is over the size "
            "limit is refused at once (400 / 413)."
        ),
        request={"multipart/form-data": inline_serializer("ImportUpload", fields={
            "businessId": serializers.CharField(),
            "file": serializers.FileField(),
            "dryRun": serializers.BooleanField(required=False, default=False),
        })},
        examples=[OpenApiExample("upload", request_only=True, media_type="multipart/form-data",
                                 value={"businessId": "biz_0a1b2c3d4e5f6g7h8i9j", "file": "customers.csv",
                                        "dryRun": False})],
        responses={202: OpenApiResponse(_JOB, examples=[OpenApiExample("accepted", value=_EXAMPLE)]),
                   **error_responses(400, 401, 403, 413, 415, 429)},
        tags=["imports"],
    )
    def post(self, request: Request) -> Response:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > max_bytes() + SNIFF_BYTES:
            raise ImportFileError(f"The upload is {declared:,} bytes; the limit is {max_bytes():,} bytes. "
                                  "Split the file into smaller ones.", code="file_too_large", status_code=413)
        require_business_id(request, request.data)
        upload = request.FILES.get("file")
        if upload is None:
            raise invalid("file is required: send the CSV as the multipart field 'file'", "file")
        dry_run = parse_flag(request.data.get("dryRun"), "dryRun")
        job = import_job_create(workspace=request.auth.workspace, upload=upload, dry_run=dry_run,
                                created_by=f"api-key:{request.auth.id}")
        import_job_start(job)
        job.refresh_from_db()
        response = Response(import_job_body(job), status=202)
        response["Location"] = f"/api/imports/{job.id}"
        return response


def _job(request: Request, import_id: str) -> ImportJob:
    job = ImportJob.objects.filter(pk=import_id, workspace_id=request.auth.workspace_id).first()
    if job is None:
        raise NotFoundError("No such import in this workspace.")
    return job


class ImportDetailView(APIView):
    @extend_schema(
        operation_id="imports_retrieve",
        summary="An import's progress, counts and row errors",
        responses={200: OpenApiResponse(_JOB, examples=[OpenApiExample("done", value=_EXAMPLE)]), **DETAIL_ERRORS},
        tags=["imports"],
    )
    def get(self, request: Request, import_id: str) -> Response:
        return Response(import_job_body(_job(request, import_id)))


class ImportPlanView(APIView):
    @extend_schema(
        operation_id="imports_plan",
        summary="A dry run's plan: one JSON line per row, with the events a real run would append",
        responses={(200, "application/x-ndjson"): OpenApiResponse(
            OpenApiTypes.STR, examples=[OpenApiExample("plan", value=_PLAN_EXAMPLE)]), **DETAIL_ERRORS},
        tags=["imports"],
    )
    def get(self, request: Request, import_id: str) -> StreamingHttpResponse:
        job = _job(request, import_id)
        if not job.dry_run:
            raise NotFoundError("Only a dry run has a plan; a real import's events are in /api/events.")
        if job.status != ImportJob.Status.DONE:
            raise NotFoundError("The plan is ready when the dry run is done.")
        return StreamingHttpResponse(plan_lines(job), content_type="application/x-ndjson")
