from django.apps import AppConfig


class CommissionsConfig(AppConfig):
    name = "commissions"
    verbose_name = "Commissions and payouts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ingestion.projections import register

        from .projector import LedgerProjector

        register(LedgerProjector())
