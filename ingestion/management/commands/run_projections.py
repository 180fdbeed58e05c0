from django.core.management.base import BaseCommand

from ingestion import projections


class Command(BaseCommand):
    help = "Apply every stored event that the projections have not applied yet."

    def handle(self, *args: object, **options: object) -> None:
        for name, count in projections.run_all().items():
            self.stdout.write(f"{name}: applied {count} events")
