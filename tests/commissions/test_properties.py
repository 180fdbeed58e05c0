"""Properties of the ledger over random histories (hypothesis, bounded).

Each example builds its own workspace inside a savepoint that is rolled back afterwards, so the
examples do not see each other. Histories mix payments (attributed at once or by a later signup),
support agents, partial and full refunds (with and without running totals, some repeated),
disputes (opened, won, lost), voids and payouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commissions import rules, selectors
from commissions.models import LedgerEntry, LedgerPayment, LedgerTrail, PaymentDispute, Payout, PayoutLine
from ingestion import projections
from ingestion.ids import derived_id
from ingestion.models import ProjectionCheckpoint, Workspace

from .support import T0, append, decide, run_ledger, terms

pytestmark = pytest.mark.django_db

AGENTS = ("agt_p1", "agt_p2")


@dataclass
class PaymentPlan:
    ref: str
    amount: int
    currency: str
    agent: str
    percent: str
    sequence: int
    late: bool
    support: bool
    before: list[dict[str, Any]] = field(default_factory=list)  # ops before the decision (late decisions)
    after: list[dict[str, Any]] = field(default_factory=list)


def _op() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.fixed_dictionaries({"op": st.just("refund"), "share": st.integers(1, 120), "total": st.booleans(),
                               "repeat": st.booleans()}),
        st.fixed_dictionaries({"op": st.just("dispute"), "outcome": st.sampled_from([None, "won", "lost"]),
                               "ref": st.sampled_from(["d1", "d2"])}),
    )


def _after_op() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(_op(), st.just({"op": "void"}), st.just({"op": "payout"}))


@st.composite
def payment_plans(draw: st.DrawFn) -> list[PaymentPlan]:
    count = draw(st.integers(1, 3))
    plans = []
    for index in range(count):
        late = draw(st.booleans())
        plans.append(PaymentPlan(
            ref=f"pi_{index}", amount=draw(st.integers(1, 50_000)),
            currency=draw(st.sampled_from(["USD", "JPY", "KWD"])),
            agent=draw(st.sampled_from(AGENTS)), percent=draw(st.sampled_from(["20", "12.5", "33.333"])),
            sequence=draw(st.sampled_from([1, 2])), late=late, support=draw(st.booleans()),
            before=draw(st.lists(_op(), max_size=2)) if late else [],
            after=draw(st.lists(_after_op(), max_size=3)),
        ))
    return plans


def _steps(plan: PaymentPlan) -> list[tuple[str, dict[str, Any]]]:
    steps: list[tuple[str, dict[str, Any]]] = [("payment", {})]
    steps += [("op", op) for op in plan.before]
    if plan.late:
        steps.append(("signup", {}))
    steps += [("op", op) for op in plan.after]
    return steps


class History:
    """Appends a plan's events to a fresh workspace in a given interleaving."""

    def __init__(self, plans: list[PaymentPlan]) -> None:
        self.plans = plans
        self.ws = Workspace.objects.create(name="prop").id
        self.payments: dict[str, Any] = {}
        self.refund_totals: dict[str, int] = {}
        self.clock = 0

    def at(self, plan_index: int, step_index: int):
        # Business time depends only on the step, not on arrival: the same history in another order.
        return T0 + timedelta(days=plan_index * 3 + step_index, hours=plan_index)

    def append_step(self, plan_index: int, step_index: int) -> None:
        plan = self.plans[plan_index]
        kind, op = _steps(plan)[step_index]
        ws = self.ws
        at = self.at(plan_index, step_index)
        key = f"{plan.ref}:{step_index}"
        if kind == "payment":
            self.payments[plan.ref] = append(ws, "payment.succeeded", {
                "payment_ref": plan.ref, "amount": plan.amount, "currency": plan.currency}, at=at, key=key)
            if not plan.late:
                self._decide(plan, self.payments[plan.ref])
        elif kind == "signup":
            self._decide(plan, append(ws, "customer.created", {"email": f"{plan.ref}@x.test"}, at=at, key=key))
        elif op["op"] == "refund":
            amount = max(1, plan.amount * op["share"] // 100)
            total = self.refund_totals.get(plan.ref, 0) + amount
            self.refund_totals[plan.ref] = total
            data = {"payment_ref": plan.ref, "refund_ref": f"re_{key}", "amount": amount, "currency": plan.currency}
            if op["total"]:
                data["refunded_total"] = total
            append(ws, "payment.refunded", data, at=at, key=key)
            if op["repeat"]:
                append(ws, "payment.refunded", data, at=at, key=f"{key}:again")
        elif op["op"] == "dispute":
            append(ws, "payment.disputed", {"payment_ref": plan.ref, "dispute_ref": op["ref"], "amount": plan.amount,
                                            "currency": plan.currency, "outcome": op["outcome"]}, at=at, key=key)
        elif op["op"] == "void":
            append(ws, "commission.voided", {"entry_id": self.entry_id(plan), "reason": "prop"}, at=at, key=key,
                   source="operator")
        elif op["op"] == "payout":
            earned = rules.commissions_for_payment(self.facts(plan))
            agent_amount = next((e.amount for e in earned if e.kind != rules.SUPPORT), 0)
            payout_id = f"pay_{self.ws[-8:]}_{plan.ref}_{step_index}"
            append(ws, "payout.created", {"payout_id": payout_id, "agent_id": plan.agent, "currency": plan.currency,
                                          "entry_ids": [self.entry_id(plan)], "amount": agent_amount},
                   at=at, key=key, source="operator")
            append(ws, "payout.confirmed", {"payout_id": payout_id, "reference": "wire"}, at=at,
                   key=f"{key}:confirm", source="operator")

    def entry_id(self, plan: PaymentPlan) -> str:
        return derived_id("com", self.ws, plan.ref, "agent")

    def facts(self, plan: PaymentPlan) -> rules.PaymentFacts:
        return rules.PaymentFacts(amount=plan.amount, currency=plan.currency, occurred_at=T0, sequence=plan.sequence,
                                  first_payment_at=T0 - timedelta(days=40), agent_id=plan.agent,
                                  terms=terms(percent=plan.percent, recurring=plan.percent))

    def _decide(self, plan: PaymentPlan, decided: Any) -> None:
        decide(self.payments[plan.ref], agent_id=plan.agent, terms_=terms(percent=plan.percent, recurring=plan.percent),
               sequence=plan.sequence, first_payment_at=self.payments[plan.ref].occurred_at - timedelta(days=40),
               decided=decided, customer_id=f"cus_{plan.ref}",
               support_agent_id="agt_sup" if plan.support else "", support_terms=terms(support="7.5"))

    def append_in(self, order: list[int], runs: list[int] | None = None) -> None:
        """Append the steps with plans interleaved by ``order`` (plan indexes; each plan's steps keep their order)."""
        next_step = [0] * len(self.plans)
        for count, plan_index in enumerate(order):
            self.append_step(plan_index, next_step[plan_index])
            next_step[plan_index] += 1
            if runs and count % len(runs) == 0:
                run_ledger(batch_size=runs[count % len(runs)])


def _orders(plans: list[PaymentPlan]) -> st.SearchStrategy[list[int]]:
    tokens = [i for i, plan in enumerate(plans) for _ in _steps(plan)]
    return st.permutations(tokens)


def snapshot(ws: str) -> dict[str, Any]:
    """Everything the ledger holds for a workspace, in a comparable form."""
    def rows(model, *order):
        return [{k: v for k, v in row.items() if k != "id" or model is not LedgerTrail and model is not PayoutLine}
                for row in model.objects.filter(workspace_id=ws).order_by(*order).values()]

    return {
        "entries": rows(LedgerEntry, "id"),
        "payments": rows(LedgerPayment, "id"),
        "disputes": rows(PaymentDispute, "id"),
        "trail": rows(LedgerTrail, "position", "effect"),
        "payouts": rows(Payout, "id"),
        "lines": rows(PayoutLine, "entry_id"),
    }


def comparable(ws: str) -> list[tuple]:
    """The ledger without ids and positions: what must not depend on arrival order."""
    return sorted(LedgerEntry.objects.filter(workspace_id=ws).values_list(
        "payment_ref", "kind", "agent_id", "currency", "amount", "cause", "occurred_at", "hold_until"))


def totals(ws: str) -> dict[tuple[str, str, str], int]:
    """Per (payment, agent, kind-or-reversal-of): net amount."""
    out: dict[tuple[str, str, str], int] = {}
    for ref, agent, kind, amount in LedgerEntry.objects.filter(workspace_id=ws).values_list(
            "payment_ref", "agent_id", "kind", "amount"):
        out[(ref, agent, "reversal" if kind == "reversal" else "commission")] = out.get(
            (ref, agent, "reversal" if kind == "reversal" else "commission"), 0) + amount
    return out


def _in_savepoint(body) -> None:
    with transaction.atomic():
        body()
        transaction.set_rollback(True)


_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                              HealthCheck.too_slow])


@_SETTINGS
@given(data=st.data())
def test_rebuild_equals_incremental(data: st.DataObject) -> None:
    """Applying a history in random batches, then rebuilding from zero, gives identical ledger rows."""
    plans = data.draw(payment_plans())
    order = data.draw(_orders(plans))
    runs = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))

    def body() -> None:
        history = History(plans)
        history.append_in(order, runs)
        run_ledger(batch_size=data.draw(st.integers(1, 7)))
        incremental = snapshot(history.ws)
        projections.get_projector("ledger").reset()
        ProjectionCheckpoint.objects.filter(name="ledger").update(position=0)
        run_ledger()
        assert snapshot(history.ws) == incremental

    _in_savepoint(body)


@_SETTINGS
@given(data=st.data())
def test_reversals_never_exceed_commissions_and_balances_add_up(data: st.DataObject) -> None:
    """Per payment and agent, reversals never exceed commissions; each balance equals the sum of its entries."""
    plans = data.draw(payment_plans())
    order = data.draw(_orders(plans))
    as_of = T0 + timedelta(days=data.draw(st.integers(-1, 40)))

    def body() -> None:
        history = History(plans)
        history.append_in(order)
        run_ledger()
        sums = totals(history.ws)
        for (ref, agent, part), amount in sums.items():
            if part == "reversal":
                assert -amount <= sums.get((ref, agent, "commission"), 0)
                assert amount <= 0
        for agent in (*AGENTS, "agt_sup"):
            for balance in selectors.agent_balance(workspace_id=history.ws, agent_id=agent, as_of=as_of):
                entries = LedgerEntry.objects.filter(workspace_id=history.ws, agent_id=agent,
                                                     currency=balance.currency, effective_at__lte=as_of)
                assert balance.total == sum(entries.values_list("amount", flat=True))
                assert balance.pending + balance.earned + balance.payable + balance.paid + balance.on_hold \
                    == balance.total
                reversed_ = -sum(entries.filter(kind="reversal").values_list("amount", flat=True))
                assert balance.reversed == reversed_

    _in_savepoint(body)


@_SETTINGS
@given(data=st.data())
def test_arrival_order_of_independent_events_changes_nothing(data: st.DataObject) -> None:
    """Interleaving different payments' events in another order gives the same ledger and balances."""
    plans = data.draw(payment_plans())
    first_order = data.draw(_orders(plans))
    second_order = data.draw(_orders(plans))
    late = T0 + timedelta(days=400)

    def body() -> None:
        one = History(plans)
        one.append_in(first_order)
        two = History(plans)
        two.append_in(second_order)
        run_ledger()
        assert comparable(one.ws) == comparable(two.ws)
        for agent in (*AGENTS, "agt_sup"):
            a = selectors.agent_balance(workspace_id=one.ws, agent_id=agent, as_of=late)
            b = selectors.agent_balance(workspace_id=two.ws, agent_id=agent, as_of=late)
            assert a == b

    _in_savepoint(body)


@settings(max_examples=40, deadline=None)
@given(amount=st.integers(1, 10**9), commission=st.integers(1, 10**7),
       refunds=st.lists(st.integers(0, 10**9), min_size=1, max_size=6))
def test_refund_order_does_not_change_the_total_reversed(amount: int, commission: int, refunds: list[int]) -> None:
    """Partial refunds in any order reverse the same total, never more than the commission (pure rules)."""
    def run(order: list[int]) -> int:
        reversed_, refunded = 0, 0
        for refund in order:
            refunded += refund
            due = rules.reversal_due(commission, already_reversed=reversed_, payment_amount=amount,
                                     refunded_total=refunded, full=False)
            reversed_ += due
            assert reversed_ <= commission
        return reversed_

    assert run(refunds) == run(list(reversed(refunds)))
