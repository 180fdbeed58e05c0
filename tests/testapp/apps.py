"""A tiny app whose projectors exercise the projection runner in tests (never in production)."""

from django.apps import AppConfig
from django.conf import settings


class TestappConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"
    verbose_name = "Test projections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registered only where asked (a Celery worker started by a test), so the suite's own
        # ``run_all()`` calls stay free of them unless a test registers them itself.
        if getattr(settings, "REFAIRN_TEST_PROJECTORS", False):
            from ingestion.projections import register

            from .projectors import DependentProjector, RecordingProjector

            register(RecordingProjector())
            register(DependentProjector())
