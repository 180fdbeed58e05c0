"""Celery tasks: wake-ups that run projection batches. Running one twice is a no-op."""

from celery import shared_task

from . import import_tasks, projections  # noqa: F401 - import_tasks: registers the CSV import task


@shared_task(name="ingestion.tasks.run_projections", ignore_result=True)
def run_projections() -> dict[str, int]:
    """Run every projection up to the store head."""
    return projections.run_all()
