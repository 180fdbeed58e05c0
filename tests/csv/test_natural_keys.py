"""The natural key of a payment, shared by the CSV import and the API (one payment, one payment_ref)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from rest_framework.test import APIClient

from ingestion.csv_import import ImportResult
from ingestion.models import Event
from ingestion.natural_keys import payment_natural_key
from ingestion.workspaces import CreatedWorkspace

from .conftest import make_csv, row


def test_the_natural_key_format_is_email_date_minor_amount_currency() -> None:
    """The key is nk:<normalised email>|<UTC date>|<minor units>|<ISO code>."""
    key = payment_natural_key(email=" Ada@Example.COM ", paid_at=date(2024, 5, 3), amount=4900, currency="usd")
    assert key == "nk:ada@example.com|2024-05-03|4900|USD"


def test_the_natural_key_takes_the_utc_date_of_a_payment_time() -> None:
    """23:30 at UTC-2 on 1 May is 2 May in UTC, the date the key uses."""
    paid_at = datetime(2024, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    key = payment_natural_key(email="a@b.co", paid_at=paid_at, amount=1, currency="USD")
    assert key == "nk:a@b.co|2024-05-02|1|USD"


def test_the_natural_key_refuses_a_naive_time_and_a_non_integer_amount() -> None:
    """A naive datetime has no UTC date and a float is not minor units: both are refused."""
    with pytest.raises(ValueError, match="timezone-aware"):
        payment_natural_key(email="a@b.co", paid_at=datetime(2024, 5, 1), amount=1, currency="USD")  # noqa: DTZ001
    with pytest.raises(TypeError):
        payment_natural_key(email="a@b.co", paid_at=date(2024, 5, 1), amount=49.0, currency="USD")  # type: ignore[arg-type]


def test_a_very_long_email_gives_a_bounded_stable_key() -> None:
    """An email too long for the column is hashed: the same inputs still give the same key."""
    email = "x" * 240 + "@example.com"
    key = payment_natural_key(email=email, paid_at=date(2024, 5, 3), amount=1, currency="USD")
    assert key.startswith("nk:sha256:")
    assert len(key) <= 200
    assert key == payment_natural_key(email=email.upper(), paid_at=date(2024, 5, 3), amount=1, currency="USD")


@pytest.mark.django_db
@pytest.mark.smoke
def test_a_payment_sent_through_the_api_and_a_csv_row_share_one_payment_ref(
        api: APIClient, tenant: CreatedWorkspace, run: Callable[..., ImportResult]) -> None:
    """The API's payment without paymentId and the CSV row of the same payment get the same payment_ref."""
    response = api.post("/api/events/payment-succeeded", {
        "businessId": tenant.workspace.id, "productId": tenant.product.id, "email": "ada@example.com",
        "amount": "49.00", "currency": "USD", "occurredAt": "2024-05-03T15:20:00Z",
    }, format="json")
    assert response.status_code == 200, response.content
    run(make_csv([row(amount="49", code="")]))
    refs = {e.source: e.data["payment_ref"] for e in Event.objects.filter(type="payment.succeeded")}
    assert refs == {"api": "nk:ada@example.com|2024-05-03|4900|USD", "csv": "nk:ada@example.com|2024-05-03|4900|USD"}


@pytest.mark.django_db
def test_a_payment_reported_by_the_api_and_by_csv_earns_once(
        api: APIClient, tenant: CreatedWorkspace, run: Callable[..., ImportResult],
        project: Callable[[], dict[str, int]]) -> None:
    """The same referred payment, through the API and a CSV row, is attributed and commissioned once."""
    from attribution.models import PaymentAttribution
    from commissions.models import LedgerEntry

    run(make_csv([row(amount="49.00", code="ANNA")]))
    response = api.post("/api/events/payment-succeeded", {
        "businessId": tenant.workspace.id, "productId": tenant.product.id, "email": "ada@example.com",
        "amount": "49.00", "currency": "USD", "occurredAt": "2024-05-03T09:00:00Z",
    }, format="json")
    assert response.status_code == 200, response.content
    project()
    assert Event.objects.filter(type="payment.succeeded").count() == 2
    attribution = PaymentAttribution.objects.get(workspace=tenant.workspace)
    assert attribution.payment_ref == "nk:ada@example.com|2024-05-03|4900|USD"
    assert attribution.occurred_at == datetime(2024, 5, 3, tzinfo=UTC)
    entry = LedgerEntry.objects.get(workspace=tenant.workspace)
    assert (entry.kind, entry.amount, entry.currency) == ("referral", 980, "USD")


def _webhook_payment(workspace_id: str, *, ref: str = "pi_3PQ1x2", amount: int = 4900,
                     at: datetime = datetime(2024, 5, 3, 15, 20, tzinfo=UTC)) -> None:
    """The canonical event the Stripe receiver appends for a paid invoice (its own payment id, an email)."""
    from ingestion.store import NewEvent, event_append

    event_append(NewEvent(workspace_id=workspace_id, source="stripe", source_event_id=f"evt_stripe_{ref}",
                          type="payment.succeeded", occurred_at=at,
                          data={"payment_ref": ref, "email": "ada@example.com", "amount": amount,
                                "currency": "USD", "provider": "stripe"}))


@pytest.mark.django_db
def test_a_row_of_a_payment_a_webhook_already_reported_is_not_appended_and_earns_once(
        tenant: CreatedWorkspace, run: Callable[..., ImportResult], project: Callable[[], dict[str, int]]) -> None:
    """Stripe reported pi_… first; the CSV row of that payment adds the referred customer, not a payment."""
    from commissions.models import LedgerEntry

    _webhook_payment(tenant.workspace.id)
    result = run(make_csv([row(amount="49.00", code="ANNA")]))
    assert (result.events_appended, result.events_duplicate) == (1, 1)
    assert result.appended_by_type == {"customer.created": 1}
    project()
    entries = list(LedgerEntry.objects.filter(workspace=tenant.workspace))
    assert [(e.kind, e.amount, e.payment_ref) for e in entries] == [("referral", 980, "pi_3PQ1x2")]


@pytest.mark.django_db
def test_a_payment_the_api_reported_with_its_payment_id_is_not_imported_again(
        api: APIClient, tenant: CreatedWorkspace, run: Callable[..., ImportResult]) -> None:
    """An API payment with paymentId and the CSV row of the same payment: the row appends no payment."""
    response = api.post("/api/events/payment-succeeded", {
        "businessId": tenant.workspace.id, "productId": tenant.product.id, "email": "Ada@Example.com",
        "paymentId": "order-1001", "amount": "49.00", "currency": "USD", "occurredAt": "2024-05-03T23:59:00Z",
    }, format="json")
    assert response.status_code == 200, response.content
    plan: list[dict] = []
    result = run(make_csv([row(amount="49", code="")]), dry_run=True, plan=plan.append)
    assert result.appended_by_type == {"customer.created": 1}
    payment = plan[0]["events"][1]
    assert (payment["outcome"], payment["reportedAs"]) == ("duplicate", "api order-1001")


@pytest.mark.django_db
@pytest.mark.parametrize(("amount", "at"), [
    (4800, datetime(2024, 5, 3, 15, 20, tzinfo=UTC)),
    (4900, datetime(2024, 5, 2, 23, 59, tzinfo=UTC)),
])
def test_a_webhook_payment_of_another_amount_or_day_is_a_different_payment(
        tenant: CreatedWorkspace, run: Callable[..., ImportResult], amount: int, at: datetime) -> None:
    """Only the same email, UTC day, amount and currency make a twin; anything else is imported."""
    _webhook_payment(tenant.workspace.id, amount=amount, at=at)
    result = run(make_csv([row(amount="49.00", code="")]))
    assert result.appended_by_type == {"customer.created": 1, "payment.succeeded": 1}


def _ledger(workspace_id: str) -> list[tuple]:
    """The ledger rows that must survive a rebuild unchanged."""
    from commissions.models import LedgerEntry

    return sorted(LedgerEntry.objects.filter(workspace_id=workspace_id).values_list(
        "id", "kind", "amount", "payment_ref", "base_id", "created_position", "effective_at"))


@pytest.mark.django_db
def test_a_csv_row_then_the_api_payment_with_its_payment_id_earns_once_and_its_refund_reverses_it(
        api: APIClient, tenant: CreatedWorkspace, run: Callable[..., ImportResult],
        project: Callable[[], dict[str, int]]) -> None:
    """CSV first, then the API with paymentId: one payment, one commission; a refund of the id reverses it.

    The reverse of the order the importer detects itself: both events are in the store, and the
    projections recognise the API's report as the row's payment by its natural key (an alias).
    """
    from attribution.models import PaymentAttribution, PaymentRecord
    from commissions.models import LedgerEntry
    from ingestion import projections

    ws = tenant.workspace.id
    run(make_csv([row(amount="49.00", code="ANNA")]))
    response = api.post("/api/events/payment-succeeded", {
        "businessId": ws, "productId": tenant.product.id, "email": "Ada@Example.com", "paymentId": "order-1001",
        "amount": "49.00", "currency": "USD", "occurredAt": "2024-05-03T15:20:00Z",
    }, format="json")
    assert response.status_code == 200, response.content
    project()
    natural = "nk:ada@example.com|2024-05-03|4900|USD"
    assert Event.objects.filter(workspace_id=ws, type="payment.succeeded").count() == 2
    assert list(PaymentAttribution.objects.filter(workspace_id=ws).values_list("payment_ref", flat=True)) == [natural]
    record = PaymentRecord.objects.get(workspace_id=ws)
    assert (record.payment_ref, record.alias_ref, record.duplicates) == (natural, "order-1001", 1)
    entry = LedgerEntry.objects.get(workspace_id=ws)
    assert (entry.kind, entry.amount, entry.payment_ref) == ("referral", 980, natural)

    response = api.post("/api/events/payment-refunded", {
        "businessId": ws, "productId": tenant.product.id, "paymentId": "order-1001", "refundId": "re_1",
        "amount": "49.00", "currency": "USD", "occurredAt": "2024-05-05T10:00:00Z",
    }, format="json")
    assert response.status_code == 200, response.content
    project()
    reversal = LedgerEntry.objects.get(workspace_id=ws, kind="reversal")
    assert (reversal.amount, reversal.base_id, reversal.payment_ref) == (-980, entry.id, natural)

    before = _ledger(ws)
    projections.rebuild()
    assert _ledger(ws) == before


@pytest.mark.django_db
def test_a_csv_row_then_the_webhook_of_the_same_payment_earns_once(
        tenant: CreatedWorkspace, run: Callable[..., ImportResult], project: Callable[[], dict[str, int]]) -> None:
    """A CSV row, then Stripe's pi_… for the same email, UTC day, amount and currency: one commission."""
    from commissions.models import LedgerEntry

    run(make_csv([row(amount="49.00", code="ANNA")]))
    _webhook_payment(tenant.workspace.id)
    project()
    entries = list(LedgerEntry.objects.filter(workspace=tenant.workspace))
    assert [(e.kind, e.amount, e.payment_ref) for e in entries] == [
        ("referral", 980, "nk:ada@example.com|2024-05-03|4900|USD")]


@pytest.mark.django_db
def test_a_second_charge_with_the_same_natural_key_is_another_payment(
        tenant: CreatedWorkspace, run: Callable[..., ImportResult], project: Callable[[], dict[str, int]]) -> None:
    """A row absorbs one report with its own id; a second charge (another id) is a payment of its own."""
    from attribution.models import PaymentRecord

    run(make_csv([row(amount="49.00", code="ANNA")]))
    _webhook_payment(tenant.workspace.id, ref="pi_first")
    _webhook_payment(tenant.workspace.id, ref="pi_second")
    _webhook_payment(tenant.workspace.id, ref="pi_first")  # a replay under another event id: the same alias
    project()
    records = {r.payment_ref: (r.alias_ref, r.duplicates)
               for r in PaymentRecord.objects.filter(workspace=tenant.workspace)}
    assert records == {"nk:ada@example.com|2024-05-03|4900|USD": ("pi_first", 1), "pi_second": ("", 0)}


def _early(workspace_id: str, kind: str, data: dict, day: int = 4) -> None:
    """A Stripe refund or dispute naming ``pi_3PQ1x2``, stored before any report of that payment."""
    from ingestion.store import NewEvent, event_append

    event_append(NewEvent(workspace_id=workspace_id, source="stripe", source_event_id=f"evt_early_{kind}",
                          type=kind, occurred_at=datetime(2024, 5, day, tzinfo=UTC),
                          data={"payment_ref": "pi_3PQ1x2", "currency": "USD", **data}))


@pytest.mark.django_db
def test_a_refund_of_the_id_stored_before_the_alias_is_adopted_when_the_alias_appears(
        tenant: CreatedWorkspace, run: Callable[..., ImportResult], project: Callable[[], dict[str, int]]) -> None:
    """CSV row, then a refund naming pi_…, then the webhook of pi_…: the refund reverses the row's commission.

    The refund is parked under the id until attribution finds that pi_… is the row's payment; at
    that event the payment adopts it, and a rebuild decides the same.
    """
    from commissions.models import LedgerEntry, LedgerTrail
    from ingestion import projections

    ws = tenant.workspace.id
    run(make_csv([row(amount="49.00", code="ANNA")]))
    project()
    _early(ws, "payment.refunded", {"refund_ref": "re_early", "amount": 2450})
    project()
    assert sorted(LedgerEntry.objects.filter(workspace_id=ws).values_list("kind", flat=True)) == ["referral"]
    _webhook_payment(ws)
    project()
    natural = "nk:ada@example.com|2024-05-03|4900|USD"
    entries = {e.kind: e for e in LedgerEntry.objects.filter(workspace_id=ws)}
    assert sorted(entries) == ["referral", "reversal"]
    assert (entries["reversal"].amount, entries["reversal"].payment_ref) == (-490, natural)
    assert entries["reversal"].cause == "refund"
    assert LedgerTrail.objects.filter(workspace_id=ws, payment_ref=natural,
                                      effect__startswith="pi_3PQ1x2 is this payment").exists()

    before = _ledger(ws)
    projections.rebuild()
    assert _ledger(ws) == before


@pytest.mark.django_db
def test_a_refund_parked_under_the_id_counts_once_when_it_is_reported_again_after_the_alias(
        tenant: CreatedWorkspace, run: Callable[..., ImportResult], project: Callable[[], dict[str, int]]) -> None:
    """The adopted refund keeps its refund_ref: the provider's redelivery under a new event id reverses nothing more."""
    from commissions.models import LedgerEntry
    from ingestion.store import NewEvent, event_append

    ws = tenant.workspace.id
    run(make_csv([row(amount="49.00", code="ANNA")]))
    _early(ws, "payment.refunded", {"refund_ref": "re_early", "amount": 4900})
    _webhook_payment(ws)
    event_append(NewEvent(workspace_id=ws, source="stripe", source_event_id="evt_refund_again",
                          type="payment.refunded", occurred_at=datetime(2024, 5, 6, tzinfo=UTC),
                          data={"payment_ref": "pi_3PQ1x2", "refund_ref": "re_early", "amount": 4900,
                                "currency": "USD"}))
    project()
    amounts = sorted(LedgerEntry.objects.filter(workspace_id=ws).values_list("amount", flat=True))
    assert amounts == [-980, 980]


@pytest.mark.django_db
def test_a_dispute_lost_under_the_id_before_the_alias_reverses_the_row_s_commission_in_full(
        tenant: CreatedWorkspace, run: Callable[..., ImportResult], project: Callable[[], dict[str, int]]) -> None:
    """A chargeback lost before the payment's own report is adopted like a refund: a full reversal."""
    from commissions.models import LedgerEntry
    from ingestion import projections

    ws = tenant.workspace.id
    run(make_csv([row(amount="49.00", code="ANNA")]))
    _early(ws, "payment.disputed", {"dispute_ref": "du_1", "amount": 4900, "outcome": "lost"})
    _webhook_payment(ws)
    project()
    reversal = LedgerEntry.objects.get(workspace_id=ws, kind="reversal")
    assert (reversal.amount, reversal.cause) == (-980, "dispute")
    before = _ledger(ws)
    projections.rebuild()
    assert _ledger(ws) == before


@pytest.mark.django_db
def test_a_dispute_opened_under_the_id_before_the_alias_puts_the_row_s_commission_on_hold(
        tenant: CreatedWorkspace, run: Callable[..., ImportResult], project: Callable[[], dict[str, int]]) -> None:
    """An open chargeback on pi_… stored before pi_…'s own report holds the commission once the alias exists."""
    from django.utils import timezone

    from commissions.selectors import entries_with_status

    ws = tenant.workspace.id
    run(make_csv([row(amount="49.00", code="ANNA")]))
    _early(ws, "payment.disputed", {"dispute_ref": "du_1", "amount": 4900})
    project()
    assert [e.ledger_status for e in entries_with_status(workspace_id=ws, as_of=timezone.now())] != ["on_hold"]
    _webhook_payment(ws)
    project()
    assert [e.ledger_status for e in entries_with_status(workspace_id=ws, as_of=timezone.now())] == ["on_hold"]


@pytest.mark.django_db
def test_the_what_if_replay_follows_an_alias_as_the_ledger_does(
        api: APIClient, tenant: CreatedWorkspace, run: Callable[..., ImportResult],
        project: Callable[[], dict[str, int]]) -> None:
    """simulate_terms with the program's own terms reproduces the real ledger, refund by alias included:
    a refund on the API's id reverses the CSV row's commission in the scratch ledger too."""
    from agents.models import Enrollment
    from commissions.whatif import simulate_terms

    ws = tenant.workspace.id
    run(make_csv([row(amount="49.00", code="ANNA")]))
    for kind, body in (("payment-succeeded", {"email": "ada@example.com", "paymentId": "order-7", "amount": "49.00",
                                              "occurredAt": "2024-05-03T15:20:00Z"}),
                       ("payment-refunded", {"paymentId": "order-7", "refundId": "re_7", "amount": "49.00",
                                             "occurredAt": "2024-05-05T10:00:00Z"})):
        response = api.post(f"/api/events/{kind}", {"businessId": ws, "productId": tenant.product.id,
                                                    "currency": "USD", **body}, format="json")
        assert response.status_code == 200, response.content
    project()
    program = Enrollment.objects.get(referral_code="ANNA").program

    rows = simulate_terms(program=program, patch={})

    assert [(r.current, r.simulated) for r in rows] == [(0, 0)]



@pytest.mark.django_db
def test_a_webhook_then_the_api_without_payment_id_for_the_same_payment_earns_once(
        api: APIClient, tenant: CreatedWorkspace, run: Callable[..., ImportResult],
        project: Callable[[], dict[str, int]]) -> None:
    """Stripe's pi_… first, then the SaaS backend's report of it without paymentId: one payment, one commission.

    The natural-key report becomes the pi_… payment's alias, so a refund naming either reaches it.
    """
    from attribution.models import PaymentRecord
    from commissions.models import LedgerEntry
    from ingestion import projections

    ws = tenant.workspace.id
    run(make_csv([row(amount="0", code="ANNA")]))
    _webhook_payment(ws)
    response = api.post("/api/events/payment-succeeded", {
        "businessId": ws, "productId": tenant.product.id, "email": "Ada@Example.com",
        "amount": "49.00", "currency": "USD", "occurredAt": "2024-05-03T09:00:00Z",
    }, format="json")
    assert response.status_code == 200, response.content
    project()
    natural = "nk:ada@example.com|2024-05-03|4900|USD"
    assert list(LedgerEntry.objects.filter(workspace_id=ws).values_list("kind", "amount", "payment_ref")) == [
        ("referral", 980, "pi_3PQ1x2")]
    record = PaymentRecord.objects.get(workspace_id=ws)
    assert (record.payment_ref, record.alias_ref, record.duplicates) == ("pi_3PQ1x2", natural, 1)

    before = _ledger(ws)
    projections.rebuild()
    assert _ledger(ws) == before


@pytest.mark.django_db
def test_a_csv_row_appended_after_the_webhook_of_its_payment_earns_nothing_more(
        tenant: CreatedWorkspace, run: Callable[..., ImportResult], project: Callable[[], dict[str, int]]) -> None:
    """Should a row of an already reported payment reach the store (the importer checks, but a webhook
    may land during the import), the projection still counts it as the same payment."""
    from commissions.models import LedgerEntry
    from ingestion.store import NewEvent, event_append

    ws = tenant.workspace.id
    run(make_csv([row(amount="0", code="ANNA")]))
    _webhook_payment(ws)
    natural = "nk:ada@example.com|2024-05-03|4900|USD"
    event_append(NewEvent(workspace_id=ws, source="csv", source_event_id=natural, type="payment.succeeded",
                          occurred_at=datetime(2024, 5, 3, tzinfo=UTC),
                          data={"payment_ref": natural, "email": "ada@example.com", "amount": 4900,
                                "currency": "USD"}))
    project()
    assert list(LedgerEntry.objects.filter(workspace_id=ws).values_list("kind", "amount")) == [("referral", 980)]


@pytest.mark.django_db
def test_a_natural_key_report_of_another_day_or_amount_is_another_payment(
        api: APIClient, tenant: CreatedWorkspace, run: Callable[..., ImportResult],
        project: Callable[[], dict[str, int]]) -> None:
    """Only the same email, UTC day, amount and currency pair the reports: a renewal a month later earns."""
    from commissions.models import LedgerEntry

    ws = tenant.workspace.id
    run(make_csv([row(amount="0", code="ANNA")]))
    _webhook_payment(ws)
    for occurred_at, amount in (("2024-06-03T09:00:00Z", "49.00"), ("2024-05-03T10:00:00Z", "19.00")):
        response = api.post("/api/events/payment-succeeded", {
            "businessId": ws, "productId": tenant.product.id, "email": "ada@example.com",
            "amount": amount, "currency": "USD", "occurredAt": occurred_at,
        }, format="json")
        assert response.status_code == 200, response.content
    project()
    kinds = sorted(LedgerEntry.objects.filter(workspace_id=ws).values_list("kind", "payment_ref"))
    assert kinds == [("recurring", "nk:ada@example.com|2024-05-03|1900|USD"),
                     ("recurring", "nk:ada@example.com|2024-06-03|4900|USD"), ("referral", "pi_3PQ1x2")]


@pytest.mark.django_db
@pytest.mark.parametrize("own_id_first", [True, False])
def test_an_own_id_report_without_the_email_is_not_paired_in_either_order(
        tenant: CreatedWorkspace, project: Callable[[], dict[str, int]], own_id_first: bool) -> None:
    """Reports are paired by the own-id event's email, not by the customer it matched (by business id
    here): without it, the two reports are two payments, whichever arrives first."""
    from attribution.models import PaymentRecord
    from ingestion.store import NewEvent, event_append

    ws = tenant.workspace.id
    at = datetime(2024, 5, 3, 15, 20, tzinfo=UTC)
    natural = "nk:ada@example.com|2024-05-03|4900|USD"
    signup = NewEvent(workspace_id=ws, source="api", source_event_id="signup-ada", type="customer.created",
                      occurred_at=datetime(2024, 5, 1, tzinfo=UTC),
                      data={"customer_ref": "u1", "email": "ada@example.com", "name": "Ada"})
    own = NewEvent(workspace_id=ws, source="api", source_event_id="pay-own", type="payment.succeeded",
                   occurred_at=at, data={"payment_ref": "order-1", "customer_ref": "u1", "amount": 4900,
                                         "currency": "USD"})
    csv_row = NewEvent(workspace_id=ws, source="csv", source_event_id=natural, type="payment.succeeded",
                       occurred_at=at, data={"payment_ref": natural, "email": "ada@example.com", "amount": 4900,
                                             "currency": "USD"})
    for new in (signup, *((own, csv_row) if own_id_first else (csv_row, own))):
        event_append(new)
    project()
    records = sorted(PaymentRecord.objects.filter(workspace_id=ws).values_list("payment_ref", "alias_ref"))
    assert records == [("nk:ada@example.com|2024-05-03|4900|USD", ""), ("order-1", "")]


@pytest.mark.django_db
def test_the_second_report_of_a_payment_may_carry_the_code_that_decides(
        tenant: CreatedWorkspace, run: Callable[..., ImportResult], project: Callable[[], dict[str, int]]) -> None:
    """A CSV row without an agent code, then Stripe's report of that payment with metadata.referral_code:
    the code decides, as it would have had Stripe's report come first; its redelivery decides nothing more."""
    from attribution.models import AttributionRefusal, Customer
    from commissions.models import LedgerEntry
    from ingestion.store import NewEvent, event_append

    ws = tenant.workspace.id
    run(make_csv([row(amount="49.00", code="")]))
    project()
    assert not LedgerEntry.objects.filter(workspace_id=ws).exists()
    for key in ("evt_stripe_coded", "evt_stripe_coded_again"):
        event_append(NewEvent(workspace_id=ws, source="stripe", source_event_id=key, type="payment.succeeded",
                              occurred_at=datetime(2024, 5, 3, 15, 20, tzinfo=UTC),
                              data={"payment_ref": "pi_coded", "email": "ada@example.com", "amount": 4900,
                                    "currency": "USD", "referral_code": "ANNA"}))
    project()
    assert list(LedgerEntry.objects.filter(workspace_id=ws).values_list("kind", "amount", "payment_ref")) == [
        ("referral", 980, "nk:ada@example.com|2024-05-03|4900|USD")]
    assert Customer.objects.get(workspace_id=ws).referral_code == "ANNA"
    assert not AttributionRefusal.objects.filter(workspace_id=ws).exists()
