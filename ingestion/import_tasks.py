"""The Celery task that runs a CSV import job on a worker (found by autodiscovery via ``tasks.py``)."""

from celery import shared_task

from .import_jobs import import_job_run


@shared_task(name="ingestion.import_tasks.import_run", ignore_result=True, soft_time_limit=3300, time_limit=3600)
def import_run(import_id: str) -> None:
    """Run the import job ``import_id``; a job already finished is left as it is (idempotent)."""
    import_job_run(job_id=import_id)
