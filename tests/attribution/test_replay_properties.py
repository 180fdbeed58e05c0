"""Property: attribution is the same incrementally, after a rebuild, and whatever the arrival order.

Hypothesis generates small worlds of customers (clicks, signups with codes or clicks, payments,
duplicate reports, cancellations, payment-only customers) and appends them twice, into two
workspaces with the same agents and codes:

- world A in one interleaving of the customers' events, each customer's signup before its payments
  and its payments in business order;
- world B in another interleaving, with each customer's payments (and their duplicate reports)
  shuffled and its signup moved after some of them.

Both worlds are projected in batches of random sizes while the events arrive. ``manage.py
rebuild_projections attribution`` must then reproduce each world row for row. World B must reach
the same attribution as world A, compared by business keys (emails, payment refs, codes), since
positions and event ids differ between the two, both incrementally and after the rebuild: customer
status, agent and first payment, each payment's record and business-time number
(``PaymentRecord.sequence``), each payment's decision (agent, amount, enrollment state).

The decisions' own ``sequence``/``first_payment_at`` are the order they were TAKEN in (the ledger's
contract, never re-numbered: attribution/projector.py), so they are not compared across worlds;
instead each attributed customer's decided numbers must be exactly 1..n (one referral), and in
world A, where arrival is business order, they must equal the business-time numbers.

Payments may also be reported again under their natural key (a CSV row: email, day, amount,
currency), before or after their own-id report: one payment either way, named by its own id.

Not generated (known limits, see attribution/domain.py): payments that reach a customer before its
signup through DISJOINT identifiers (one by business id only, another by email only) make two
customers until the signup; and a metadata code on a payment of a customer who also signs up.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from attribution.models import (
    AttributionRefusal,
    Click,
    Customer,
    PaymentAttribution,
    PaymentRecord,
    ProviderCustomerLink,
    ReferralCode,
    SubscriptionLink,
)
from ingestion.ids import new_id
from ingestion.models import ProjectionCheckpoint
from ingestion.natural_keys import payment_natural_key
from ingestion.projections import get_projector, run_projection
from ingestion.store import NewEvent, event_append
from ingestion.workspaces import workspace_create
from tests.factories import AgentFactory, ProgramFactory, approved_enrollment

from .conftest import T0

CODES = ["ANN", "BOB", "CAT", "ZZZ"]  # CAT is removed, ZZZ never existed


@dataclass
class Plan:
    """One customer's story."""

    index: int
    self_referral: bool
    has_ref: bool
    pay_by: str  # "email" | "ref" | "both"
    touch: str  # "none" | "code" | "click" | "trail"
    code: str
    second_code: str
    gap_days: int
    signup: bool
    duplicate_signup: bool
    # (amount, reported twice under its own id, reported again under its natural key)
    payments: list[tuple[int, bool, bool]] = field(default_factory=list)
    metadata_code: bool = False
    cancel: bool = False
    signup_after: int = 0  # world B: how many payments arrive before the signup


plans = st.builds(
    Plan,
    index=st.just(0),
    self_referral=st.booleans(),
    has_ref=st.booleans(),
    pay_by=st.sampled_from(["email", "ref", "both"]),
    touch=st.sampled_from(["none", "code", "click", "trail"]),
    code=st.sampled_from(CODES),
    second_code=st.sampled_from(CODES[:2]),
    gap_days=st.sampled_from([0, 1, 20, 45]),
    signup=st.booleans(),
    duplicate_signup=st.booleans(),
    payments=st.lists(st.tuples(st.integers(1, 50_000), st.booleans(), st.booleans()), max_size=3),
    metadata_code=st.booleans(),
    cancel=st.booleans(),
    signup_after=st.integers(0, 3),
)


def _email(plan: Plan) -> str:
    # Only one customer may use the agent's email, or two stories would share one identity.
    return "ann@partners.test" if plan.self_referral and plan.index == 0 else f"c{plan.index}@example.com"


def _events(plan: Plan, *, late_signup: bool, rnd: random.Random | None = None) -> list[dict[str, Any]]:
    """The customer's events in arrival order (as dicts for NewEvent); ``rnd`` shuffles its payments."""
    i = plan.index
    base = T0 + timedelta(days=i)
    email = _email(plan)
    ref = f"u{i}" if plan.has_ref else ""
    clicks: list[dict[str, Any]] = []
    touch: dict[str, Any] = {}
    if plan.touch in {"click", "trail"}:
        first = f"clk_c{i}first0000"
        clicks.append(_click(first, plan.code, first, base))
        touch["click_id"] = first
        if plan.touch == "trail":
            second = f"clk_c{i}second000"
            clicks.append(_click(second, plan.second_code, first, base + timedelta(hours=1)))
            touch = {"click_id": second, "referral_code": plan.second_code}
    elif plan.touch == "code":
        touch["referral_code"] = plan.code.lower()
    signup_at = base + timedelta(days=plan.gap_days)
    signups: list[dict[str, Any]] = []
    if plan.signup:
        data = {"email": email.upper(), "name": f"C {i}", **touch}
        if ref:
            data["customer_ref"] = ref
        signups.append({"type": "customer.created", "data": data, "at": signup_at, "source": "api",
                        "key": f"signup-{i}"})
        if plan.duplicate_signup:
            signups.append({"type": "customer.created", "data": dict(data), "at": signup_at, "source": "csv",
                            "key": f"signup-{i}-again"})
    payments: list[dict[str, Any]] = []
    for n, (amount, twice, natural) in enumerate(plan.payments):
        data: dict[str, Any] = {"payment_ref": f"ch_{i}_{n}", "amount": amount, "currency": "USD",
                                "subscription_ref": f"sub_{i}"}
        if plan.pay_by in {"email", "both"} or not ref:
            data["email"] = f" {email} "
        if plan.pay_by in {"ref", "both"} and ref:
            data["customer_ref"] = ref
        if n == 0 and not plan.signup and plan.metadata_code:
            data.update(touch or {"referral_code": plan.code})
        when = signup_at + timedelta(days=1 + 30 * n)
        payments.append({"type": "payment.succeeded", "data": data, "at": when, "source": "stripe",
                         "key": f"pay-{i}-{n}"})
        if twice:
            payments.append({"type": "payment.succeeded", "data": dict(data), "at": when, "source": "api",
                             "key": f"pay-{i}-{n}-again"})
        if natural and "email" in data:
            # The same payment from a CSV row (email, day, amount, currency): before or after the
            # own-id report (which carries the email: disjoint identifiers are the known limit
            # below), it is one payment, and the own-id report's metadata code, if any, decides.
            key = payment_natural_key(email=email, paid_at=when, amount=amount, currency="USD")
            payments.append({"type": "payment.succeeded", "at": when, "source": "csv", "key": key,
                             "data": {"payment_ref": key, "email": email, "amount": amount, "currency": "USD"}})
    tail: list[dict[str, Any]] = []
    if plan.cancel and plan.payments:
        tail.append({"type": "subscription.cancelled", "data": {"subscription_ref": f"sub_{i}"},
                     "at": signup_at + timedelta(days=200), "source": "api", "key": f"cancel-{i}"})
    if rnd is not None:
        rnd.shuffle(payments)
    if late_signup:
        split = min(plan.signup_after, len(payments))
        return clicks + payments[:split] + signups + payments[split:] + tail
    return clicks + signups + payments + tail


def _click(click_id: str, code: str, first: str, when: Any) -> dict[str, Any]:
    return {"type": "click.recorded", "at": when, "source": "link", "key": click_id,
            "data": {"click_id": click_id, "referral_code": code, "landing_url": "https://x.test/",
                     "ip_hash": "", "user_agent": "", "first_click_id": first}}


def _interleave(streams: list[list[dict[str, Any]]], rnd: random.Random) -> list[dict[str, Any]]:
    """Merge the customers' streams in a random order that keeps each stream's own order."""
    streams = [list(s) for s in streams if s]
    merged: list[dict[str, Any]] = []
    while streams:
        stream = rnd.choice(streams)
        merged.append(stream.pop(0))
        if not stream:
            streams.remove(stream)
    return merged


def _world(name: str) -> tuple[str, dict[str, str]]:
    """A workspace with a 30-day program, Ann and Bob approved, Cat removed; return agent names."""
    from agents.services import enrollment_remove

    created = workspace_create(name=name, product_url="https://x.test/")
    program = ProgramFactory(workspace=created.workspace, product=created.product, attribution_window_days=30)
    names = {}
    for code in ("ANN", "BOB", "CAT"):
        agent = AgentFactory(workspace=created.workspace, name=code.title(), email=f"{code.lower()}@partners.test")
        enrollment = approved_enrollment(program=program, agent=agent, code=code)
        names[agent.id] = code
        if code == "CAT":
            enrollment_remove(enrollment=enrollment, reason="left")
    return created.workspace.id, names


def _append(workspace_id: str, events: list[dict[str, Any]], *, project_every: random.Random | None) -> None:
    for event in events:
        event_append(NewEvent(workspace_id=workspace_id, source=event["source"], source_event_id=event["key"],
                              type=event["type"], occurred_at=event["at"], data=event["data"]))
        if project_every is not None and project_every.random() < 0.4:
            # Small batches: one run then spans several, carrying its rows from one to the next.
            run_projection("attribution", batch_size=project_every.randint(1, 4))
    run_projection("attribution")


def _exact(workspace_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every attribution row of the workspace, without autoincrement ids."""
    state = {}
    for model in (ReferralCode, Click, Customer, ProviderCustomerLink, SubscriptionLink, PaymentRecord,
                  AttributionRefusal, PaymentAttribution):
        fields = [f.attname for f in model._meta.concrete_fields if f.name != "id" or model is Customer]
        rows = model.objects.filter(workspace_id=workspace_id).values(*fields)
        state[model.__name__] = sorted((dict(r) for r in rows), key=repr)
    return state


def _business(workspace_id: str, names: dict[str, str]) -> dict[str, Any]:
    """The attribution expressed in business keys, comparable across workspaces and orders.

    A payment reported under its own id and under its natural key keeps the ref of the report that
    came first, the other as its alias: it is named here by its own id, whichever came first.
    """
    customers = {c.id: c for c in Customer.objects.filter(workspace_id=workspace_id)}
    records = list(PaymentRecord.objects.filter(workspace_id=workspace_id))
    canonical = {p.payment_ref: (p.alias_ref if p.payment_ref.startswith("nk:") and p.alias_ref else p.payment_ref)
                 for p in records}

    def who(customer_id: str) -> str:
        customer = customers.get(customer_id)
        return (customer.email or customer.customer_ref) if customer else ""

    return {
        "customers": sorted(
            (who(c.id), c.customer_ref, c.status, names.get(c.agent_id, ""), c.referral_code, c.attributed_via,
             c.unattributed_reason, c.payments_count, c.first_payment_at, c.cancelled_at)
            for c in customers.values()),
        "payments": sorted(
            (canonical[p.payment_ref], who(p.customer_id), p.attributed, names.get(p.agent_id, ""), p.duplicates,
             p.customer_cancelled, p.sequence)
            for p in records),
        "attributions": sorted(
            (canonical[a.payment_ref], who(a.customer_id), names.get(a.agent_id, ""), a.amount, a.enrollment_active,
             a.customer_cancelled)
            for a in PaymentAttribution.objects.filter(workspace_id=workspace_id)),
        "refusals": sorted((r.kind, r.referral_code) for r in AttributionRefusal.objects.filter(
            workspace_id=workspace_id)),
    }


def _assert_decided_numbers(workspace_id: str, *, business_order: bool) -> None:
    """Each attributed customer's decisions are numbered 1..n (one referral); equal to business time if asked."""
    records = {p.payment_ref: p for p in PaymentRecord.objects.filter(workspace_id=workspace_id)}
    by_customer: dict[str, list[int]] = {}
    for row in PaymentAttribution.objects.filter(workspace_id=workspace_id):
        by_customer.setdefault(row.customer_id, []).append(row.sequence)
        if business_order:
            record = records[row.payment_ref]
            assert row.sequence == record.sequence, row.payment_ref
            assert row.first_payment_at == Customer.objects.get(id=row.customer_id).first_payment_at
    for customer in Customer.objects.filter(workspace_id=workspace_id).exclude(agent_id=""):
        assert sorted(by_customer.get(customer.id, [])) == list(range(1, customer.payments_count + 1)), customer.id


class ReplayProperties(TestCase):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(plans, min_size=1, max_size=4), st.randoms(use_true_random=False))
    def test_attribution_is_the_same_incrementally_after_rebuild_and_in_any_arrival_order(
            self, stories: list[Plan], rnd: random.Random) -> None:
        """Incremental == rebuilt, and shuffled payments with a late signup give the in-order attribution."""
        for index, plan in enumerate(stories):
            plan.index = index
        world_a, names_a = _world("A")
        world_b, names_b = _world("B")
        _append(world_a, _interleave([_events(p, late_signup=False) for p in stories], rnd), project_every=rnd)
        _append(world_b, _interleave([_events(p, late_signup=True, rnd=rnd) for p in stories], rnd),
                project_every=rnd)

        incremental_a, incremental_b = _exact(world_a), _exact(world_b)
        assert _business(world_b, names_b) == _business(world_a, names_a)
        _assert_decided_numbers(world_a, business_order=True)
        _assert_decided_numbers(world_b, business_order=False)
        call_command("rebuild_projections", "attribution", stdout=io.StringIO())
        assert _exact(world_a) == incremental_a
        assert _exact(world_b) == incremental_b
        assert _business(world_b, names_b) == _business(world_a, names_a)
        # A rebuild in small batches: its rows carried from batch to batch, none read back, or
        # (a small carry bound) forgotten, the payments only or everything, and read back by the
        # keys it wrote.
        with transaction.atomic():
            get_projector("attribution").reset()
            ProjectionCheckpoint.objects.filter(name="attribution").update(position=0)
        with override_settings(REFAIRN_PROJECTION_CARRY_ROWS=rnd.choice([1, 5, 12, 40, 10**6])):
            run_projection("attribution", batch_size=rnd.randint(1, 6))
        assert _exact(world_a) == incremental_a
        assert _exact(world_b) == incremental_b


def test_event_ids_are_fresh() -> None:
    """The helper ids used above never collide with stored event ids (sanity of the generator)."""
    assert new_id("k") != new_id("k")
