import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion.money import MoneyError
from ingestion.workspaces import workspace_create


class Command(BaseCommand):
    help = "Create a workspace with a product and an API key (the key is printed once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--base-currency", default="USD")
        parser.add_argument("--product-name")
        parser.add_argument("--product-url", default="")
        parser.add_argument("--test-key", action="store_true", help="issue an rf_test_ key")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: object, **options: object) -> None:
        try:
            created = workspace_create(
                name=str(options["name"]), base_currency=str(options["base_currency"]),
                product_name=options["product_name"], product_url=str(options["product_url"]),
                live=not options["test_key"],
            )
        except MoneyError as exc:
            raise CommandError(str(exc)) from exc
        result = {
            "businessId": created.workspace.id,
            "productId": created.product.id,
            "apiKey": created.api_key.secret,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            for name, value in result.items():
                self.stdout.write(f"{name}: {value}")
