from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Programs and agents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ingestion.lookups import register_lookup

        from .selectors import agent_exists, referral_code_active, referral_codes_active

        register_lookup("referral_code_active", referral_code_active)
        register_lookup("referral_codes_active", referral_codes_active)
        register_lookup("agent_exists", agent_exists)
