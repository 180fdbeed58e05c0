"""``manage.py simulate_terms``: a what-if replay that leaves the real ledger untouched."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from commissions.models import LedgerEntry, LedgerPayment, LedgerTrail, Payout
from ingestion.models import Event, ProjectionCheckpoint
from tests.factories import AgentFactory, ProgramFactory

from .support import T0, decide, pay, refund, run_ledger, terms

pytestmark = pytest.mark.django_db


@pytest.fixture
def program(tenant):
    return ProgramFactory(workspace=tenant.workspace, product=tenant.product)


@pytest.fixture
def agent(tenant):
    return AgentFactory(workspace=tenant.workspace, name="Jane Partner")


@pytest.fixture
def history(tenant, program, agent):
    """A first payment, two renewals (months 1 and 7) and a half refund of the first, all in the program."""
    ws = tenant.workspace.id
    t = terms(program_id=program.id, percent="20", recurring="10", cap=12)
    first = pay(ws, "pi_1", at=T0)
    decide(first, agent_id=agent.id, terms_=t, program_id=program.id)
    decide(pay(ws, "pi_2", at=T0 + timedelta(days=31)), agent_id=agent.id, terms_=t, sequence=2,
           first_payment_at=T0, program_id=program.id)
    decide(pay(ws, "pi_3", at=T0 + timedelta(days=213)), agent_id=agent.id, terms_=t, sequence=3,
           first_payment_at=T0, program_id=program.id)
    refund(ws, "pi_1", 4950)
    run_ledger()
    return ws


def ledger_rows() -> list:
    return [list(LedgerEntry.objects.order_by("id").values()), list(LedgerPayment.objects.values()),
            list(LedgerTrail.objects.values()), list(Payout.objects.values())]


def run(*args: str) -> dict:
    out = StringIO()
    call_command("simulate_terms", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.smoke
def test_simulation_reports_current_simulated_and_difference(history, program, agent) -> None:
    """A higher referral percent and a 6-month cap change the totals as the rules say."""
    # current: referral 1980 − 990 reversed + recurring 990 (month 1) + 990 (month 7) = 2970
    # proposed: referral 25 % = 2475 − half 1238 (round half up) + recurring 990 (month 1 only) = 2227
    result = run("--program", program.id, "--referral-percent", "25", "--duration-months", "6")
    [row] = result["agents"]
    assert (row["agentId"], row["currency"]) == (agent.id, "USD")
    assert (row["currentMinor"], row["simulatedMinor"], row["differenceMinor"]) == (2970, 2227, -743)
    assert row["difference"] == "-7.43"


def test_simulation_leaves_the_real_ledger_untouched(history, program) -> None:
    """The real ledger's rows are the same before and after a simulation."""
    before = ledger_rows()
    events = Event.objects.count()
    checkpoint = ProjectionCheckpoint.objects.get(name="ledger").position
    run("--program", program.id, "--recurring-percent", "50")
    assert ledger_rows() == before
    assert Event.objects.count() == events
    assert ProjectionCheckpoint.objects.get(name="ledger").position == checkpoint


def test_recurring_percent_keeps_each_snapshot_cap(history, program) -> None:
    """Proposing only a recurring percent keeps the snapshots' duration caps."""
    [row] = run("--program", program.id, "--recurring-percent", "15")["agents"]
    assert row["simulatedMinor"] == 990 + 1485 * 2


def test_table_output_names_the_agent(history, program) -> None:
    """Without --json the command prints a table with the agent's name and the three figures."""
    out = StringIO()
    call_command("simulate_terms", "--program", program.id, "--referral-fixed", "50.00", "--referral-currency", "USD",
                 stdout=out)
    text = out.getvalue()
    assert "Jane Partner" in text
    assert "29.70" in text  # current


def test_unknown_program_and_empty_proposal_are_refused(program) -> None:
    """An unknown program or no proposed term is a command error."""
    with pytest.raises(CommandError):
        call_command("simulate_terms", "--program", "prog_missing", "--referral-percent", "5")
    with pytest.raises(CommandError):
        call_command("simulate_terms", "--program", program.id)
    with pytest.raises(CommandError):
        call_command("simulate_terms", "--program", program.id, "--referral-percent", "-1")


def test_rows_are_per_agent_and_currency_and_other_programs_are_left_out(tenant, program, agent) -> None:
    """Each (agent, currency) gets its own row; entries of another program are in neither total."""
    ws = tenant.workspace.id
    other_agent = AgentFactory(workspace=tenant.workspace, name="Kenji")
    other_program = ProgramFactory(workspace=tenant.workspace, product=tenant.product)
    t = terms(program_id=program.id, percent="10")
    decide(pay(ws, "pi_usd", 10000, "USD"), agent_id=agent.id, terms_=t, program_id=program.id, customer_id="c1")
    decide(pay(ws, "pi_jpy", 5000, "JPY"), agent_id=other_agent.id, terms_=t, program_id=program.id,
           customer_id="c2")
    decide(pay(ws, "pi_other", 10000, "USD"), agent_id=agent.id, customer_id="c3", program_id=other_program.id,
           terms_=terms(program_id=other_program.id, percent="10"))
    run_ledger()
    rows = {(r["agentId"], r["currency"]): (r["currentMinor"], r["simulatedMinor"], r["differenceMinor"])
            for r in run("--program", program.id, "--referral-percent", "30")["agents"]}
    assert rows == {(agent.id, "USD"): (1000, 3000, 2000), (other_agent.id, "JPY"): (500, 1500, 1000)}
