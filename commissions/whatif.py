"""What-if: replay the store into a scratch ledger with proposed terms for one program (issue #5).

The scratch ledger is a ``LedgerBook`` in memory: the same rules and the same fold as the
projector, fed with the same events and attribution decisions, but with the program's terms
replaced where its enrollments' snapshots are used. Nothing is written; the real ledger is only
read for the current totals.

The replay stops at the real ledger's checkpoint, so "current" and "simulated" describe the same
events. Totals are the net sum of the program's entries (commissions minus reversals) per agent
and currency; support entries count for the program whose terms paid them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from agents.models import Agent, Program
from attribution.models import PaymentAttribution, PaymentRecord
from ingestion.models import Event
from ingestion.projections import checkpoint_position

from .domain import LEDGER_EVENT_TYPES, Decision, LedgerBook
from .projector import DECISION_FIELDS, aliases_between, decision_from_row, event_view
from .selectors import balances_by_agent


@dataclass(frozen=True)
class WhatIfRow:
    """One agent and currency: the real total, the simulated one, and the difference (minor units)."""

    agent_id: str
    agent_name: str
    currency: str
    current: int
    simulated: int

    @property
    def difference(self) -> int:
        return self.simulated - self.current


def simulate_terms(*, program: Program, patch: dict[str, Any], chunk: int = 2000) -> list[WhatIfRow]:
    """Replay the program's workspace with ``patch`` applied to the program's terms snapshots.

    ``patch`` follows the snapshot's shape, e.g. ``{"referral": {"type": "percent", "percent": "25"},
    "recurring": {"percent": "10", "duration_months": 6}, "support": {"percent": "3"}}``.
    """
    workspace_id = program.workspace_id
    upper = checkpoint_position("ledger")
    support_patch = {"support": patch["support"]} if "support" in patch else {}
    agent_patch = {k: v for k, v in patch.items() if k != "support"}
    book = LedgerBook(terms_override={program.id: agent_patch} if agent_patch else {},
                      support_override={program.id: support_patch} if support_patch else {})
    decisions: dict[int, list[Decision]] = defaultdict(list)
    rows = (PaymentAttribution.objects.filter(workspace_id=workspace_id, decided_position__lte=upper)
            .order_by("decided_position", "payment_position", "payment_ref"))
    for row in rows.values(*DECISION_FIELDS).iterator(chunk_size=chunk):
        decisions[row["decided_position"]].append(decision_from_row(row))
    decided = PaymentAttribution.objects.filter(workspace_id=workspace_id, decided_position__lte=upper)
    # Payments attribution knows under a second id (a CSV row later reported by a provider): a
    # refund on either id reverses the one commission, as in the real ledger: the book learns each
    # alias at its position and the payment adopts what was reported under the id before.
    aliases = aliases_between(0, upper, workspace_id=workspace_id)
    events = (Event.objects.filter(workspace_id=workspace_id, position__lte=upper)
              .filter(Q(type__in=LEDGER_EVENT_TYPES) | Q(position__in=decided.values("decided_position"))
                      | Q(position__in=PaymentRecord.objects.filter(workspace_id=workspace_id,
                                                                   alias_position__lte=upper)
                          .values("alias_position")))
              .order_by("position"))
    for event in events.iterator(chunk_size=chunk):
        book.apply(event_view(event), decisions.get(event.position, ()), aliases.get(event.position, ()))

    simulated: dict[tuple[str, str], int] = defaultdict(int)
    for entry in book.entries.values():
        if entry.program_id == program.id:
            simulated[(entry.agent_id, entry.currency)] += entry.amount
    current = balances_by_agent(workspace_id=workspace_id, program_id=program.id)
    keys = sorted(set(simulated) | set(current))
    names = dict(Agent.objects.filter(workspace_id=workspace_id, id__in={a for a, _ in keys})
                 .values_list("id", "name"))
    return [WhatIfRow(agent, names.get(agent, ""), currency, current.get((agent, currency), 0),
                      simulated.get((agent, currency), 0)) for agent, currency in keys]
