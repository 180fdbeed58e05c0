"""``manage.py simulate_terms --program prog_… [--referral-percent 25] [--recurring-percent 10 --duration-months 6]``.

Replays the store into a scratch (in-memory) ledger with the proposed terms for the program's
enrollments and prints, per agent and currency, the current total, the simulated total and the
difference. The real ledger is only read.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.models import Program
from commissions.whatif import simulate_terms
from ingestion.money import MoneyError, from_minor, normalise_currency, to_minor


def _percent(value: str, option: str) -> str:
    try:
        percent = Decimal(value)
    except InvalidOperation:
        raise CommandError(f"{option} must be a number such as 12.5, got {value!r}") from None
    if not percent.is_finite() or percent < 0:
        raise CommandError(f"{option} must not be negative")
    text = format(percent, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class Command(BaseCommand):
    help = "What-if: replay the ledger with proposed terms for one program and compare totals per agent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--program", required=True, help="prog_… whose enrollments get the proposed terms")
        parser.add_argument("--referral-percent", help="referral commission as a percent of the first payment")
        parser.add_argument("--referral-fixed", help="referral commission as a fixed amount (major units)")
        parser.add_argument("--referral-currency", help="currency of --referral-fixed")
        parser.add_argument("--recurring-percent", help="recurring commission percent")
        parser.add_argument("--duration-months", help="recurring cap in months; 'none' = no cap, 0 = no recurring")
        parser.add_argument("--support-percent", help="support commission percent")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        program = Program.objects.filter(id=options["program"]).first()
        if program is None:
            raise CommandError(f"unknown program {options['program']!r}")
        patch = self.patch(options)
        if not patch:
            raise CommandError("propose at least one term (--referral-percent, --recurring-percent, …)")
        rows = simulate_terms(program=program, patch=patch)
        if options["json"]:
            self.stdout.write(json.dumps({
                "programId": program.id, "proposed": patch,
                "agents": [{"agentId": r.agent_id, "name": r.agent_name, "currency": r.currency,
                            "current": from_minor(r.current, r.currency),
                            "simulated": from_minor(r.simulated, r.currency),
                            "difference": from_minor(r.difference, r.currency), "currentMinor": r.current,
                            "simulatedMinor": r.simulated, "differenceMinor": r.difference} for r in rows],
            }))
            return
        self.stdout.write(f"What-if for {program.name} ({program.id}): {json.dumps(patch)}")
        self.stdout.write("Totals are the program's net commissions (minus reversals); the real ledger is unchanged.")
        header = f"{'agent':<26} {'name':<20} {'cur':<4} {'current':>14} {'simulated':>14} {'difference':>14}"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for r in rows:
            self.stdout.write(f"{r.agent_id:<26} {r.agent_name[:20]:<20} {r.currency:<4} "
                              f"{from_minor(r.current, r.currency):>14} {from_minor(r.simulated, r.currency):>14} "
                              f"{from_minor(r.difference, r.currency):>14}")
        if not rows:
            self.stdout.write("(no commissions under this program)")

    def patch(self, options: dict[str, Any]) -> dict[str, Any]:
        patch: dict[str, Any] = {}
        if options["referral_percent"] is not None and options["referral_fixed"] is not None:
            raise CommandError("choose --referral-percent or --referral-fixed, not both")
        if options["referral_percent"] is not None:
            percent = _percent(options["referral_percent"], "--referral-percent")
            patch["referral"] = {"type": "percent", "percent": percent}
        if options["referral_fixed"] is not None:
            if not options["referral_currency"]:
                raise CommandError("--referral-fixed needs --referral-currency")
            try:
                currency = normalise_currency(options["referral_currency"])
                amount = to_minor(options["referral_fixed"], currency)
            except MoneyError as exc:
                raise CommandError(str(exc)) from None
            patch["referral"] = {"type": "fixed", "amount": amount, "currency": currency}
        recurring: dict[str, Any] = {}
        if options["recurring_percent"] is not None:
            recurring["percent"] = _percent(options["recurring_percent"], "--recurring-percent")
        if options["duration_months"] is not None:
            raw = options["duration_months"].strip().lower()
            if raw in ("none", "null", ""):
                recurring["duration_months"] = None
            elif raw.isdigit():
                recurring["duration_months"] = int(raw)
            else:
                raise CommandError("--duration-months is a whole number of months, or 'none'")
        if recurring:
            patch["recurring"] = recurring
        if options["support_percent"] is not None:
            patch["support"] = {"percent": _percent(options["support_percent"], "--support-percent")}
        return patch
