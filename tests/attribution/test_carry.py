"""Attribution keeps its rows from one batch of a run to the next, and never trusts them stale.

``ingestion.projections.Run``: a run hands the projector one unit of work for all its batches, so
a batch reads nothing the previous one loaded or wrote; the runner starts a fresh one when another
run applied a batch in between, and the projector forgets its rows past
``REFAIRN_PROJECTION_CARRY_ROWS``.
"""

from __future__ import annotations

import pytest

from attribution.models import Click, Customer, PaymentAttribution, PaymentRecord
from ingestion.natural_keys import payment_natural_key
from ingestion.projections import Run, get_projector, run_projection

from .conftest import at, click, pay, rebuild_attribution, signup

pytestmark = pytest.mark.django_db


def _decisions(workspace_id: str) -> list[tuple[str, int]]:
    return sorted(PaymentAttribution.objects.filter(workspace_id=workspace_id).values_list("payment_ref", "sequence"))


def test_a_run_does_not_reuse_a_customer_another_run_has_paid_for_since(tenant, ann):
    """Run A carries the customer with no payment; run B records its first; A's next payment is the second."""
    ws = tenant.workspace.id
    signup(ws, "kim@example.com", referral_code="ANN", when=at(0))
    mine = Run(get_projector("attribution"))
    run_projection("attribution", run=mine)
    pay(ws, "ch_1", email="kim@example.com", when=at(1))
    run_projection("attribution")  # another worker
    pay(ws, "ch_2", email="kim@example.com", when=at(2))
    run_projection("attribution", run=mine)
    assert Customer.objects.get(email="kim@example.com").payments_count == 2
    assert _decisions(ws) == [("ch_1", 1), ("ch_2", 2)]


def test_a_run_past_the_carry_bound_forgets_its_rows_and_decides_the_same(tenant, ann, settings):
    ws = tenant.workspace.id
    signup(ws, "kim@example.com", referral_code="ANN", when=at(0))
    for month in range(1, 7):
        pay(ws, f"ch_{month}", email="kim@example.com", when=at(30 * month))
    pay(ws, "ch_0", email="kim@example.com", when=at(1))  # arrives last, dated first: re-numbers the others
    settings.REFAIRN_PROJECTION_CARRY_ROWS = 2
    run = Run(get_projector("attribution"))
    run_projection("attribution", batch_size=2, run=run)
    assert run.carry.evicted  # the customer and its email alone fill the bound: everything went
    bounded = _decisions(ws), list(Customer.objects.values_list("payments_count", "first_payment_at"))
    settings.REFAIRN_PROJECTION_CARRY_ROWS = 10**6
    rebuild_attribution()
    assert (_decisions(ws), list(Customer.objects.values_list("payments_count", "first_payment_at"))) == bounded
    assert bounded[1] == [(7, at(1))]


def _payments_state(workspace_id: str) -> list[tuple]:
    return sorted(PaymentRecord.objects.filter(workspace_id=workspace_id).values_list(
        "payment_ref", "sequence", "duplicates", "alias_ref", "attributed", "agent_id"))


def test_past_the_bound_a_run_forgets_its_payments_first_and_decides_the_same(tenant, ann, settings):
    """Customers and emails fit in the bound, so only payments are forgotten; the later batches
    read back the ones they need: a payment reported again, a natural-key report of an own-id
    payment, and all of a customer's when an earlier-dated payment arrives last."""
    ws = tenant.workspace.id
    signup(ws, "kim@example.com", referral_code="ANN", when=at(0))
    signup(ws, "lee@example.com", referral_code="ANN", when=at(0))
    for month in range(1, 7):
        pay(ws, f"ch_{month}", email="kim@example.com", when=at(30 * month))
    for month in range(1, 5):
        pay(ws, f"lee_{month}", email="lee@example.com", when=at(30 * month + 5))
    # The payments are forgotten by now: each of these needs some of kim's read back.
    pay(ws, "ch_1", when=at(30))  # the same payment reported again, by its id alone
    twin = payment_natural_key(email="kim@example.com", paid_at=at(60), amount=9900, currency="USD")
    pay(ws, twin, email="kim@example.com", when=at(60), source="csv")  # ch_2 again, from a CSV row
    pay(ws, "ch_0", email="kim@example.com", when=at(1))  # arrives last, dated first: re-numbers the others
    settings.REFAIRN_PROJECTION_CARRY_ROWS = 8  # 2 customers + 2 emails: under 3/4 of it
    run = Run(get_projector("attribution"))
    run_projection("attribution", batch_size=2, run=run)
    assert run.carry.forgotten == {"payments"}
    assert not run.carry.evicted
    bounded = _decisions(ws), _payments_state(ws), list(Customer.objects.order_by("email").values_list(
        "payments_count", "first_payment_at", "last_payment_at"))
    settings.REFAIRN_PROJECTION_CARRY_ROWS = 10**6
    rebuild_attribution()
    assert (_decisions(ws), _payments_state(ws), list(Customer.objects.order_by("email").values_list(
        "payments_count", "first_payment_at", "last_payment_at"))) == bounded
    kim = {ref: (sequence, duplicates, alias) for ref, sequence, duplicates, alias, *_ in bounded[1]
           if ref.startswith("ch_")}
    assert kim["ch_0"][0] == 1
    assert kim["ch_6"][0] == 7
    assert kim["ch_1"][1] == 1
    assert kim["ch_2"][2] == twin


def _customers_state(workspace_id: str) -> list[tuple]:
    return sorted(Customer.objects.filter(workspace_id=workspace_id).values_list(
        "email", "agent_id", "referral_code", "click_id", "payments_count"))


def _clicks_state(workspace_id: str) -> list[tuple]:
    return sorted(Click.objects.filter(workspace_id=workspace_id).values_list(
        "click_id", "agent_id", "first_click_id", "first_click_at"))


def test_past_the_bound_a_run_forgets_its_clicks_next_and_decides_the_same(tenant, ann, bob, settings):
    """Eight clicks fill the bound once the payments are gone: they go too, customers stay; a
    visitor's next click and two signups by click id read old clicks back."""
    ws = tenant.workspace.id
    for n in range(8):
        click(ws, "ANN", f"clk_{n}", when=at(n / 10))
    signup(ws, "kim@example.com", when=at(1))
    for month in range(1, 4):
        pay(ws, f"ch_{month}", email="kim@example.com", when=at(30 * month))
    run = Run(get_projector("attribution"))
    run_projection("attribution", batch_size=2, run=run)
    assert run.carry.size() > 10
    settings.REFAIRN_PROJECTION_CARRY_ROWS = 10  # room: 7 rows; 8 clicks + kim + her email are more
    click(ws, "BOB", "clk_late", first_click_id="clk_3", when=at(3))  # the visitor of clk_3, back
    signup(ws, "lee@example.com", click_id="clk_late", when=at(4))
    signup(ws, "max@example.com", click_id="clk_5", when=at(4))
    run_projection("attribution", batch_size=2, run=run)
    assert run.carry.forgotten == {"payments", "clicks"}
    assert not run.carry.evicted
    bounded = _customers_state(ws), _clicks_state(ws), _decisions(ws)
    settings.REFAIRN_PROJECTION_CARRY_ROWS = 10**6
    rebuild_attribution()
    assert (_customers_state(ws), _clicks_state(ws), _decisions(ws)) == bounded
    clicks = {click_id: first for click_id, _, first, _ in bounded[1]}
    assert clicks["clk_late"] == "clk_3"
    customers = {email: (agent, click_id) for email, agent, _, click_id, _ in bounded[0]}
    assert customers["max@example.com"] == (ann.agent_id, "clk_5")


def test_a_rebuild_past_the_bound_finds_a_customer_by_the_email_it_learned_after_its_creation(tenant, ann, settings):
    """The keys a customer gains later (``learn``) are remembered as written, like those it was created with."""
    from .conftest import emit

    ws = tenant.workspace.id
    emit(ws, "customer.created", {"customer_ref": "u-1", "name": "Kim", "referral_code": "ANN"}, when=at(0))
    pay(ws, "ch_1", customer_ref="u-1", email="kim@example.com", when=at(1))
    for n in range(3):
        signup(ws, f"other{n}@example.com", when=at(1))
    pay(ws, "ch_2", email="kim@example.com", when=at(2))
    settings.REFAIRN_PROJECTION_CARRY_ROWS = 2
    settings.REFAIRN_PROJECTION_BATCH_SIZE = 1
    rebuild_attribution()
    kim = Customer.objects.get(customer_ref="u-1")
    assert (kim.email, kim.payments_count) == ("kim@example.com", 2)
    assert not Customer.objects.filter(email="kim@example.com").exclude(pk=kim.pk).exists()
