"""CSV imports as jobs: create one from an upload, run it (in process or on a Celery worker), report it.

The admin upload page and ``POST /api/imports`` create an ``ImportJob`` with the uploaded file
in the default storage; ``manage.py import_csv`` creates one for the audit trail and runs it
on a local file. All three end in ``import_job_run``, which calls the one importer
(``ingestion.csv_import.import_csv``) and keeps the job's progress, counts and row errors
up to date batch by batch, so ``GET /api/imports/<id>`` can show a running import.

Where it runs: a Celery task (``ingestion.import_tasks.import_run``) when a broker is
configured, in process otherwise (the embedded default, and the test suite). The task receives
the job id only, after the job row has committed; running a job again is safe because the
store's idempotency makes every append of a re-run a duplicate, and the counts say so.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from .csv_import import ImportFileError, ImportResult, import_csv, max_bytes, sniff_csv
from .models import ImportJob, Workspace

logger = logging.getLogger(__name__)

PLAN_PREVIEW_ROWS = 100


def imports_run_in_process() -> bool:
    """Run imports in the request's process when there is no broker (or tests say so)."""
    explicit = getattr(settings, "REFAIRN_RUN_IMPORTS_INLINE", None)
    if explicit is not None:
        return bool(explicit)
    return bool(settings.REFAIRN_RUN_PROJECTIONS_INLINE) or not settings.CELERY_BROKER_URL


def plan_path(job_id: str) -> str:
    """Where a dry run's full plan (JSON lines, one per row) is kept in the default storage."""
    return f"imports/plans/{job_id}.jsonl"


def import_job_create(*, workspace: Workspace, upload: UploadedFile | IO[bytes], filename: str = "",
                      dry_run: bool = False, created_by: str = "") -> ImportJob:
    """Store an upload and create its (queued) job; refuse at once a file that is plainly not CSV.

    Only the start of the file is checked here (size, binary, header); the job checks the rest
    before it appends anything.
    """
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes():
        raise ImportFileError(f"The file is {size:,} bytes; the limit is {max_bytes():,} bytes. "
                              "Split it into smaller files.", code="file_too_large", status_code=413)
    stream = upload.file if isinstance(upload, UploadedFile) else upload
    sniff_csv(stream)
    stream.seek(0)
    name = (filename or getattr(upload, "name", "") or "upload.csv").rsplit("/", 1)[-1][:255]
    job = ImportJob(workspace=workspace, filename=name, dry_run=dry_run, created_by=created_by[:200])
    job.file.save(f"{job.id}.csv", File(stream), save=False)
    job.save()
    return job


def import_job_start(job: ImportJob) -> None:
    """Run the job now, in this process (no broker), or queue its task once the job row has committed.

    In process, the job runs at once in the caller's connection, so the caller's answer already
    shows it done. A worker must only hear of the job after its row has committed, or it could
    look for a row it cannot see yet: hence ``on_commit`` with the id alone.
    """
    if imports_run_in_process():
        import_job_run(job_id=job.id)
        return
    job_id = job.id
    transaction.on_commit(lambda: _enqueue(job_id))


def _enqueue(job_id: str) -> None:
    from .import_tasks import import_run

    try:
        import_run.delay(job_id)
    except Exception as exc:  # noqa: BLE001 - a broker that is down must not lose the upload
        logger.warning("could not queue import %s (%s); running it in process", job_id, type(exc).__name__)
        import_job_run(job_id=job_id)


def _progress_saver(job_id: str, extra: Callable[[ImportResult], None] | None) -> Callable[[ImportResult], None]:
    def save(result: ImportResult) -> None:
        ImportJob.objects.filter(pk=job_id).update(
            rows_total=result.rows_total, rows_done=result.rows_done, rows_invalid=result.rows_invalid,
            events_appended=result.events_appended, events_duplicate=result.events_duplicate,
            errors=[error.as_dict() for error in result.errors], extra_columns=result.extra_columns,
            message=result.summary(),
        )
        if extra is not None:
            extra(result)

    return save


def import_job_run(*, job_id: str, stream: IO[bytes] | None = None,
                   progress: Callable[[ImportResult], None] | None = None,
                   plan: Callable[[dict[str, Any]], None] | None = None) -> ImportResult | None:
    """Run one import job to the end; return its result, or ``None`` when it failed or had finished.

    A failure never raises: it is recorded on the job (status ``failed``, the reason in
    ``message`` and ``errors``), which is what every door reports. ``stream`` overrides the
    job's stored file (the command imports a local file without copying it). A dry run's plan
    is also written, one JSON line per row, to ``plan_path``.
    """
    job = ImportJob.objects.select_related("workspace").get(pk=job_id)
    if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
        return None
    restarted = job.status == ImportJob.Status.RUNNING
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportJob.Status.RUNNING, rows_done=0, rows_invalid=0, events_appended=0, events_duplicate=0,
        errors=[], message="")
    plan_file = tempfile.TemporaryFile(mode="w+b") if job.dry_run else None  # noqa: SIM115 - closed below

    def sink(entry: dict[str, Any]) -> None:
        if plan_file is not None:
            plan_file.write(json.dumps(entry, separators=(",", ":"), default=str).encode() + b"\n")
        if plan is not None:
            plan(entry)

    opened = None
    try:
        if stream is None:
            opened = job.file.open("rb")
            stream = opened.file if hasattr(opened, "file") else opened
        result = import_csv(workspace=job.workspace, stream=stream, dry_run=job.dry_run, filename=job.filename,
                            progress=_progress_saver(job_id, progress), plan=sink)
    except ImportFileError as exc:
        ImportJob.objects.filter(pk=job_id).update(
            status=ImportJob.Status.FAILED, message=exc.message, errors=[exc.as_row_error()],
            finished_at=timezone.now())
        return None
    except Exception:
        logger.exception("import %s failed", job_id)
        ImportJob.objects.filter(pk=job_id).update(
            status=ImportJob.Status.FAILED, finished_at=timezone.now(),
            message="The import stopped on an internal error; rows appended before it are kept, and "
                    "uploading the file again appends only what is missing.")
        return None
    finally:
        if opened is not None:
            opened.close()
        if plan_file is not None:
            _save_plan(job_id, plan_file)
    message = result.summary()
    if restarted:
        message += (" This run restarted an interrupted one: events that run appended are counted "
                    "here as already in the store.")
    ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.DONE, message=message,
                                               finished_at=timezone.now())
    return result


def _save_plan(job_id: str, plan_file: IO[bytes]) -> None:
    try:
        name = plan_path(job_id)
        if default_storage.exists(name):
            default_storage.delete(name)
        plan_file.seek(0)
        default_storage.save(name, File(plan_file))
    finally:
        plan_file.close()


def plan_lines(job: ImportJob) -> Iterator[bytes]:
    """Yield a dry run's plan as stored, line by line (nothing when there is none)."""
    name = plan_path(job.id)
    if not job.dry_run or not default_storage.exists(name):
        return
    with default_storage.open(name, "rb") as handle:
        yield from handle


def plan_preview(job: ImportJob, limit: int = PLAN_PREVIEW_ROWS) -> list[dict[str, Any]]:
    """Return the first ``limit`` planned rows of a dry run."""
    name = plan_path(job.id)
    if not job.dry_run or not default_storage.exists(name):
        return []
    preview: list[dict[str, Any]] = []
    with default_storage.open(name, "rb") as handle:
        for line in handle:
            if len(preview) >= limit:
                break
            preview.append(json.loads(line))
    return preview
