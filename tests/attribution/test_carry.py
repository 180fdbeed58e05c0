"""Attribution keeps its rows from one batch of a run to the next, and never trusts them stale.

``ingestion.projections.Run``: a run hands the projector one unit of work for all its batches, so
a batch reads nothing the previous one loaded or wrote; the runner starts a fresh one when another
run applied a batch in between, and the projector forgets its rows past
``REFAIRN_PROJECTION_CARRY_ROWS``.
"""

from __future__ import annotations

import pytest

from attribution.models import Customer, PaymentAttribution
from ingestion.projections import Run, get_projector, run_projection

from .conftest import at, pay, rebuild_attribution, signup

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
    run_projection("attribution", batch_size=2)
    bounded = _decisions(ws), list(Customer.objects.values_list("payments_count", "first_payment_at"))
    settings.REFAIRN_PROJECTION_CARRY_ROWS = 10**6
    rebuild_attribution()
    assert (_decisions(ws), list(Customer.objects.values_list("payments_count", "first_payment_at"))) == bounded
    assert bounded[1] == [(7, at(1))]
