"""``manage.py import_csv --business BIZ FILE [--dry-run]``: the command-line door to the CSV importer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from ingestion.csv_import import ImportResult, max_bytes
from ingestion.import_jobs import import_job_run
from ingestion.models import ImportJob, Workspace


def _business_id(value: str) -> str:
    """``demo`` names the workspace ``python3 dev.py run`` seeded (its id is kept in DATA_DIR/demo.json)."""
    if value != "demo":
        return value
    try:
        return str(json.loads((Path(settings.DATA_DIR) / "demo.json").read_text())["business_id"])
    except (OSError, ValueError, KeyError):
        raise CommandError("no demo workspace here: run `python3 dev.py run` (or `manage.py demo`) first, "
                           "or pass --business biz_…") from None


def _describe(entry: dict[str, Any]) -> str:
    parts = []
    for event in entry["events"]:
        data = event["data"]
        what = event["type"]
        if event["type"] == "payment.succeeded":
            what += f" {data['amount']} {data['currency']} (minor units)"
        elif event["type"] == "customer.created" and data.get("referral_code"):
            what += f" code {data['referral_code']}"
        outcome = event["outcome"]
        if event.get("reportedAs"):
            outcome += f" (reported as {event['reportedAs']})"
        parts.append(f"{what} → {outcome}")
    return f"line {entry['line']}: " + ("; ".join(parts) if parts else "nothing new")


class Command(BaseCommand):
    help = ("Import a CSV of customers and payments into a workspace (the same importer as the admin upload "
            "and POST /api/imports). Columns: Customer Name, Customer Email, Plan, Amount Paid, Subscription "
            "Status, Agent Code, Payment Date, [Renewal Date], [Currency].")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--business", required=True,
                            help="The workspace's businessId (biz_…), or 'demo' for the demo workspace.")
        parser.add_argument("file", help="Path to the CSV file (UTF-8, comma-separated, header on line 1).")
        parser.add_argument("--dry-run", action="store_true", help="Check and plan everything; append nothing.")
        parser.add_argument("--show", type=int, default=20,
                            help="Dry run: how many planned rows to print (default 20; 0 for none).")
        parser.add_argument("--plan-out", help="Dry run: write every planned row to this file (JSON lines).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object with the result.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(pk=_business_id(options["business"])).first()
        if workspace is None:
            raise CommandError(f"no workspace {options['business']!r}")
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        if path.stat().st_size > max_bytes():
            raise CommandError(f"{path} is {path.stat().st_size:,} bytes; the limit is {max_bytes():,} bytes "
                               "(REFAIRN_CSV_MAX_BYTES)")
        dry_run = bool(options["dry_run"])
        job = ImportJob.objects.create(workspace=workspace, filename=path.name[:255], dry_run=dry_run,
                                       created_by="cli:import_csv")
        shown: list[str] = []
        plan_out = open(options["plan_out"], "w", encoding="utf-8") if options["plan_out"] else None  # noqa: SIM115

        def plan(entry: dict[str, Any]) -> None:
            if plan_out is not None:
                plan_out.write(json.dumps(entry, default=str) + "\n")
            if dry_run and len(shown) < options["show"]:
                shown.append(_describe(entry))

        console = Console(file=self.stderr._out)  # type: ignore[attr-defined]
        show_bar = not options["no_progress"] and not options["json"]
        try:
            with path.open("rb") as stream, Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
                TimeRemainingColumn(), console=console, disable=not show_bar, transient=False,
            ) as bar:
                task: TaskID | None = None

                def progress(result: ImportResult) -> None:
                    nonlocal task
                    if task is None:
                        task = bar.add_task("dry run" if dry_run else "importing", total=result.rows_total)
                    bar.update(task, completed=result.rows_done)

                result = import_job_run(job_id=job.id, stream=stream, progress=progress, plan=plan)
        finally:
            if plan_out is not None:
                plan_out.close()
        job.refresh_from_db()
        if result is None:
            raise CommandError(f"{job.message} (import {job.id})")
        self._report(job, result, shown, options)

    def _report(self, job: ImportJob, result: ImportResult, shown: list[str], options: dict[str, Any]) -> None:
        if options["json"]:
            self.stdout.write(json.dumps({"importId": job.id, "status": job.status, **result.as_dict()}))
            return
        style = self.style.WARNING if result.rows_invalid else self.style.SUCCESS
        self.stdout.write(style(f"{'Dry run' if result.dry_run else 'Import'} {job.id}: {result.summary()}"))
        if result.errors:
            self.stdout.write("Rows not imported:")
            for error in result.errors[:50]:
                column = f" [{error.column}]" if error.column else ""
                self.stdout.write(f"  line {error.line}{column}: {error.reason}")
            if result.errors_total > 50:
                self.stdout.write(f"  … {result.errors_total - 50} more (GET /api/imports/{job.id} lists "
                                  f"the first {len(result.errors)})")
        if shown:
            self.stdout.write("Planned (a real run would do exactly this):")
            for line in shown:
                self.stdout.write(f"  {line}")
            if result.rows_new + result.rows_duplicate > len(shown):
                self.stdout.write("  … (--show N prints more, --plan-out FILE writes them all)")

