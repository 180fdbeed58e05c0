"""The attribution projector: every rule of PRODUCT.md "Attribution", from events alone."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agents.services import enrollment_remove, program_update
from attribution.models import AttributionRefusal, Click, Customer, PaymentAttribution, PaymentRecord, ReferralCode
from ingestion.models import Event
from ingestion.natural_keys import payment_natural_key

from .conftest import at, click, emit, pay, rebuild_attribution, signup

pytestmark = pytest.mark.django_db


def _customer(email: str) -> Customer:
    return Customer.objects.get(email=email)


@pytest.mark.smoke
def test_signup_through_a_click_makes_a_lead_of_the_clicked_agent(tenant, ann, project):
    """A signup naming a recorded click becomes a lead of that click's agent, with the why."""
    ws = tenant.workspace.id
    clicked = click(ws, "ANN", "clk_aaaaaaaaaaaa", when=at(0))
    created = signup(ws, "jane@example.com", click_id="clk_aaaaaaaaaaaa", when=at(2))
    project()
    customer = _customer("jane@example.com")
    assert customer.status == Customer.Status.LEAD
    assert customer.agent_id == ann.agent_id
    assert customer.enrollment_id == ann.id
    assert customer.attributed_via == Customer.Via.CLICK
    assert customer.click_event_id == clicked.event_id
    assert customer.signup_event_id == created.event_id
    assert customer.attributed_event_id == created.event_id
    assert customer.id.startswith("cus_")


def test_the_window_runs_from_the_visitors_first_click(tenant, ann, project):
    """A recent click does not reopen a window that the visitor's first click has already closed."""
    ws = tenant.workspace.id
    click(ws, "ANN", "clk_first0000000", when=at(0))
    click(ws, "ANN", "clk_second000000", first_click_id="clk_first0000000", when=at(25))
    signup(ws, "late@example.com", click_id="clk_second000000", when=at(31))
    project()
    customer = _customer("late@example.com")
    assert customer.agent_id == ""
    assert customer.unattributed_reason == Customer.Unattributed.WINDOW_EXPIRED
    assert Click.objects.get(click_id="clk_second000000").first_click_id == "clk_first0000000"


def test_a_signup_inside_the_window_is_attributed(tenant, ann, project):
    """A signup 30 days after the first click, with a 30-day window, is still attributed."""
    ws = tenant.workspace.id
    click(ws, "ANN", "clk_inside000000", when=at(0))
    signup(ws, "ontime@example.com", click_id="clk_inside000000", when=at(30))
    project()
    assert _customer("ontime@example.com").agent_id == ann.agent_id


def test_a_hand_typed_code_is_honoured_whatever_the_time(tenant, ann, project):
    """A code given at signup without a click is honoured while the enrollment is approved."""
    ws = tenant.workspace.id
    signup(ws, "typed@example.com", referral_code="ann", when=at(400))
    project()
    customer = _customer("typed@example.com")
    assert customer.agent_id == ann.agent_id
    assert customer.attributed_via == Customer.Via.CODE
    assert customer.referral_code == "ANN"


def test_first_touch_wins_over_a_later_signup_code(tenant, ann, bob, project):
    """Once attributed, a customer is not moved by a later signup carrying another code."""
    ws = tenant.workspace.id
    signup(ws, "first@example.com", referral_code="ANN", when=at(1))
    signup(ws, "first@example.com", referral_code="BOB", when=at(2))
    project()
    assert _customer("first@example.com").agent_id == ann.agent_id


def test_first_touch_wins_across_a_click_trail(tenant, ann, bob, project):
    """A visitor who clicked Ann's link first and Bob's later is credited to Ann."""
    ws = tenant.workspace.id
    click(ws, "ANN", "clk_trailann0000", when=at(0))
    click(ws, "BOB", "clk_trailbob0000", first_click_id="clk_trailann0000", when=at(1))
    signup(ws, "trail@example.com", click_id="clk_trailbob0000", referral_code="BOB", when=at(2))
    project()
    assert _customer("trail@example.com").agent_id == ann.agent_id


def test_an_unknown_code_keeps_the_signup_unattributed_with_its_reason(tenant, ann, project):
    """An unknown referralCode is kept as an unattributed customer, the reason recorded."""
    ws = tenant.workspace.id
    signup(ws, "nobody@example.com", referral_code="NOPE", when=at(1))
    project()
    customer = _customer("nobody@example.com")
    assert customer.agent_id == ""
    assert customer.unattributed_reason == Customer.Unattributed.UNKNOWN_CODE
    assert AttributionRefusal.objects.get(customer_id=customer.id).kind == "unknown_code"


def test_a_removed_enrollments_code_attributes_nothing_new(tenant, ann, project):
    """After removal, the code no longer makes leads."""
    ws = tenant.workspace.id
    enrollment_remove(enrollment=ann, reason="left", actor="test")
    signup(ws, "after@example.com", referral_code="ANN", when=at(1))
    project()
    customer = _customer("after@example.com")
    assert customer.agent_id == ""
    assert customer.unattributed_reason == Customer.Unattributed.ENROLLMENT_NOT_ACTIVE
    assert ReferralCode.objects.get(code="ANN").status == ReferralCode.Status.REMOVED


def test_self_referral_is_refused_and_recorded(tenant, ann, project):
    """A customer with the agent's own email is not attributed; the operator sees the attempt."""
    ws = tenant.workspace.id
    signup(ws, " Ann@Partners.test ", referral_code="ANN", when=at(1))
    project()
    customer = _customer("ann@partners.test")
    assert customer.agent_id == ""
    assert customer.unattributed_reason == Customer.Unattributed.SELF_REFERRAL
    refusal = AttributionRefusal.objects.get(kind="self_referral")
    assert (refusal.customer_id, refusal.agent_id) == (customer.id, ann.agent_id)


def test_a_code_of_another_products_program_is_refused(tenant, ann, project):
    """A signup for another product does not credit this product's program."""
    ws = tenant.workspace.id
    signup(ws, "other@example.com", referral_code="ANN", product_id="prod_elsewhere", when=at(1))
    project()
    assert _customer("other@example.com").unattributed_reason == Customer.Unattributed.PRODUCT_MISMATCH


@pytest.mark.smoke
def test_the_first_payment_turns_a_lead_into_a_customer_and_is_attributed(tenant, ann, project):
    """The first payment of a lead writes the ledger's row: sequence 1, terms snapshot, decided by it."""
    ws = tenant.workspace.id
    signup(ws, "pay@example.com", referral_code="ANN", when=at(1))
    paid = pay(ws, "ch_1", email="pay@example.com", when=at(2))
    project()
    customer = _customer("pay@example.com")
    assert customer.status == Customer.Status.CUSTOMER
    row = PaymentAttribution.objects.get(payment_ref="ch_1")
    assert (row.agent_id, row.enrollment_id, row.customer_id) == (ann.agent_id, ann.id, customer.id)
    assert (row.sequence, row.amount, row.currency) == (1, 9900, "USD")
    assert row.decided_position == row.payment_position == paid.position
    assert row.decided_event_id == row.payment_event_id == paid.event_id
    assert row.first_payment_at == at(2)
    assert row.terms == ann.terms
    assert row.enrollment_event_id == Event.objects.get(type="enrollment.approved").event_id
    assert row.enrollment_active is True
    assert row.customer_cancelled is False


def test_later_payments_count_up_from_the_first(tenant, ann, project):
    """Each later payment gets the next sequence and the customer's first payment time."""
    ws = tenant.workspace.id
    signup(ws, "renew@example.com", referral_code="ANN", when=at(1))
    for month in range(3):
        pay(ws, f"ch_r{month}", email="renew@example.com", when=at(2 + 30 * month))
    project()
    rows = list(PaymentAttribution.objects.order_by("sequence").values_list("payment_ref", "sequence",
                                                                              "first_payment_at"))
    assert rows == [("ch_r0", 1, at(2)), ("ch_r1", 2, at(2)), ("ch_r2", 3, at(2))]
    assert _customer("renew@example.com").payments_count == 3


def test_editing_the_program_after_approval_changes_no_attributed_terms(tenant, program, ann, project):
    """Payments carry the snapshot taken at approval, not the program's current terms."""
    ws = tenant.workspace.id
    program_update(program=program, referral_value=Decimal("50"), attribution_window_days=1)
    signup(ws, "snap@example.com", referral_code="ANN", when=at(1))
    pay(ws, "ch_snap", email="snap@example.com", when=at(2))
    project()
    terms = PaymentAttribution.objects.get(payment_ref="ch_snap").terms
    assert terms["referral"] == {"type": "percent", "percent": "20"}
    assert terms["attribution_window_days"] == 30


def test_a_payment_matches_the_business_customer_id_before_the_email(tenant, ann, bob, project):
    """The business's customer id wins over an email that names another customer."""
    ws = tenant.workspace.id
    signup(ws, "a@example.com", customer_ref="u-1", referral_code="ANN", when=at(1))
    signup(ws, "b@example.com", customer_ref="u-2", referral_code="BOB", when=at(1))
    pay(ws, "ch_m1", customer_ref="u-1", email="b@example.com", when=at(2))
    project()
    row = PaymentAttribution.objects.get(payment_ref="ch_m1")
    assert row.agent_id == ann.agent_id
    assert PaymentRecord.objects.get(payment_ref="ch_m1").matched_by == "customer_ref"


def test_a_payment_matches_a_provider_customer_id_learned_earlier(tenant, ann, project):
    """A provider customer id learned at signup finds the customer for a payment without email."""
    ws = tenant.workspace.id
    signup(ws, "pcid@example.com", referral_code="ANN", provider="stripe", provider_customer_id="cus_S1",
           when=at(1))
    pay(ws, "ch_p1", provider="stripe", provider_customer_id="cus_S1", when=at(2), source="stripe")
    project()
    assert PaymentAttribution.objects.get(payment_ref="ch_p1").agent_id == ann.agent_id
    assert PaymentRecord.objects.get(payment_ref="ch_p1").matched_by == "provider_customer"


def test_a_payment_matches_a_normalised_email(tenant, ann, project):
    """Emails match trimmed and lower-cased; plus-addressing is kept as given."""
    ws = tenant.workspace.id
    signup(ws, "Jane+saas@Example.com", referral_code="ANN", when=at(1))
    pay(ws, "ch_e1", email="  JANE+SAAS@example.COM ", when=at(2))
    pay(ws, "ch_e2", email="jane@example.com", when=at(3))
    project()
    assert PaymentAttribution.objects.get(payment_ref="ch_e1").agent_id == ann.agent_id
    assert not PaymentAttribution.objects.filter(payment_ref="ch_e2").exists()


def test_a_metadata_code_attributes_a_payment_only_customer(tenant, ann, project):
    """With no signup, a referral code in the payment metadata attributes the new customer."""
    ws = tenant.workspace.id
    pay(ws, "ch_meta", email="meta@example.com", referral_code="ann", when=at(5), source="stripe")
    project()
    customer = _customer("meta@example.com")
    assert (customer.agent_id, customer.attributed_via, customer.status) == (
        ann.agent_id, Customer.Via.PAYMENT_METADATA, Customer.Status.CUSTOMER)
    assert PaymentAttribution.objects.get(payment_ref="ch_meta").sequence == 1


def test_the_payment_only_window_runs_to_the_first_payment(tenant, ann, project):
    """With a click but no signup, the window is measured from the first click to the first payment."""
    ws = tenant.workspace.id
    click(ws, "ANN", "clk_payonly00000", when=at(0))
    pay(ws, "ch_late", email="po@example.com", referral_code="ANN", click_id="clk_payonly00000", when=at(45))
    project()
    customer = _customer("po@example.com")
    assert customer.agent_id == ""
    assert customer.unattributed_reason == Customer.Unattributed.WINDOW_EXPIRED


@pytest.mark.smoke
def test_a_payment_before_its_signup_is_attributed_when_the_signup_arrives(tenant, ann, project):
    """A parked payment is attributed by the late signup: decided at the signup's position."""
    ws = tenant.workspace.id
    pay(ws, "ch_early2", email="early@example.com", when=at(3))
    pay(ws, "ch_early1", email="early@example.com", when=at(2))
    project()
    assert PaymentRecord.objects.filter(attributed=False).count() == 2
    assert not PaymentAttribution.objects.exists()
    created = signup(ws, "early@example.com", referral_code="ANN", when=at(1))
    project()
    rows = list(PaymentAttribution.objects.order_by("sequence").values_list(
        "payment_ref", "sequence", "decided_position", "first_payment_at"))
    assert rows == [("ch_early1", 1, created.position, at(2)), ("ch_early2", 2, created.position, at(2))]
    assert PaymentRecord.objects.filter(attributed=False).exists() is False
    assert _customer("early@example.com").status == Customer.Status.CUSTOMER


def test_one_payment_reported_twice_is_attributed_once(tenant, ann, project):
    """The same payment_ref from a webhook and the API yields one ledger row."""
    ws = tenant.workspace.id
    signup(ws, "dup@example.com", referral_code="ANN", when=at(1))
    pay(ws, "ch_dup", email="dup@example.com", when=at(2), source="stripe")
    pay(ws, "ch_dup", email="dup@example.com", when=at(2), source="api")
    project()
    assert PaymentAttribution.objects.filter(payment_ref="ch_dup").count() == 1
    assert PaymentRecord.objects.get(payment_ref="ch_dup").duplicates == 1
    assert _customer("dup@example.com").payments_count == 1


def test_an_own_id_report_redelivered_after_its_natural_key_twin_decides_once(tenant, project):
    """A CSV row (natural key) first, then the provider's report twice, with a code no enrollment
    has: one refusal, as when the provider's reports come first; the redelivery is a duplicate."""
    ws = tenant.workspace.id
    twin = payment_natural_key(email="pat@example.com", paid_at=at(2), amount=9900, currency="USD")
    pay(ws, twin, email="pat@example.com", when=at(2), source="csv")
    for _ in range(2):
        pay(ws, "pi_pat", email="pat@example.com", referral_code="NOPE", when=at(2), source="stripe")
    project()
    assert list(AttributionRefusal.objects.values_list("kind", "referral_code")) == [
        (AttributionRefusal.Kind.UNKNOWN_CODE, "NOPE")]
    record = PaymentRecord.objects.get()
    assert (record.payment_ref, record.alias_ref, record.duplicates) == (twin, "pi_pat", 2)


def test_a_cancellation_marks_the_customer_and_its_later_payments(tenant, ann, project):
    """After subscription.cancelled the customer is cancelled; later payments say so."""
    ws = tenant.workspace.id
    signup(ws, "bye@example.com", referral_code="ANN", when=at(1))
    pay(ws, "ch_b1", email="bye@example.com", subscription_ref="sub_1", when=at(2))
    emit(ws, "subscription.cancelled", {"subscription_ref": "sub_1"}, when=at(20))
    pay(ws, "ch_b2", email="bye@example.com", when=at(32))
    project()
    assert _customer("bye@example.com").status == Customer.Status.CANCELLED
    flags = dict(PaymentAttribution.objects.values_list("payment_ref", "customer_cancelled"))
    assert flags == {"ch_b1": False, "ch_b2": True}


def test_payments_after_the_enrollment_is_removed_are_marked_inactive(tenant, ann, project):
    """A removed agent keeps its customer, but later payments carry enrollment_active=False."""
    ws = tenant.workspace.id
    signup(ws, "kept@example.com", referral_code="ANN", when=at(1))
    pay(ws, "ch_k1", email="kept@example.com", when=at(2))
    project()
    enrollment_remove(enrollment=ann, reason="fraud", actor="test")
    pay(ws, "ch_k2", email="kept@example.com", when=at(32))
    project()
    active = dict(PaymentAttribution.objects.values_list("payment_ref", "enrollment_active"))
    assert active == {"ch_k1": True, "ch_k2": False}


def test_a_reassignment_moves_only_later_payments(tenant, ann, bob, project):
    """attribution.reassigned moves the customer; payments before it stay with the first agent."""
    ws = tenant.workspace.id
    signup(ws, "move@example.com", referral_code="ANN", when=at(1))
    pay(ws, "ch_v1", email="move@example.com", when=at(2))
    project()
    customer = _customer("move@example.com")
    moved = emit(ws, "attribution.reassigned", {"customer_id": customer.id, "agent_id": bob.agent_id,
                                                "reason": "duplicate account"},
                 source="operator", when=at(10), actor="user:admin")
    pay(ws, "ch_v2", email="move@example.com", when=at(32))
    project()
    agents = dict(PaymentAttribution.objects.values_list("payment_ref", "agent_id"))
    assert agents == {"ch_v1": ann.agent_id, "ch_v2": bob.agent_id}
    customer.refresh_from_db()
    assert (customer.attributed_via, customer.attributed_event_id) == (Customer.Via.REASSIGNMENT, moved.event_id)
    assert PaymentAttribution.objects.get(payment_ref="ch_v2").sequence == 2


def test_a_reassignment_to_an_agent_without_enrollment_is_refused(tenant, ann, project):
    """An agent with no approved enrollment cannot receive a customer; the refusal is recorded."""
    ws = tenant.workspace.id
    signup(ws, "stay@example.com", referral_code="ANN", when=at(1))
    emit(ws, "attribution.reassigned", {"email": "stay@example.com", "agent_id": "agt_nobody", "reason": "x"},
         source="operator", when=at(2))
    project()
    assert _customer("stay@example.com").agent_id == ann.agent_id
    assert AttributionRefusal.objects.get().kind == "reassignment_refused"


def test_a_support_assignment_is_carried_on_later_payments(tenant, ann, bob, project):
    """support.assigned puts the support agent, enrollment and terms on the customer's payments."""
    ws = tenant.workspace.id
    signup(ws, "help@example.com", referral_code="ANN", when=at(1))
    pay(ws, "ch_s1", email="help@example.com", when=at(2))
    assigned = emit(ws, "support.assigned", {"email": "help@example.com", "agent_id": bob.agent_id}, when=at(3))
    pay(ws, "ch_s2", email="help@example.com", when=at(32))
    emit(ws, "support.unassigned", {"email": "help@example.com", "agent_id": bob.agent_id}, when=at(40))
    pay(ws, "ch_s3", email="help@example.com", when=at(62))
    project()
    rows = {r.payment_ref: r for r in PaymentAttribution.objects.all()}
    assert rows["ch_s1"].support_agent_id == ""
    assert (rows["ch_s2"].support_agent_id, rows["ch_s2"].support_enrollment_id) == (bob.agent_id, bob.id)
    assert rows["ch_s2"].support_event_id == assigned.event_id
    assert rows["ch_s2"].support_terms == bob.terms
    assert rows["ch_s3"].support_agent_id == ""


def test_unattributed_payments_are_tracked(tenant, ann, project):
    """A payment of an unreferred customer is recorded as unattributed, without a ledger row."""
    ws = tenant.workspace.id
    signup(ws, "plain@example.com", when=at(1))
    pay(ws, "ch_u1", email="plain@example.com", when=at(2))
    pay(ws, "ch_u2", amount=500, when=at(2))  # no identifier at all
    project()
    assert set(PaymentRecord.objects.filter(attributed=False).values_list("payment_ref", flat=True)) == {
        "ch_u1", "ch_u2"}
    assert not PaymentAttribution.objects.exists()
    assert _customer("plain@example.com").unattributed_reason == Customer.Unattributed.NO_REFERRAL


def test_an_unusable_payment_event_is_recorded_not_fatal(tenant, ann, project):
    """A payment without an integer amount is refused visibly, and the projection moves on."""
    ws = tenant.workspace.id
    emit(ws, "payment.succeeded", {"payment_ref": "bad", "amount": "12.00", "currency": "USD"}, when=at(1))
    signup(ws, "next@example.com", referral_code="ANN", when=at(2))
    project()
    assert AttributionRefusal.objects.get().kind == "invalid_event"
    assert _customer("next@example.com").agent_id == ann.agent_id


def test_rebuilding_reproduces_the_same_state(tenant, ann, bob, project):
    """A rebuild from the store alone gives the same customers and ledger rows."""
    ws = tenant.workspace.id
    click(ws, "BOB", "clk_rebuild00000", when=at(0))
    signup(ws, "r1@example.com", click_id="clk_rebuild00000", when=at(1))
    pay(ws, "ch_x1", email="r2@example.com", when=at(2))
    signup(ws, "r2@example.com", referral_code="ANN", when=at(3))
    pay(ws, "ch_x2", email="r1@example.com", when=at(4))
    project()
    before = (list(Customer.objects.order_by("id").values()), list(PaymentAttribution.objects.order_by(
        "payment_ref").values(*[f.name for f in PaymentAttribution._meta.fields if f.name != "id"])))
    rebuild_attribution()
    after = (list(Customer.objects.order_by("id").values()), list(PaymentAttribution.objects.order_by(
        "payment_ref").values(*[f.name for f in PaymentAttribution._meta.fields if f.name != "id"])))
    assert before == after


def test_code_state_comes_from_enrollment_events(tenant, ann, project):
    """The projector's code table carries the event's terms snapshot and agent email."""
    project()
    row = ReferralCode.objects.get(code="ANN")
    assert (row.enrollment_id, row.agent_id, row.agent_email) == (ann.id, ann.agent_id, "ann@partners.test")
    assert row.terms == ann.terms
    assert row.status == ReferralCode.Status.APPROVED


# --- matching order, first touch and bad input (issue #3) ---------------------------------------


def test_the_business_customer_id_wins_over_a_provider_customer_id(tenant, ann, bob, project):
    """Step one before step two: customer_ref names Ann's customer though the provider id is Bob's."""
    ws = tenant.workspace.id
    signup(ws, "a@example.com", customer_ref="u-1", referral_code="ANN", when=at(1))
    signup(ws, "b@example.com", customer_ref="u-2", referral_code="BOB", provider="stripe",
           provider_customer_id="cus_B", when=at(1))
    pay(ws, "ch_o1", customer_ref="u-1", provider="stripe", provider_customer_id="cus_B", when=at(2),
        source="stripe")
    project()
    assert PaymentAttribution.objects.get(payment_ref="ch_o1").agent_id == ann.agent_id
    assert PaymentRecord.objects.get(payment_ref="ch_o1").matched_by == "customer_ref"


def test_a_provider_customer_id_wins_over_the_email(tenant, ann, bob, project):
    """Step two before step four: the learned provider id names Ann's customer though the email is Bob's."""
    ws = tenant.workspace.id
    signup(ws, "a@example.com", referral_code="ANN", provider="paystack", provider_customer_id="CUS_a",
           when=at(1))
    signup(ws, "b@example.com", referral_code="BOB", when=at(1))
    pay(ws, "ch_o2", provider="paystack", provider_customer_id="CUS_a", email="b@example.com", when=at(2),
        source="paystack")
    project()
    assert PaymentAttribution.objects.get(payment_ref="ch_o2").agent_id == ann.agent_id
    assert PaymentRecord.objects.get(payment_ref="ch_o2").matched_by == "provider_customer"


def test_a_provider_customer_id_is_learned_from_a_payment_for_the_next_one(tenant, ann, project):
    """The first payment (matched by email) teaches the provider id; the renewal without email finds it."""
    ws = tenant.workspace.id
    signup(ws, "learn@example.com", referral_code="ANN", when=at(1))
    pay(ws, "ch_l1", email="learn@example.com", provider="stripe", provider_customer_id="cus_L", when=at(2),
        source="stripe")
    pay(ws, "ch_l2", provider="stripe", provider_customer_id="cus_L", when=at(32), source="stripe")
    project()
    assert PaymentRecord.objects.get(payment_ref="ch_l2").matched_by == "provider_customer"
    assert PaymentAttribution.objects.get(payment_ref="ch_l2").sequence == 2


def test_a_metadata_code_attributes_an_unreferred_lead_found_by_email(tenant, ann, project):
    """Step three before step four: a signup without a code, then a first payment whose metadata names Ann."""
    ws = tenant.workspace.id
    signup(ws, "plainlead@example.com", when=at(1))
    paid = pay(ws, "ch_md1", email="plainlead@example.com", referral_code="ANN", when=at(2), source="stripe")
    project()
    customer = _customer("plainlead@example.com")
    assert (customer.agent_id, customer.attributed_via) == (ann.agent_id, Customer.Via.PAYMENT_METADATA)
    assert customer.attributed_event_id == paid.event_id
    assert PaymentAttribution.objects.get(payment_ref="ch_md1").sequence == 1


def test_a_metadata_code_does_not_move_an_attributed_customer(tenant, ann, bob, project):
    """First touch wins: a later payment carrying Bob's code leaves Ann's customer and payment with Ann."""
    ws = tenant.workspace.id
    signup(ws, "loyal@example.com", referral_code="ANN", when=at(1))
    pay(ws, "ch_md2", email="loyal@example.com", referral_code="BOB", when=at(2), source="stripe")
    project()
    assert _customer("loyal@example.com").agent_id == ann.agent_id
    assert PaymentAttribution.objects.get(payment_ref="ch_md2").agent_id == ann.agent_id


def test_a_later_click_does_not_move_an_attributed_customer(tenant, ann, bob, project):
    """First touch wins: a fresh click on Bob's link and a second signup through it change nothing."""
    ws = tenant.workspace.id
    signup(ws, "stays@example.com", referral_code="ANN", when=at(1))
    click(ws, "BOB", "clk_laterbob0000", when=at(3))
    signup(ws, "stays@example.com", click_id="clk_laterbob0000", when=at(4))
    project()
    customer = _customer("stays@example.com")
    assert (customer.agent_id, customer.attributed_via) == (ann.agent_id, Customer.Via.CODE)


def test_a_hand_typed_code_keeps_the_why(tenant, ann, project):
    """A typed code records the signup as the event behind the attribution, and no click."""
    ws = tenant.workspace.id
    created = signup(ws, "whytyped@example.com", referral_code="Ann", when=at(1))
    project()
    customer = _customer("whytyped@example.com")
    assert (customer.signup_event_id, customer.attributed_event_id) == (created.event_id, created.event_id)
    assert (customer.click_id, customer.click_event_id) == ("", "")
    assert customer.attribution_detail == f"code ANN given at signup → agent {ann.agent_id}"


def test_self_referral_through_payment_metadata_is_refused_and_recorded(tenant, ann, project):
    """The payment-only path refuses the agent's own email too."""
    ws = tenant.workspace.id
    pay(ws, "ch_self", email="ANN@partners.test", referral_code="ANN", when=at(2), source="stripe")
    project()
    customer = _customer("ann@partners.test")
    assert (customer.agent_id, customer.unattributed_reason) == ("", Customer.Unattributed.SELF_REFERRAL)
    assert not PaymentAttribution.objects.exists()
    assert AttributionRefusal.objects.get(kind="self_referral").event_id == Event.objects.get(
        type="payment.succeeded").event_id


@pytest.mark.parametrize("code", ["SUMMER-24", "X" * 48])
def test_a_code_that_cannot_be_ours_is_still_recorded_as_unknown(tenant, ann, project, code):
    """A code no enrollment could have (a dash, too long) is an unknown code, not silently no referral."""
    ws = tenant.workspace.id
    signup(ws, "odd@example.com", referral_code=code, when=at(1))
    project()
    customer = _customer("odd@example.com")
    assert customer.unattributed_reason == Customer.Unattributed.UNKNOWN_CODE
    assert AttributionRefusal.objects.get(customer_id=customer.id).referral_code == code


def test_an_unknown_referral_code_through_the_api_keeps_the_signup(tenant, ann, api, project):
    """POST customer-created with an unknown referralCode answers 200; the customer is kept, unattributed."""
    response = api.post("/api/events/customer-created", {
        "businessId": tenant.workspace.id, "productId": tenant.product.id, "customerId": "user_9",
        "email": "unknown@example.com", "name": "Una", "referralCode": "NOSUCHCODE"}, format="json")
    assert response.status_code == 200, response.content
    project()
    customer = _customer("unknown@example.com")
    assert (customer.agent_id, customer.status, customer.customer_ref) == ("", Customer.Status.LEAD, "user_9")
    assert customer.unattributed_reason == Customer.Unattributed.UNKNOWN_CODE
    assert "NOSUCHCODE" in customer.attribution_detail
    assert customer.signup_event_id == response.json()["eventId"]


def test_a_cancellation_by_customer_id_cancels_the_customer(tenant, ann, project):
    """subscription.cancelled naming the business's customer id (no subscription) finds the customer."""
    ws = tenant.workspace.id
    signup(ws, "cref@example.com", customer_ref="u-77", referral_code="ANN", when=at(1))
    pay(ws, "ch_c1", customer_ref="u-77", when=at(2))
    cancelled = emit(ws, "subscription.cancelled", {"customer_ref": "u-77"}, when=at(20))
    project()
    customer = _customer("cref@example.com")
    assert (customer.status, customer.cancelled_at, customer.cancelled_event_id) == (
        Customer.Status.CANCELLED, at(20), cancelled.event_id)


def test_a_lead_stays_a_lead_until_it_pays(tenant, ann, project):
    """A signup alone is a lead; a cancellation of an unknown subscription changes nothing."""
    ws = tenant.workspace.id
    signup(ws, "waiting@example.com", referral_code="ANN", when=at(1))
    emit(ws, "subscription.cancelled", {"subscription_ref": "sub_unknown"}, when=at(2))
    project()
    assert _customer("waiting@example.com").status == Customer.Status.LEAD
