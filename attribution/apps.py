from django.apps import AppConfig


class AttributionConfig(AppConfig):
    name = "attribution"
    verbose_name = "Attribution"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ingestion.projections import register

        from .projector import AttributionProjector

        register(AttributionProjector())
