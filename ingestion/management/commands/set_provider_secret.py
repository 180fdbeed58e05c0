from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion.models import Workspace
from ingestion.workspaces import PROVIDERS, provider_secret_set


class Command(BaseCommand):
    help = "Add a provider's webhook signing secret to a workspace (older secrets stay valid)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--business", required=True, help="businessId (biz_…)")
        parser.add_argument("--provider", required=True, choices=PROVIDERS)
        parser.add_argument("--secret", required=True)
        parser.add_argument("--label", default="")
        parser.add_argument("--replace", action="store_true", help="revoke the workspace's older secrets")

    def handle(self, *args: object, **options: object) -> None:
        workspace = Workspace.objects.filter(pk=options["business"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {options['business']}")
        try:
            provider_secret_set(workspace=workspace, provider=str(options["provider"]),
                                secret=str(options["secret"]), label=str(options["label"]),
                                replace=bool(options["replace"]))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # The secret itself is never echoed.
        self.stdout.write(f"secret added for {options['provider']} on {workspace.id}")
