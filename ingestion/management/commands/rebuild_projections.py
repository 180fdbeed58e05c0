from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion import projections


class Command(BaseCommand):
    help = "Clear a projection (and those depending on it) and replay the event store from zero."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="projection name; all when omitted")

    def handle(self, *args: object, **options: object) -> None:
        name = options.get("name")
        if name and name not in projections.registered():
            raise CommandError(f"unknown projection {name!r}; known: {', '.join(projections.registered())}")
        applied = projections.rebuild(name)  # type: ignore[arg-type]
        for each, count in applied.items():
            self.stdout.write(f"{each}: replayed {count} events")
