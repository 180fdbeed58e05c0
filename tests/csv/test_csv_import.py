"""The CSV importer: columns, rows → canonical events, row errors, file errors, idempotency, limits."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from ingestion.csv_import import ImportFileError, ImportResult, _stored_keys, import_csv
from ingestion.models import Event
from ingestion.store import NewEvent, event_append
from ingestion.workspaces import CreatedWorkspace

from .conftest import HEADER, csv_events, make_csv, row

pytestmark = pytest.mark.django_db
Run = Callable[..., ImportResult]


# --- columns -----------------------------------------------------------------------------------

@pytest.mark.smoke
def test_header_is_matched_by_name_in_any_order_ignoring_case_and_spaces(run: Run, tenant: CreatedWorkspace) -> None:
    """Columns are found by name wherever they are, whatever their case and spacing."""
    header = ("payment_date", "  AMOUNT PAID ", "customer-email", "Agent Code", "customername", "PLAN",
              "Subscription  Status")
    data = make_csv([("2024-05-03", "49.00", "ada@example.com", "anna", "Ada", "Pro", "Active")], header=header)
    result = run(data)
    assert result.rows_invalid == 0
    payment = Event.objects.get(workspace=tenant.workspace, type="payment.succeeded")
    assert payment.data["amount"] == 4900
    assert payment.data["email"] == "ada@example.com"


def test_extra_columns_are_ignored_and_listed(run: Run) -> None:
    """Columns the importer does not know are ignored and named in the result."""
    header = (*HEADER, "Notes", "Sales Rep")
    result = run(make_csv([(*row(), "VIP", "Bob")], header=header))
    assert result.extra_columns == ["Notes", "Sales Rep"]
    assert result.rows_new == 1
    assert "ignored columns: Notes, Sales Rep" in result.summary()


def test_missing_required_columns_give_one_error_and_append_nothing(run: Run, tenant: CreatedWorkspace) -> None:
    """A header without required columns is one clear error naming all of them."""
    header = ("Customer Name", "Customer Email", "Plan", "Subscription Status", "Agent Code")
    with pytest.raises(ImportFileError) as caught:
        run(make_csv([("Ada", "ada@example.com", "Pro", "active", "")], header=header))
    assert caught.value.message == "Missing required columns: Amount Paid, Payment Date."
    assert csv_events(tenant.workspace.id) == []


def test_optional_columns_may_be_absent(run: Run, tenant: CreatedWorkspace) -> None:
    """Renewal Date and Currency are optional columns; without Currency the base currency applies."""
    header = HEADER[:7]
    run(make_csv([row()[:7]], header=header))
    assert Event.objects.get(workspace=tenant.workspace, type="payment.succeeded").data["currency"] == "USD"


def test_a_column_named_twice_is_refused(run: Run) -> None:
    """Two columns that both mean Amount Paid make the file ambiguous: one error."""
    with pytest.raises(ImportFileError, match="'Amount Paid' appears twice"):
        run(make_csv([(*row(), "50")], header=(*HEADER, "amount_paid")))


# --- rows to events ----------------------------------------------------------------------------

@pytest.mark.smoke
def test_a_valid_row_becomes_customer_created_then_payment_succeeded_from_csv(
        run: Run, tenant: CreatedWorkspace) -> None:
    """One row: customer.created (with the agent code) then payment.succeeded, source csv, at UTC midnight."""
    run(make_csv([row("  Ada@Example.com ", code="anna", plan="Pro Monthly", amount="49.50")]))
    customer, payment = csv_events(tenant.workspace.id)
    midnight = datetime(2024, 5, 3, tzinfo=UTC)
    assert (customer.type, customer.source, customer.source_event_id) == (
        "customer.created", "csv", "customer:ada@example.com")
    assert customer.data == {"email": "ada@example.com", "name": "Ada Lovelace", "referral_code": "ANNA"}
    assert customer.occurred_at == midnight
    assert payment.type == "payment.succeeded"
    assert payment.data == {"payment_ref": "nk:ada@example.com|2024-05-03|4950|USD", "email": "ada@example.com",
                            "amount": 4950, "currency": "USD", "plan": "Pro Monthly"}
    assert payment.source_event_id == payment.data["payment_ref"]
    assert payment.occurred_at == midnight
    assert payment.raw["line"] == 2
    assert payment.raw["row"]["Amount Paid"] == "49.50"


def test_a_blank_agent_code_imports_an_unattributed_customer(run: Run, tenant: CreatedWorkspace) -> None:
    """A row without an agent code creates a customer with no referral code."""
    run(make_csv([row(code="")]))
    customer = Event.objects.get(workspace=tenant.workspace, type="customer.created")
    assert "referral_code" not in customer.data


def test_a_customer_in_several_rows_is_created_once(run: Run, tenant: CreatedWorkspace) -> None:
    """Every row is a payment; the customer they share is created once."""
    run(make_csv([row(date="2024-05-03"), row(date="2024-06-03"), row(date="2024-07-03")]))
    events = csv_events(tenant.workspace.id)
    assert [e.type for e in events] == ["customer.created"] + ["payment.succeeded"] * 3


def test_a_cancelled_customer_gets_one_cancellation_after_its_payments_at_the_latest_row(
        run: Run, tenant: CreatedWorkspace) -> None:
    """Status cancelled → one subscription.cancelled, after all payments, dated at the latest cancelled row."""
    data = make_csv([
        row(date="2024-07-03", status="cancelled"),
        row(date="2024-05-03", status="cancelled"),
        row("bob@example.com", date="2024-05-04"),
    ])
    run(data)
    events = csv_events(tenant.workspace.id)
    assert events[-1].type == "subscription.cancelled"
    assert events[-1].data == {"email": "ada@example.com"}
    assert events[-1].occurred_at == datetime(2024, 7, 3, tzinfo=UTC)
    assert [e.type for e in events].count("subscription.cancelled") == 1


@pytest.mark.parametrize("status", ["active", "past_due", "trialing", "Past Due", "TRIALING"])
def test_statuses_other_than_cancelled_append_no_cancellation(run: Run, tenant: CreatedWorkspace,
                                                              status: str) -> None:
    """active, past_due and trialing (any case) are valid and append no cancellation."""
    result = run(make_csv([row(status=status)]))
    assert result.rows_invalid == 0
    assert not Event.objects.filter(workspace=tenant.workspace, type="subscription.cancelled").exists()


def test_a_zero_amount_row_creates_the_customer_but_no_payment(run: Run, tenant: CreatedWorkspace) -> None:
    """A trial row (Amount Paid 0) records the customer only, so the first real payment still earns the referral."""
    run(make_csv([row(amount="0", status="trialing")]))
    assert [e.type for e in csv_events(tenant.workspace.id)] == ["customer.created"]


def test_currency_defaults_to_the_workspace_base_currency(run: Run, other_tenant: CreatedWorkspace,
                                                           tenant: CreatedWorkspace) -> None:
    """A blank Currency cell means the workspace's base currency (EUR here)."""
    import_csv(workspace=other_tenant.workspace, stream=io.BytesIO(make_csv([row(code="", currency="")])))
    payment = Event.objects.get(workspace=other_tenant.workspace, type="payment.succeeded")
    assert (payment.data["amount"], payment.data["currency"]) == (4900, "EUR")


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("5400", "JPY", 5400), ("12.345", "KWD", 12345), ("99", "USD", 9900), ("0.5", "eur", 50)])
def test_amounts_are_read_in_the_currencys_own_exponent(run: Run, tenant: CreatedWorkspace, amount: str,
                                                       currency: str, minor: int) -> None:
    """Amount Paid in major units becomes exact minor units of that currency."""
    run(make_csv([row(amount=amount, currency=currency)]))
    payment = Event.objects.get(workspace=tenant.workspace, type="payment.succeeded")
    assert (payment.data["amount"], payment.data["currency"]) == (minor, currency.upper())


# --- row errors --------------------------------------------------------------------------------

@pytest.mark.parametrize(("cells", "column", "reason"), [
    ({"email": "not-an-email"}, "Customer Email", "'not-an-email' is not a valid email address"),
    ({"email": ""}, "Customer Email", "is required"),
    ({"amount": "$49.00"}, "Amount Paid", "is not a plain number"),
    ({"amount": "1,049.00"}, "Amount Paid", "without a currency symbol or thousands separator"),
    ({"amount": "49.999"}, "Amount Paid", "too many decimals: USD has 2 decimal places"),
    ({"amount": "5.5", "currency": "JPY"}, "Amount Paid", "JPY has 0 decimal places"),
    ({"amount": "-5"}, "Amount Paid", "negative"),
    ({"amount": ""}, "Amount Paid", "is required"),
    ({"status": "paused"}, "Subscription Status", "unknown status 'paused'"),
    ({"date": "03/05/2024"}, "Payment Date", "'03/05/2024' is not a date in the form YYYY-MM-DD"),
    ({"date": "2024-02-30"}, "Payment Date", "not a real calendar date"),
    ({"date": "2024-5-3"}, "Payment Date", "YYYY-MM-DD"),
    ({"renewal": "next month"}, "Renewal Date", "YYYY-MM-DD"),
    ({"currency": "XYZ"}, "Currency", "'XYZ' is not an ISO 4217 currency code"),
    ({"code": "NOPE"}, "Agent Code", "unknown or inactive agent code 'NOPE'"),
    ({"code": "GONE"}, "Agent Code", "unknown or inactive agent code 'GONE'"),
    ({"code": "BAD CODE!"}, "Agent Code", "unknown agent code 'BAD CODE!'"),
])
def test_a_bad_cell_is_reported_with_line_column_and_reason_and_good_rows_still_go_in(
        run: Run, tenant: CreatedWorkspace, cells: dict[str, str], column: str, reason: str) -> None:
    """Each kind of bad cell is reported by line, column and reason; the other rows are imported."""
    bad = row(**{"email": "bad@example.com", **cells})
    result = run(make_csv([row("good1@example.com"), bad, row("good2@example.com")]))
    assert result.rows_invalid == 1
    assert result.rows_new == 2
    [error] = result.errors
    assert (error.line, error.column) == (3, column)
    assert reason in error.reason
    emails = {e.data["email"] for e in csv_events(tenant.workspace.id)}
    assert emails == {"good1@example.com", "good2@example.com"}
    assert "bad@example.com" not in emails


def test_every_bad_cell_of_a_row_is_reported(run: Run) -> None:
    """A row with several faults lists each of them, agent code included."""
    result = run(make_csv([row("nope", amount="$5", status="gone", code="NOPE", date="yesterday")]))
    assert [(e.line, e.column) for e in result.errors] == [
        (2, "Customer Email"), (2, "Amount Paid"), (2, "Subscription Status"), (2, "Payment Date"),
        (2, "Agent Code")]
    assert result.rows_invalid == 1


def test_a_row_with_more_cells_than_the_header_is_refused(run: Run) -> None:
    """An unquoted comma splits a cell: the row has more cells than columns, and is refused."""
    data = make_csv([row()]) + b"Bob,bob@example.com,Pro,1,049.00,active,,2024-05-03,,USD\r\n"
    result = run(data)
    assert [(e.line, e.column) for e in result.errors] == [(3, None)]
    assert "10 cells but the header has 9" in result.errors[0].reason


def test_line_numbers_count_physical_lines_across_quoted_new_lines(run: Run, tenant: CreatedWorkspace) -> None:
    """A quoted field spanning lines moves the next rows' line numbers by as many lines."""
    data = make_csv([
        row("ada@example.com", name="Ada\nLovelace\nCountess"),   # lines 2–4
        row("bob@example.com", plan="Pro, \"annual\""),          # line 5
        row("bad", amount="x"),                                 # line 6
    ])
    result = run(data)
    assert {e.line for e in result.errors} == {6}
    customer = Event.objects.get(workspace=tenant.workspace, source_event_id="customer:ada@example.com")
    assert customer.data["name"] == "Ada\nLovelace\nCountess"
    payment = Event.objects.get(workspace=tenant.workspace, type="payment.succeeded", data__email="bob@example.com")
    assert payment.data["plan"] == 'Pro, "annual"'
    assert payment.raw["line"] == 5


def test_blank_lines_are_skipped_but_counted_in_line_numbers(run: Run) -> None:
    """Empty lines are not rows, yet the lines after them keep their physical numbers."""
    data = make_csv([row()]) + b"\r\n,,,,,,,,\r\n" + make_csv([row("bad", amount="1")]).split(b"\r\n", 1)[1]
    result = run(data)
    assert result.rows_total == 2
    assert [e.line for e in result.errors] == [5]


@pytest.mark.smoke
def test_bom_and_crlf_are_read(run: Run, tenant: CreatedWorkspace) -> None:
    """A UTF-8 BOM before the header and CRLF line ends are read as plain CSV; non-ASCII text survives."""
    result = run(make_csv([row(name="Zoë Ångström")], bom=True, newline="\r\n"))
    assert result.rows_invalid == 0
    assert Event.objects.get(workspace=tenant.workspace, type="customer.created").data["name"] == "Zoë Ångström"


def test_lf_line_ends_without_bom_are_read(run: Run) -> None:
    """Plain LF files without a BOM are read the same way."""
    assert run(make_csv([row(), row("bob@example.com")], newline="\n")).rows_new == 2


# --- whole-file errors -------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "message"), [
    (b"", "The file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This is not a CSV file: it contains binary data."),
    (b"PK\x03\x04\x14\x00\x06\x00", "spreadsheet workbook (Excel), not CSV"),
    ("Customer Name,Customer Email\r\nZoë,z@example.com\r\n".encode("utf-16"), "UTF-16"),
    ("Customer Name,Customer Email,Plan,Amount Paid,Subscription Status,Agent Code,Payment Date\r\n"
     "Zoë,z@example.com,Pro,1,active,,2024-05-03\r\n".encode("latin-1"), "not UTF-8 text (line 2"),
    (b"ada@example.com,49.00,2024-05-03\r\nbob@example.com,10,2024-05-04\r\n", "The file has no header row"),
    (b"Customer Name;Customer Email;Plan\r\n", "separated by ';'"),
    (b"\r\n\r\n", "no header row"),
], ids=["empty", "binary", "xlsx", "utf16", "latin1", "no-header", "semicolons", "blank"])
def test_a_file_that_is_not_csv_gets_one_clear_error_and_appends_nothing(
        run: Run, tenant: CreatedWorkspace, data: bytes, message: str) -> None:
    """Binary, workbook, UTF-16, non-UTF-8, header-less or empty files: one error, nothing appended."""
    with pytest.raises(ImportFileError) as caught:
        run(data)
    assert message in caught.value.message
    assert csv_events(tenant.workspace.id) == []


def test_a_byte_that_is_not_utf8_late_in_the_file_fails_before_anything_is_appended(
        run: Run, tenant: CreatedWorkspace) -> None:
    """The whole file is checked first, so a bad byte in row 3,000 leaves the store untouched."""
    rows = [row(f"c{i}@example.com") for i in range(3000)]
    data = make_csv(rows) + "Zoë,z@example.com,Pro,1,active,,2024-05-03,,USD\r\n".encode("latin-1")
    with pytest.raises(ImportFileError, match="line 3002"):
        run(data)
    assert csv_events(tenant.workspace.id) == []


def test_an_unclosed_quote_is_one_clear_error(run: Run, tenant: CreatedWorkspace) -> None:
    """An unbalanced quote makes the rest of the file unreadable: one error, nothing appended."""
    data = make_csv([row()]) + b'"Bob,bob@example.com,Pro,49.00,active,,2024-05-03,,USD\r\n'
    with pytest.raises(ImportFileError, match="never closed"):
        run(data)
    assert csv_events(tenant.workspace.id) == []


# --- idempotency -------------------------------------------------------------------------------

@pytest.mark.smoke
def test_the_same_file_twice_appends_nothing_the_second_time(run: Run, tenant: CreatedWorkspace) -> None:
    """Re-uploading a file appends no event and says every row and event is already in."""
    data = make_csv([row(), row(date="2024-06-03"), row("bob@example.com", status="cancelled", code="BEN")])
    first = run(data)
    before = Event.objects.count()
    second = run(data)
    assert Event.objects.count() == before
    assert (second.events_appended, second.events_duplicate) == (0, first.events_appended)
    assert (second.rows_new, second.rows_duplicate) == (0, 3)


def test_an_overlapping_file_appends_only_its_new_rows(run: Run, tenant: CreatedWorkspace) -> None:
    """A later export that repeats earlier rows appends only the rows not yet in."""
    run(make_csv([row(date="2024-05-03"), row("bob@example.com")]))
    result = run(make_csv([row(date="2024-05-03"), row("bob@example.com"), row(date="2024-06-03"),
                           row("cy@example.com")]))
    assert (result.rows_new, result.rows_duplicate) == (2, 2)
    assert result.appended_by_type == {"payment.succeeded": 2, "customer.created": 1}
    assert Event.objects.filter(workspace=tenant.workspace, type="customer.created").count() == 3


def test_a_row_repeated_in_the_same_file_is_one_payment(run: Run, tenant: CreatedWorkspace) -> None:
    """Two identical rows are one payment (same natural key): the second is a duplicate."""
    plans: list[dict] = []
    result = run(make_csv([row(), row()]), plan=plans.append)
    assert Event.objects.filter(workspace=tenant.workspace, type="payment.succeeded").count() == 1
    assert (result.rows_new, result.rows_duplicate, result.events_duplicate) == (1, 1, 1)
    assert plans[1]["events"][0]["duplicateOfLine"] == 2


def test_the_natural_key_ignores_how_the_amount_and_email_are_written(run: Run, tenant: CreatedWorkspace) -> None:
    """49, 49.0 and 49.00 USD, and emails differing only in case, are the same payment."""
    run(make_csv([row("Ada@example.com", amount="49")]))
    result = run(make_csv([row("ada@EXAMPLE.com ", amount="49.0"), row(amount="49.00")]))
    assert result.events_appended == 0
    assert Event.objects.filter(workspace=tenant.workspace, type="payment.succeeded").count() == 1


# --- dry run -----------------------------------------------------------------------------------

@pytest.mark.smoke
def test_a_dry_run_appends_nothing_and_plans_exactly_what_a_real_run_appends(
        run: Run, tenant: CreatedWorkspace) -> None:
    """The dry run's planned appends are, event for event, what the real run then appends."""
    run(make_csv([row("old@example.com")]))
    data = make_csv([row("old@example.com"), row(), row(date="2024-06-03"), row("bob@example.com", code="BEN",
                                                                                 status="cancelled"),
                     row("bad", amount="x")])
    plans: list[dict] = []
    before = Event.objects.count()
    dry = run(data, dry_run=True, plan=plans.append)
    assert Event.objects.count() == before
    planned = [(e["type"], e["sourceEventId"], e["data"]) for p in plans for e in p["events"]
               if e["outcome"] == "append"]
    real = run(data)
    appended = [(e.type, e.source_event_id, e.data) for e in csv_events(tenant.workspace.id)][2:]
    assert planned == appended
    assert (dry.events_appended, dry.events_duplicate, dry.rows_invalid) == (
        real.events_appended, real.events_duplicate, real.rows_invalid)
    assert dry.errors == real.errors


def test_a_dry_run_plan_lists_every_valid_row_with_its_events_and_outcomes(run: Run) -> None:
    """Each valid row appears in the plan with its line and the outcome of each event."""
    run(make_csv([row()]))
    plans: list[dict] = []
    run(make_csv([row(), row("bob@example.com")]), dry_run=True, plan=plans.append)
    assert [(p["line"], [(e["type"], e["outcome"]) for e in p["events"]]) for p in plans] == [
        (2, [("customer.created", "duplicate"), ("payment.succeeded", "duplicate")]),
        (3, [("customer.created", "append"), ("payment.succeeded", "append")]),
    ]


# --- limits and scale --------------------------------------------------------------------------

def test_a_file_over_the_size_limit_is_refused(run: Run, tenant: CreatedWorkspace) -> None:
    """REFAIRN_CSV_MAX_BYTES caps the file size: one error (413), nothing appended."""
    data = make_csv([row(f"c{i}@example.com") for i in range(20)])
    with override_settings(REFAIRN_CSV_MAX_BYTES=len(data) - 1), pytest.raises(ImportFileError) as caught:
        run(data)
    assert (caught.value.code, caught.value.status_code) == ("file_too_large", 413)
    assert csv_events(tenant.workspace.id) == []


def test_a_file_over_the_row_cap_is_refused_before_anything_is_appended(run: Run, tenant: CreatedWorkspace) -> None:
    """REFAIRN_CSV_MAX_ROWS caps the rows of one import; a longer file appends nothing."""
    data = make_csv([row(f"c{i}@example.com") for i in range(11)])
    with override_settings(REFAIRN_CSV_MAX_ROWS=10), pytest.raises(ImportFileError) as caught:
        run(data)
    assert caught.value.code == "too_many_rows"
    assert "more than 10 rows" in caught.value.message
    assert csv_events(tenant.workspace.id) == []


def test_a_file_at_the_row_cap_is_imported(run: Run) -> None:
    """Exactly REFAIRN_CSV_MAX_ROWS rows is within the cap."""
    with override_settings(REFAIRN_CSV_MAX_ROWS=10):
        assert run(make_csv([row(f"c{i}@example.com") for i in range(10)])).rows_new == 10


def test_rows_are_appended_in_batches_with_progress_after_each(run: Run) -> None:
    """With batches of 4 events (2 rows), a 7-row file reports progress batch by batch."""
    seen: list[int] = []
    with override_settings(REFAIRN_CSV_BATCH_EVENTS=4):
        result = run(make_csv([row(f"c{i}@example.com") for i in range(7)]),
                     progress=lambda r: seen.append(r.rows_done))
    assert seen == [0, 2, 4, 6, 7]
    assert result.events_appended == 14


def test_the_number_of_queries_does_not_grow_with_the_rows_of_a_batch(run: Run, tenant: CreatedWorkspace) -> None:
    """Agent codes and existing keys are checked once per batch, never once per row."""
    def queries(count: int, offset: int) -> int:
        rows = [row(f"c{offset + i}@example.com", code=("ANNA", "BEN", "")[i % 3]) for i in range(count)]
        with CaptureQueriesContext(connection) as captured:
            run(make_csv(rows))
        return len(captured)

    # Both batches hold more than ONE_MESSAGE_MAX events, so both are appended the same way
    # (COPY on PostgreSQL); a smaller append takes the VALUES path, with fewer statements.
    assert queries(150, 0) == queries(450, 1000)


def test_stored_errors_are_capped_but_all_bad_rows_are_counted(run: Run) -> None:
    """REFAIRN_CSV_MAX_ERRORS bounds the list kept; the counts still cover every bad row."""
    with override_settings(REFAIRN_CSV_MAX_ERRORS=2):
        result = run(make_csv([row(f"c{i}@example.com", amount="$1") for i in range(5)]))
    assert (len(result.errors), result.errors_total, result.rows_invalid) == (2, 5, 5)
    assert "the first 2 of 5 errors are listed" in result.summary()


def test_each_appended_event_gets_its_own_random_id_of_the_store_s_format(run: Run, tenant: CreatedWorkspace) -> None:
    """A batch's ids are drawn together; each is still ``evt_`` + 24 characters and none repeats."""
    run(make_csv([row(f"c{i}@example.com") for i in range(60)]))
    ids = list(Event.objects.filter(workspace=tenant.workspace, source="csv").values_list("event_id", flat=True))
    assert len(ids) == 120
    assert len(set(ids)) == 120
    assert all(re.fullmatch(r"evt_[a-z2-7]{24}", event_id) for event_id in ids)


def test_the_store_check_finds_keys_holding_any_character(tenant: CreatedWorkspace) -> None:
    """The keys travel to PostgreSQL as one text split by new lines; a key that holds one still matches."""
    for key in ("customer:odd\nkey@example.com", "customer:plain@example.com"):
        event_append(NewEvent(workspace_id=tenant.workspace.id, source="csv", source_event_id=key,
                              type="customer.created", occurred_at=datetime(2024, 5, 1, tzinfo=UTC),
                              data={"email": "x@example.com"}))
    wanted = ["customer:odd\nkey@example.com", "customer:plain@example.com", "customer:absent@example.com"]
    assert _stored_keys(tenant.workspace.id, wanted) == {"customer:odd\nkey@example.com",
                                                          "customer:plain@example.com"}
    assert _stored_keys(tenant.workspace.id, wanted[1:]) == {"customer:plain@example.com"}
