"""A customer's payments arriving out of business order: attribution's view is by business time.

The rule (attribution/projector.py, module docstring): ``Customer.first_payment_at`` and
``PaymentRecord.sequence`` follow business time (``occurred_at``, then ``payment_ref``) whatever the
arrival order, while the ``PaymentAttribution`` rows the ledger reads keep the order in which
payments were DECIDED, so exactly one payment per customer is decided as number 1 (the referral).
"""

from __future__ import annotations

import pytest

from attribution.models import Customer, PaymentAttribution, PaymentRecord
from ingestion.projections import run_projection

from .conftest import at, pay, rebuild_attribution, signup

pytestmark = pytest.mark.django_db


def _numbers(workspace_id: str) -> dict[str, int | None]:
    return dict(PaymentRecord.objects.filter(workspace_id=workspace_id).values_list("payment_ref", "sequence"))


def _decided(workspace_id: str) -> dict[str, tuple[int, object]]:
    return {ref: (sequence, first) for ref, sequence, first in PaymentAttribution.objects.filter(
        workspace_id=workspace_id).values_list("payment_ref", "sequence", "first_payment_at")}


def test_an_earlier_payment_arriving_late_is_numbered_by_business_time(tenant, ann, project):
    """February's payment arrives before January's: the records are numbered Jan 1, Feb 2, Mar 3."""
    ws = tenant.workspace.id
    signup(ws, "late@example.com", referral_code="ANN", when=at(0))
    pay(ws, "ch_feb", email="late@example.com", when=at(31))
    pay(ws, "ch_mar", email="late@example.com", when=at(60))
    project()
    pay(ws, "ch_jan", email="late@example.com", when=at(1))
    project()
    assert _numbers(ws) == {"ch_jan": 1, "ch_feb": 2, "ch_mar": 3}
    customer = Customer.objects.get(email="late@example.com")
    assert (customer.first_payment_at, customer.last_payment_at, customer.payments_count) == (at(1), at(60), 3)
    assert customer.first_payment_event_id == PaymentRecord.objects.get(payment_ref="ch_jan").event_id


def test_the_decisions_keep_the_order_they_were_taken_in_so_one_payment_earns_the_referral(tenant, ann, project):
    """The ledger's rows are never re-numbered: Feb (decided first) stays 1, the late January is 3.

    January's decision carries the earliest payment known then (itself) as ``first_payment_at``, so
    the recurring cap counts from the customer's true first payment.
    """
    ws = tenant.workspace.id
    signup(ws, "late@example.com", referral_code="ANN", when=at(0))
    pay(ws, "ch_feb", email="late@example.com", when=at(31))
    pay(ws, "ch_mar", email="late@example.com", when=at(60))
    pay(ws, "ch_jan", email="late@example.com", when=at(1))
    project()
    assert _decided(ws) == {"ch_feb": (1, at(31)), "ch_mar": (2, at(31)), "ch_jan": (3, at(1))}


def test_a_metadata_code_on_the_earliest_payment_decides_even_when_it_arrives_second(tenant, ann, project):
    """Payment-only path: the code rides on January's payment, which arrives after February's.

    The result equals the in-order one: attributed via the payment metadata, January decided 1.
    """
    ws = tenant.workspace.id
    pay(ws, "ch_feb", email="meta@example.com", when=at(31), source="stripe")
    project()
    assert Customer.objects.get(email="meta@example.com").agent_id == ""
    pay(ws, "ch_jan", email="meta@example.com", referral_code="ANN", when=at(1), source="stripe")
    project()
    customer = Customer.objects.get(email="meta@example.com")
    assert (customer.agent_id, customer.attributed_via) == (ann.agent_id, Customer.Via.PAYMENT_METADATA)
    assert _decided(ws) == {"ch_jan": (1, at(1)), "ch_feb": (2, at(1))}
    assert _numbers(ws) == {"ch_jan": 1, "ch_feb": 2}


def test_a_metadata_code_on_a_later_payment_still_attributes_nothing(tenant, ann, project):
    """A code on a payment that is not the customer's first (by business time) is not a first touch."""
    ws = tenant.workspace.id
    pay(ws, "ch_jan", email="meta@example.com", when=at(1), source="stripe")
    pay(ws, "ch_feb", email="meta@example.com", referral_code="ANN", when=at(31), source="stripe")
    project()
    assert Customer.objects.get(email="meta@example.com").agent_id == ""
    assert not PaymentAttribution.objects.exists()


def test_a_late_signup_claims_payments_of_the_same_time_by_payment_ref(tenant, ann, project):
    """Two payments at the same instant are ordered by payment_ref, not by arrival."""
    ws = tenant.workspace.id
    pay(ws, "ch_b", email="tie@example.com", when=at(2))
    pay(ws, "ch_a", email="tie@example.com", when=at(2))
    signup(ws, "tie@example.com", referral_code="ANN", when=at(1))
    project()
    assert _numbers(ws) == {"ch_a": 1, "ch_b": 2}
    assert {ref: seq for ref, (seq, _) in _decided(ws).items()} == {"ch_a": 1, "ch_b": 2}


def test_rebuilding_after_out_of_order_payments_reproduces_every_number(tenant, ann, project):
    """Re-numbered records and as-decided rows both come back identical from a rebuild."""
    ws = tenant.workspace.id
    signup(ws, "late@example.com", referral_code="ANN", when=at(0))
    for ref, day in (("ch_3", 61), ("ch_1", 1), ("ch_4", 91), ("ch_2", 31)):
        pay(ws, ref, email="late@example.com", when=at(day))
        project()
    numbers, decided = _numbers(ws), _decided(ws)
    first = Customer.objects.get(email="late@example.com").first_payment_at
    rebuild_attribution()
    assert (_numbers(ws), _decided(ws)) == (numbers, decided)
    assert numbers == {"ch_1": 1, "ch_2": 2, "ch_3": 3, "ch_4": 4}
    assert Customer.objects.get(email="late@example.com").first_payment_at == first == at(1)


def test_late_payments_of_a_known_customer_in_one_batch_are_numbered_with_its_stored_ones(tenant, ann, project):
    """A backlog of older payments: stored Apr and May, then one batch of Jan, Jun, Feb (in that order).

    The batch reads the customer's stored payments once and numbers them together with its own,
    including a later-dated payment of the same batch that arrives between the late ones.
    """
    ws = tenant.workspace.id
    signup(ws, "backlog@example.com", referral_code="ANN", when=at(0))
    pay(ws, "ch_apr", email="backlog@example.com", when=at(91))
    pay(ws, "ch_may", email="backlog@example.com", when=at(121))
    project()
    for ref, day in (("ch_jan", 1), ("ch_jun", 152), ("ch_feb", 31)):
        pay(ws, ref, email="backlog@example.com", when=at(day))
    project()
    assert _numbers(ws) == {"ch_jan": 1, "ch_feb": 2, "ch_apr": 3, "ch_may": 4, "ch_jun": 5}
    customer = Customer.objects.get(email="backlog@example.com")
    assert (customer.first_payment_at, customer.last_payment_at, customer.payments_count) == (at(1), at(152), 5)


def test_a_records_sort_key_is_the_payment_order_of_its_time_and_ref():
    from datetime import UTC, datetime

    from attribution import domain

    record = PaymentRecord(occurred_at=datetime(2024, 5, 1, tzinfo=UTC), payment_ref="pi_2")
    assert domain.payment_record_order(record) == domain.payment_order(record.occurred_at, record.payment_ref)


def test_late_and_later_payments_over_many_batches_of_one_run_are_numbered_by_business_time(tenant, ann):
    """One run, a batch per event: the customer's payments kept in business order from batch to
    batch take each new payment, late or not, at its place."""
    ws = tenant.workspace.id
    signup(ws, "runs@example.com", referral_code="ANN", when=at(0))
    for ref, day in (("ch_may", 121), ("ch_jan", 1), ("ch_jun", 152), ("ch_feb", 31), ("ch_jul", 182),
                     ("ch_mar", 61)):
        pay(ws, ref, email="runs@example.com", when=at(day))
    run_projection("attribution", batch_size=1)
    numbers = _numbers(ws)
    assert numbers == {"ch_jan": 1, "ch_feb": 2, "ch_mar": 3, "ch_may": 4, "ch_jun": 5, "ch_jul": 6}
    rebuild_attribution()
    assert _numbers(ws) == numbers
