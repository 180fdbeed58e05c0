from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "ingestion"
    verbose_name = "Ingestion and event store"
    default_auto_field = "django.db.models.BigAutoField"
