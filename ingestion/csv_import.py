"""The one CSV importer (issue #7): a spreadsheet of payments becomes canonical events, source ``csv``.

The admin upload page, ``POST /api/imports`` and ``manage.py import_csv`` all call ``import_csv``.

How a file goes in:

1. **Scan** (nothing is appended yet): size limit, not binary, UTF-8 (with or without BOM),
   well-formed CSV, a header naming the required columns, and the number of rows under the row
   cap. Any of these failing is one clear file error (``ImportFileError``) and appends nothing,
   so a file is never half-imported because of a defect found at its end.
2. **Import**, streaming, in batches of rows: each row is validated on its own (every bad cell
   is reported with its physical line, column and reason; good rows still go in), agent codes
   are checked with one query per batch, the batch's keys are checked against the store with one
   query, and only what is new goes to ``event_append_many``. A dry run does everything except
   that append, so it plans exactly what a real run would append.

Each valid row becomes, in this order:

* ``customer.created`` — ``source_event_id`` ``customer:<email>``: one per customer, whatever the
  number of rows or files; ``referral_code`` from ``Agent Code`` (blank = an unattributed customer).
* ``payment.succeeded`` — ``payment_ref`` and ``source_event_id`` are the natural key of
  ``ingestion.natural_keys`` (email + payment date + amount + currency), the same string the API
  builds for a payment without ``paymentId``, so the same payment earns once whatever reports it.
  A row whose payment another channel already reported with its own id (a provider webhook's
  charge id, the API's ``paymentId``) is counted as already in and not appended
  (``reported_elsewhere``). The reverse order, a CSV row first and the webhook or API report with
  its own id later, is reconciled by the projections: ``attribution.projector`` records the later
  report as an alias of the row's payment (same natural key from its ``email``), so it earns
  nothing more, and refunds naming its id reverse the row's commission.
  **Decision**: a row with ``Amount Paid`` 0 (a trial) creates the customer but no payment, so
  the customer's first real payment is still the one that earns the referral commission.
* ``subscription.cancelled`` — one per customer (``cancel:<email>``), for customers with a
  ``cancelled`` row. **Decision**: it is appended after all the file's payments, dated at the
  customer's latest cancelled row. Exports often repeat the customer's *current* status on every
  past payment row; dating the cancellation at the first such row would cut the recurring
  commission of every later payment.

``occurred_at`` is the row's ``Payment Date`` at midnight UTC.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.db import connection

from .api_io import MAX_MINOR, parse_email
from .errors import ApplicationError
from .lookups import lookup
from .models import Event, Workspace
from .money import MoneyError, exponent, normalise_currency, to_minor
from .natural_keys import NATURAL_KEY_PREFIX, customer_email_key, normalise_email, payment_natural_key
from .store import NewEvent, event_append_many

SOURCE = "csv"
SNIFF_BYTES = 64 * 1024
STATUSES = ("active", "cancelled", "past_due", "trialing")
# Spellings seen in real exports (Stripe writes "canceled"), read as the canonical status.
_STATUS_ALIASES = {"canceled": "cancelled", "pastdue": "past_due", "trial": "trialing", "trialling": "trialing"}
_AMOUNT = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_CODE = re.compile(r"^[A-Z0-9]{1,32}$")
_HEADER_NOISE = re.compile(r"[\s_\-]+")
MAX_TEXT = 200


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    required: bool


COLUMNS: tuple[Column, ...] = (
    Column("name", "Customer Name", True),
    Column("email", "Customer Email", True),
    Column("plan", "Plan", True),
    Column("amount", "Amount Paid", True),
    Column("status", "Subscription Status", True),
    Column("agent_code", "Agent Code", True),
    Column("payment_date", "Payment Date", True),
    Column("renewal_date", "Renewal Date", False),
    Column("currency", "Currency", False),
)
_TITLES = {column.key: column.title for column in COLUMNS}


def header_key(cell: str) -> str:
    """Normalise a header cell for matching: case, spaces, ``_`` and ``-`` do not matter."""
    return _HEADER_NOISE.sub("", cell.replace("\ufeff", "")).lower()


_BY_HEADER = {header_key(column.title): column for column in COLUMNS}


# --- limits (settings, read at call time) ------------------------------------------------------

def max_bytes() -> int:
    return int(getattr(settings, "REFAIRN_CSV_MAX_BYTES", 64 * 1024 * 1024))


def max_rows() -> int:
    return int(getattr(settings, "REFAIRN_CSV_MAX_ROWS", 250_000))


def batch_events() -> int:
    return max(2, int(getattr(settings, "REFAIRN_CSV_BATCH_EVENTS", 1000)))


def max_errors() -> int:
    return int(getattr(settings, "REFAIRN_CSV_MAX_ERRORS", 1000))


# --- results -----------------------------------------------------------------------------------

class ImportFileError(ApplicationError):
    """The file as a whole cannot be imported (not CSV, no header, too large…); nothing was appended."""

    code = "invalid_file"

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None,
                 code: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message, field="file", code=code, status_code=status_code)
        self.line = line
        self.column = column

    def as_row_error(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "reason": self.message}


@dataclass(frozen=True)
class RowError:
    """One reason a row was refused: its physical line (header = line 1), column and why."""

    line: int
    column: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "reason": self.reason}


@dataclass(frozen=True)
class Header:
    """The file's header: which position holds which column, and the columns ignored."""

    index: dict[str, int]
    titles: tuple[str, ...]
    extra_columns: tuple[str, ...]
    line: int


@dataclass
class ImportResult:
    """Counts, errors and what was (or, in a dry run, would be) appended; updated batch by batch."""

    dry_run: bool
    filename: str = ""
    rows_total: int = 0
    rows_done: int = 0
    rows_invalid: int = 0
    rows_new: int = 0
    rows_duplicate: int = 0
    events_appended: int = 0
    events_duplicate: int = 0
    appended_by_type: dict[str, int] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    errors_total: int = 0
    extra_columns: list[str] = field(default_factory=list)

    @property
    def errors_truncated(self) -> bool:
        return self.errors_total > len(self.errors)

    def summary(self) -> str:
        """One sentence an operator can read: rows in, rows already in, rows refused, events."""
        verb = "would append" if self.dry_run else "appended"
        text = (f"{self.rows_done} of {self.rows_total} rows read: {self.rows_new} new, "
                f"{self.rows_duplicate} already in, {self.rows_invalid} invalid; "
                f"{verb} {self.events_appended} events, {self.events_duplicate} already in the store")
        if self.appended_by_type:
            text += " (" + ", ".join(f"{n} {kind}" for kind, n in sorted(self.appended_by_type.items())) + ")"
        if self.dry_run:
            text += "; dry run: nothing was appended"
        if self.extra_columns:
            text += f"; ignored columns: {', '.join(self.extra_columns)}"
        if self.errors_truncated:
            text += f"; the first {len(self.errors)} of {self.errors_total} errors are listed"
        return text + "."

    def as_dict(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "filename": self.filename,
            "rows": {"total": self.rows_total, "done": self.rows_done, "new": self.rows_new,
                     "duplicate": self.rows_duplicate, "invalid": self.rows_invalid},
            "events": {"appended": self.events_appended, "duplicate": self.events_duplicate,
                       "appendedByType": dict(sorted(self.appended_by_type.items()))},
            "extraColumns": list(self.extra_columns),
            "errors": [error.as_dict() for error in self.errors],
            "errorsTotal": self.errors_total,
            "message": self.summary(),
        }


ProgressCallback = Callable[[ImportResult], None]
PlanSink = Callable[[dict[str, Any]], None]


# --- reading the file --------------------------------------------------------------------------

def _size(stream: IO[bytes]) -> int:
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def _check_bytes(head: bytes, size: int) -> None:
    if size == 0:
        raise ImportFileError("The file is empty; expected a CSV file with a header row.")
    if size > max_bytes():
        raise ImportFileError(f"The file is {size:,} bytes; the limit is {max_bytes():,} bytes. "
                              "Split it into smaller files.", code="file_too_large", status_code=413)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError("This is a spreadsheet workbook (Excel), not CSV: save it as "
                              "'CSV UTF-8 (comma delimited)' and upload that.")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError("The file is UTF-16 text; save it as 'CSV UTF-8' and upload that.")
    if b"\x00" in head:
        raise ImportFileError("This is not a CSV file: it contains binary data.")


class _NotText(Exception):
    """A NUL character inside the text: binary data, not CSV."""


def _lines(text: IO[str]) -> Iterator[str]:
    for line in text:
        if "\x00" in line:
            raise _NotText
        yield line


def _bad_utf8_line(stream: IO[bytes]) -> int:
    """Return the physical line holding the first byte that is not UTF-8 (only on the error path)."""
    stream.seek(0)
    for number, raw in enumerate(stream, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return 0


def _open_text(stream: IO[bytes]) -> io.TextIOWrapper:
    stream.seek(0)
    # newline="" hands line ends (CRLF, and new lines inside quoted fields) to the csv module
    # untouched, as it requires; utf-8-sig drops a BOM when there is one.
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")


def _detach(text: io.TextIOWrapper) -> None:
    # Leave the caller's binary stream open: closing the wrapper would close it.
    with contextlib.suppress(ValueError):
        text.detach()


def parse_header(record: list[str], line: int) -> Header:
    """Match the header by name, in any order; raise one clear error for what is missing."""
    index: dict[str, int] = {}
    extra: list[str] = []
    for position, cell in enumerate(record):
        column = _BY_HEADER.get(header_key(cell))
        if column is None:
            if cell.strip():
                extra.append(cell.strip())
            continue
        if column.key in index:
            raise ImportFileError(f"The column {column.title!r} appears twice in the header.", line=line,
                                  column=column.title)
        index[column.key] = position
    if not index:
        hint = ""
        if len(record) == 1 and ";" in record[0]:
            hint = " It looks separated by ';': export it with commas."
        elif len(record) == 1 and "\t" in record[0]:
            hint = " It looks separated by tabs: export it with commas."
        found = ", ".join(repr(cell.strip()) for cell in record[:6] if cell.strip())
        raise ImportFileError(
            f"The file has no header row with the expected columns: line {line} must name the columns "
            f"{', '.join(c.title for c in COLUMNS if c.required)} (it reads {found}).{hint}", line=line)
    missing = [column.title for column in COLUMNS if column.required and column.key not in index]
    if missing:
        raise ImportFileError(f"Missing required column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}.",
                              line=line, column=missing[0])
    return Header(index=index, titles=tuple(cell.strip() for cell in record), extra_columns=tuple(extra),
                  line=line)


class _Position:
    """How many physical lines the csv reader has consumed (for error messages)."""

    line = 0


def _records(text: IO[str], position: _Position | None = None) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(physical line where the record starts, cells)``, skipping blank lines.

    The csv module's ``line_num`` counts the physical lines read so far, so a quoted field
    spanning several lines moves it by several and the next record's first line stays exact.
    """
    position = position or _Position()
    reader = csv.reader(_lines(text), strict=True)
    consumed = 0
    for record in reader:
        start = consumed + 1
        consumed = position.line = reader.line_num
        if not record or not any(cell.strip() for cell in record):
            continue
        yield start, record


def _read(stream: IO[bytes], consume: Callable[[Iterator[tuple[int, list[str]]]], Any]) -> Any:
    """Run ``consume`` over the records, turning encoding and CSV faults into one file error."""
    text = _open_text(stream)
    position = _Position()
    try:
        return consume(_records(text, position))
    except UnicodeDecodeError:
        _detach(text)
        line = _bad_utf8_line(stream)
        raise ImportFileError(f"The file is not UTF-8 text (line {line} has a byte that is not UTF-8): "
                              "save it as 'CSV UTF-8' and upload that.", line=line) from None
    except _NotText:
        raise ImportFileError("This is not a CSV file: it contains binary data.") from None
    except csv.Error as exc:
        reason = str(exc)
        if "field larger than field limit" in reason or "unexpected end of data" in reason:
            reason = 'a quoted field is never closed (unbalanced ")'
        line = position.line + 1
        raise ImportFileError(f"The file is not well-formed CSV at line {line}: {reason}.", line=line) from None
    finally:
        _detach(text)


@dataclass(frozen=True)
class Scan:
    header: Header
    rows: int
    first_day: str = ""
    last_day: str = ""


def scan_csv(stream: IO[bytes]) -> Scan:
    """Check the whole file before anything is appended; return its header and row count."""
    size = _size(stream)
    _check_bytes(stream.read(SNIFF_BYTES), size)
    limit = max_rows()

    def consume(records: Iterator[tuple[int, list[str]]]) -> Scan:
        header: Header | None = None
        rows = 0
        first_day, last_day = "~", ""
        at = 0
        for line, record in records:
            if header is None:
                header = parse_header(record, line)
                at = header.index["payment_date"]
                continue
            rows += 1
            # The span of payment dates bounds the store lookup of payments reported elsewhere.
            day = record[at].strip() if at < len(record) else ""
            if _DATE.match(day):
                first_day, last_day = min(first_day, day), max(last_day, day)
            if rows > limit:
                raise ImportFileError(f"The file has more than {limit:,} rows, the most one import takes. "
                                      "Split it into smaller files.", code="too_many_rows", status_code=413)
        if header is None:
            raise ImportFileError("The file has no header row: it is empty or blank.")
        return Scan(header=header, rows=rows, first_day=first_day if last_day else "", last_day=last_day)

    return _read(stream, consume)


def sniff_csv(stream: IO[bytes]) -> Header:
    """Quickly check the start of an upload (size, binary, header) so a bad file is refused at once."""
    size = _size(stream)
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    _check_bytes(head, size)
    # The sniffed head may end inside a multi-byte character or a record: only the header matters.
    complete = head if size <= SNIFF_BYTES else head[: head.rfind(b"\n") + 1] or head
    try:
        text = complete.decode("utf-8")
    except UnicodeDecodeError:
        line = _bad_utf8_line(io.BytesIO(complete))
        raise ImportFileError(f"The file is not UTF-8 text (line {line} has a byte that is not UTF-8): "
                              "save it as 'CSV UTF-8' and upload that.", line=line) from None
    text = text.removeprefix("\ufeff")
    try:
        for line, record in _records(io.StringIO(text, newline="")):
            return parse_header(record, line)
    except (csv.Error, _NotText):
        pass
    raise ImportFileError("The file has no header row: line 1 must name the columns "
                          f"({', '.join(c.title for c in COLUMNS if c.required)}).")


# --- rows --------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Row:
    line: int
    errors: list[RowError]
    email: str = ""
    name: str = ""
    plan: str = ""
    amount: int = 0
    currency: str = ""
    status: str = ""
    code: str = ""
    occurred_at: datetime | None = None
    # The row's cells, kept for ``raw`` (the audit copy), which is built only for appended events.
    record: list[str] | None = None


class _RowParser:
    """Validate one row at a time; caches make repeated emails, dates and amounts nearly free."""

    def __init__(self, header: Header, base_currency: str, filename: str) -> None:
        self.header = header
        self.width = len(header.titles)
        self.base_currency = base_currency
        self.filename = filename
        index = header.index
        self.i_name = index["name"]
        self.i_email = index["email"]
        self.i_plan = index["plan"]
        self.i_amount = index["amount"]
        self.i_status = index["status"]
        self.i_code = index["agent_code"]
        self.i_date = index["payment_date"]
        self.i_renewal = index.get("renewal_date")
        self.i_currency = index.get("currency")
        self._emails: dict[str, str | None] = {}
        self._dates: dict[str, datetime | str] = {}
        self._amounts: dict[tuple[str, str], int | str] = {}
        self._currencies: dict[str, str | None] = {}
        # Cell → (status, reason refused or ""); cell → (code, reason refused or ""): a file holds few.
        self._statuses: dict[str, tuple[str, str]] = {}
        self._codes: dict[str, tuple[str, str]] = {}

    def _email(self, value: str) -> str | None:
        if value not in self._emails:
            try:
                self._emails[value] = parse_email(value)
            except ApplicationError:
                self._emails[value] = None
        return self._emails[value]

    def _date(self, value: str) -> datetime | str:
        """Return midnight UTC of a ``YYYY-MM-DD`` date, or the reason it is not one."""
        cached = self._dates.get(value)
        if cached is not None:
            return cached
        text = value.strip()
        result: datetime | str
        if not text:
            result = "is required (YYYY-MM-DD)"
        elif not _DATE.match(text):
            result = f"{value!r} is not a date in the form YYYY-MM-DD"
        else:
            try:
                day = date.fromisoformat(text)
                result = datetime(day.year, day.month, day.day, tzinfo=UTC)
            except ValueError:
                result = f"{value!r} is not a real calendar date"
        if len(self._dates) < 100_000:
            self._dates[value] = result
        return result

    def _currency(self, value: str) -> str | None:
        if value not in self._currencies:
            text = value.strip()
            if not text:
                self._currencies[value] = self.base_currency
            else:
                try:
                    self._currencies[value] = normalise_currency(text)
                except MoneyError:
                    self._currencies[value] = None
        return self._currencies[value]

    def _status(self, value: str) -> tuple[str, str]:
        """Return the canonical status of a cell and, when it is not one, the reason."""
        cached = self._statuses.get(value)
        if cached is not None:
            return cached
        text = value.strip().lower().replace(" ", "_").replace("-", "_")
        status = _STATUS_ALIASES.get(text.replace("_", ""), text)
        reason = ""
        if status not in STATUSES:
            shown = value.strip()
            reason = ((f"unknown status {shown!r}" if shown else "is required")
                      + f"; expected one of {', '.join(STATUSES)}")
        if len(self._statuses) < 10_000:
            self._statuses[value] = (status, reason)
        return status, reason

    def _code(self, value: str) -> tuple[str, str]:
        """Return the agent code of a cell (upper case, "" when blank or malformed) and, when malformed, why."""
        cached = self._codes.get(value)
        if cached is not None:
            return cached
        code = value.strip().upper()
        reason = ""
        if code and not _CODE.match(code):
            reason = f"unknown agent code {value.strip()!r} (codes are letters and digits)"
            code = ""
        if len(self._codes) < 100_000:
            self._codes[value] = (code, reason)
        return code, reason

    def _amount(self, value: str, currency: str) -> int | str:
        """Return minor units, or the reason the cell is not an amount in ``currency``."""
        cached = self._amounts.get((value, currency))
        if cached is not None:
            return cached
        text = value.strip()
        result: int | str
        if not text:
            result = "is required (a number in major units, e.g. 99.00)"
        elif text.startswith("-"):
            result = f"{value!r} is negative; refunds are not imported from CSV"
        elif not _AMOUNT.match(text):
            result = (f"{value!r} is not a plain number: write the amount in major units without a "
                      "currency symbol or thousands separator, e.g. 1234.50")
        else:
            try:
                minor = to_minor(text, currency)
                result = minor if minor <= MAX_MINOR else f"{value!r} is too large"
            except MoneyError:
                places = exponent(currency)
                result = (f"{value!r} has too many decimals: {currency} has {places} decimal "
                          f"place{'' if places == 1 else 's'}")
        if len(self._amounts) < 100_000:
            self._amounts[(value, currency)] = result
        return result

    def parse(self, line: int, record: list[str]) -> _Row:
        errors: list[RowError] = []
        row = _Row(line=line, errors=errors)
        width = len(record)
        if width > self.width:
            errors.append(RowError(line, None, f"the row has {width} cells but the header has {self.width} "
                                               "columns (an amount or name with an unquoted comma?)"))
            return row
        if width < self.width:
            record = record + [""] * (self.width - width)

        email = self._email(record[self.i_email])
        if email is None:
            shown = record[self.i_email].strip()
            errors.append(RowError(line, "Customer Email",
                                   f"{shown!r} is not a valid email address" if shown else "is required"))
        else:
            row.email = email

        name = record[self.i_name].strip()
        if len(name) > MAX_TEXT:
            errors.append(RowError(line, "Customer Name", f"is longer than {MAX_TEXT} characters"))
        row.name = name
        plan = record[self.i_plan].strip()
        if len(plan) > MAX_TEXT:
            errors.append(RowError(line, "Plan", f"is longer than {MAX_TEXT} characters"))
        row.plan = plan

        currency = self.base_currency
        if self.i_currency is not None:
            found = self._currency(record[self.i_currency])
            if found is None:
                errors.append(RowError(line, "Currency",
                                       f"{record[self.i_currency].strip()!r} is not an ISO 4217 currency code"))
                currency = ""
            else:
                currency = found
        row.currency = currency
        if currency:
            amount = self._amount(record[self.i_amount], currency)
            if isinstance(amount, str):
                errors.append(RowError(line, "Amount Paid", amount))
            else:
                row.amount = amount

        status, reason = self._status(record[self.i_status])
        if reason:
            errors.append(RowError(line, "Subscription Status", reason))
        row.status = status

        occurred_at = self._date(record[self.i_date])
        if isinstance(occurred_at, str):
            errors.append(RowError(line, "Payment Date", occurred_at))
        else:
            row.occurred_at = occurred_at
        if self.i_renewal is not None and record[self.i_renewal].strip():
            renewal = self._date(record[self.i_renewal])
            if isinstance(renewal, str):
                errors.append(RowError(line, "Renewal Date", renewal))

        code, reason = self._code(record[self.i_code])
        if reason:
            errors.append(RowError(line, "Agent Code", reason))
        row.code = code
        if not errors:
            row.record = record
        return row

    def raw(self, row: _Row) -> dict[str, Any]:
        """The audit copy of a valid row (``Event.raw``): file name, line and cells by column title."""
        assert row.record is not None
        return {"filename": self.filename, "line": row.line, "row": dict(zip(self.header.titles, row.record,
                                                                             strict=True))}


def _stored_keys(workspace_id: str, keys: list[str]) -> set[str]:
    """Which of ``keys`` the store already holds for this workspace's CSV source (one query).

    On PostgreSQL the keys travel as one parameter, and each is probed in the unique index
    ``(workspace, source, source_event_id)`` through a ``LATERAL … LIMIT 1``, a plan that does not
    depend on statistics. With ``IN``/``= ANY`` and statistics older than a bulk import (a
    re-upload right after the first upload, before autoanalyze), PostgreSQL used the index for
    ``(workspace, source)`` only and filtered every CSV event of the workspace, per batch:
    measured 74 ms per 1,000 keys at 134k events (7 ms after ANALYZE), quadratic in the file.
    """
    if connection.vendor == "postgresql":
        # The keys travel as one text split by the server: psycopg quotes an array parameter
        # element by element in Python. A key holding the separator keeps the array.
        joined = "\n".join(keys)
        split = joined.count("\n") == len(keys) - 1
        keys_sql = "string_to_array(%s, E'\\n')" if split else "%s::varchar[]"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT k.key FROM unnest({keys_sql}) AS k(key), LATERAL (SELECT 1 FROM ingestion_event e "
                "WHERE e.workspace_id = %s AND e.source = %s AND e.source_event_id = k.key LIMIT 1) AS hit",
                [joined if split else keys, workspace_id, SOURCE])
            return {key for (key,) in cursor.fetchall()}
    return set(Event.objects.filter(workspace_id=workspace_id, source=SOURCE, source_event_id__in=keys)
               .values_list("source_event_id", flat=True))


def _event_ids(count: int) -> list[str]:
    """``count`` random ``evt_`` ids, 24 characters of the same alphabet as ``ids.new_id``.

    Base32 of 15 random bytes is exactly 24 characters of ``a-z2-7`` (120 bits), so one
    ``token_bytes`` call and one encoding serve a whole batch: a call per id was a twelfth of
    an import's time.
    """
    text = base64.b32encode(secrets.token_bytes(15 * count)).decode("ascii").lower()
    return ["evt_" + text[i:i + 24] for i in range(0, 24 * count, 24)]


@dataclass(slots=True)
class _Planned:
    """One event a row plans: its key, type and data. The ``NewEvent`` itself (with the row's
    ``raw`` and a fresh id) is built only if it is appended: a re-upload builds none."""

    row: _Row
    key: str
    kind: str
    data: dict[str, Any]
    outcome: str = ""
    duplicate_of: int | None = None
    reported_as: str = ""

    def as_dict(self) -> dict[str, Any]:
        assert self.row.occurred_at is not None
        planned: dict[str, Any] = {
            "type": self.kind,
            "sourceEventId": self.key,
            "occurredAt": self.row.occurred_at.isoformat().replace("+00:00", "Z"),
            "outcome": self.outcome,
            "data": self.data,
        }
        if self.duplicate_of is not None:
            planned["duplicateOfLine"] = self.duplicate_of
        if self.reported_as:
            planned["reportedAs"] = self.reported_as
        return planned


# --- the importer ------------------------------------------------------------------------------

class _Importer:
    def __init__(self, *, workspace: Workspace, header: Header, result: ImportResult,
                 progress: ProgressCallback | None, plan: PlanSink | None,
                 reported: dict[str, str] | None = None) -> None:
        self.workspace_id = workspace.id
        self.result = result
        self.progress = progress
        self.plan = plan
        self.parser = _RowParser(header, normalise_currency(workspace.base_currency), result.filename)
        self.batch_rows = max(1, batch_events() // 2)
        self.error_cap = max_errors()
        self.active_codes: set[str] = set()
        self.inactive_codes: set[str] = set()
        # Keys already planned in this import → the line that planned them. Bounded by the row cap.
        self.seen: dict[str, int] = {}
        self.cancellations: dict[str, _Row] = {}
        # Natural key → "source payment_ref" of payments another channel already reported with its own id.
        self.reported = reported or {}

    # errors and codes

    def _error(self, error: RowError) -> None:
        self.result.errors_total += 1
        if len(self.result.errors) < self.error_cap:
            self.result.errors.append(error)

    def _resolve_codes(self, rows: Iterable[_Row]) -> None:
        wanted = {row.code for row in rows if row.code} - self.active_codes - self.inactive_codes
        if not wanted:
            return
        try:
            active = set(lookup("referral_codes_active")(self.workspace_id, wanted))
        except LookupError:
            check = lookup("referral_code_active")
            active = {code for code in wanted if check(self.workspace_id, code)}
        self.active_codes |= active
        self.inactive_codes |= wanted - active

    # events

    def _events(self, new: list[_Planned]) -> list[NewEvent]:
        """The events to append for ``new``, each with its row's audit copy.

        A row's events are adjacent in ``new`` and share one audit copy (the same dict, encoded by
        the store for each): building it per event was about a tenth of the main thread's profiled time.
        """
        events: list[NewEvent] = []
        row: _Row | None = None
        raw: dict[str, Any] = {}
        for item, event_id in zip(new, _event_ids(len(new)), strict=True):
            if item.row is not row:
                row = item.row
                raw = self.parser.raw(row)
            assert row.occurred_at is not None
            events.append(NewEvent(workspace_id=self.workspace_id, source=SOURCE, source_event_id=item.key,
                                   type=item.kind, occurred_at=row.occurred_at, data=item.data, raw=raw,
                                   event_id=event_id))
        return events

    def _plan_row(self, row: _Row, candidates: list[_Planned]) -> list[_Planned]:
        planned: list[_Planned] = []
        customer_key = customer_email_key(row.email)
        if customer_key not in self.seen:
            self.seen[customer_key] = row.line
            data: dict[str, Any] = {"email": row.email, "name": row.name}
            if row.code:
                data["referral_code"] = row.code
            item = _Planned(row, customer_key, "customer.created", data)
            planned.append(item)
            candidates.append(item)
        if row.amount > 0:
            assert row.occurred_at is not None
            ref = payment_natural_key(email=row.email, paid_at=row.occurred_at, amount=row.amount,
                                      currency=row.currency)
            data = {"payment_ref": ref, "email": row.email, "amount": row.amount, "currency": row.currency}
            if row.plan:
                data["plan"] = row.plan
            item = _Planned(row, ref, "payment.succeeded", data)
            first = self.seen.get(ref)
            twin = self.reported.get(ref)
            if twin is not None:
                item.outcome = "duplicate"
                item.reported_as = twin
            elif first is None:
                self.seen[ref] = row.line
                candidates.append(item)
            else:
                item.outcome = "duplicate"
                item.duplicate_of = first
            planned.append(item)
        if row.status == "cancelled":
            latest = self.cancellations.get(row.email)
            if latest is None or (row.occurred_at, row.line) >= (latest.occurred_at, latest.line):
                self.cancellations[row.email] = row
        return planned

    def _settle(self, candidates: list[_Planned]) -> tuple[list[_Planned], list[NewEvent]]:
        """Mark the candidates the store already has as duplicates (one query); return the rest and
        the events to append for them (none in a dry run: those are marked ``append`` here)."""
        if not candidates:
            return [], []
        existing = _stored_keys(self.workspace_id, [item.key for item in candidates])
        new: list[_Planned] = []
        for item in candidates:
            if item.key in existing:
                item.outcome = "duplicate"
            else:
                new.append(item)
        if self.result.dry_run or not new:
            for item in new:
                item.outcome = "append"
            return [], []
        # Events (ids, audit copies) are built only now, for what is appended: a re-upload builds none.
        return new, self._events(new)

    # appending

    def _append(self, new: list[_Planned], events: list[NewEvent]) -> None:
        """Append a batch's ``events`` and mark its ``new`` items by what the store did.

        A concurrent import may have appended the same key since the store check: the store's
        unique constraint still decides, and its twin answer counts as a duplicate here. (Appending
        a batch on a second thread while the next one was planned measured no faster on two cores:
        the append is the longer half, and the database needs the other core; bench/RESULTS.md.)
        """
        if not events:
            return
        for item, outcome in zip(new, event_append_many(events), strict=True):
            item.outcome = "append" if outcome.created else "duplicate"

    # batches

    def _count(self, planned: list[_Planned]) -> bool:
        fresh = False
        for item in planned:
            if item.outcome == "append":
                fresh = True
                self.result.events_appended += 1
                kind = item.kind
                self.result.appended_by_type[kind] = self.result.appended_by_type.get(kind, 0) + 1
            else:
                self.result.events_duplicate += 1
        return fresh

    def flush(self, pending: list[_Row]) -> None:
        self._resolve_codes(pending)
        candidates: list[_Planned] = []
        planned_rows: list[tuple[_Row, list[_Planned]]] = []
        invalid: list[_Row] = []
        for row in pending:
            if row.code and row.code in self.inactive_codes:
                row.errors.append(RowError(row.line, "Agent Code",
                                           f"unknown or inactive agent code {row.code!r}"))
            if row.errors:
                invalid.append(row)
                continue
            planned_rows.append((row, self._plan_row(row, candidates)))
        self._append(*self._settle(candidates))
        for row in invalid:
            self.result.rows_invalid += 1
            for error in row.errors:
                self._error(error)
        for row, planned in planned_rows:
            if self._count(planned):
                self.result.rows_new += 1
            else:
                self.result.rows_duplicate += 1
            if self.plan is not None:
                self.plan({"line": row.line, "events": [item.as_dict() for item in planned]})
        self.result.rows_done += len(pending)
        if self.progress is not None:
            self.progress(self.result)

    def flush_cancellations(self) -> None:
        rows = sorted(self.cancellations.values(), key=lambda row: row.line)
        step = batch_events()
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            planned = [
                _Planned(row, "cancel:" + normalise_email(row.email), "subscription.cancelled", {"email": row.email})
                for row in chunk
            ]
            self._append(*self._settle(planned))
            self._count(planned)
            if self.plan is not None:
                for row, item in zip(chunk, planned, strict=True):
                    self.plan({"line": row.line, "events": [item.as_dict()]})
        if rows and self.progress is not None:
            self.progress(self.result)

    def run(self, records: Iterator[tuple[int, list[str]]]) -> None:
        pending: list[_Row] = []
        header_seen = False
        for line, record in records:
            if not header_seen:
                header_seen = True
                continue
            pending.append(self.parser.parse(line, record))
            if len(pending) >= self.batch_rows:
                self.flush(pending)
                pending = []
        if pending:
            self.flush(pending)
        self.flush_cancellations()


def _day_bound(text: str, *, upper: bool) -> datetime:
    """Midnight UTC starting (or, ``upper``, ending) a ``YYYY-MM-DD`` day; a day that does not exist
    (2024-02-30, those rows are refused anyway) widens the bound to its whole year."""
    try:
        day = date.fromisoformat(text)
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return moment + timedelta(days=1) if upper else moment
    except (ValueError, OverflowError):
        year = min(max(int(text[:4]), 1), 9998)
        return datetime(year + 1 if upper else year, 1, 1, tzinfo=UTC)


def reported_elsewhere(workspace_id: str, first_day: str, last_day: str) -> dict[str, str]:
    """Payments of these days already reported with their own id (provider charge id, API ``paymentId``).

    Such a payment's ``payment_ref`` is not the natural key, so the projections cannot see that a
    CSV row of the same payment is its twin. Rows matching one (same email, UTC date, amount and
    currency) are counted as already in and not appended: one payment, one commission. Payments
    whose ref already is the natural key (the API without ``paymentId``) are left to the
    ``payment_ref`` rule. Read once per import, bounded by the file's span of payment dates.
    """
    if not first_day:
        return {}
    start, end = _day_bound(first_day, upper=False), _day_bound(last_day, upper=True)
    found: dict[str, str] = {}
    rows = (Event.objects.filter(workspace_id=workspace_id, type="payment.succeeded", occurred_at__gte=start,
                                 occurred_at__lt=end)
            .exclude(source=SOURCE).values_list("source", "occurred_at", "data").iterator(chunk_size=2000))
    for source, occurred_at, data in rows:
        if not isinstance(data, dict):
            continue
        ref, email, amount, currency = (data.get("payment_ref"), data.get("email"), data.get("amount"),
                                        data.get("currency"))
        if (not isinstance(ref, str) or ref.startswith(NATURAL_KEY_PREFIX) or not isinstance(email, str)
                or not email or not isinstance(amount, int) or isinstance(amount, bool)
                or not isinstance(currency, str)):
            continue
        key = payment_natural_key(email=email, paid_at=occurred_at, amount=amount, currency=currency)
        found.setdefault(key, f"{source} {ref}")
    return found


def import_csv(*, workspace: Workspace, stream: IO[bytes], dry_run: bool = False, filename: str = "",
               progress: ProgressCallback | None = None, plan: PlanSink | None = None) -> ImportResult:
    """Import a CSV of payments into ``workspace``'s event store (or plan it, with ``dry_run``).

    ``stream`` is a seekable binary file. ``progress`` is called after every batch with the
    running result; ``plan`` receives one ``{"line", "events": [...]}`` per valid row (and per
    deferred cancellation) with each event's outcome, ``append`` or ``duplicate``. Raises
    ``ImportFileError`` (nothing appended) when the file as a whole cannot be read. Any other
    error (the database's, a callback's) is raised as it is; the batches appended before it stay,
    each committed on its own, and uploading the file again appends only what is missing.
    """
    scan = scan_csv(stream)
    result = ImportResult(dry_run=dry_run, filename=filename, rows_total=scan.rows,
                          extra_columns=list(scan.header.extra_columns))
    if progress is not None:
        progress(result)
    importer = _Importer(workspace=workspace, header=scan.header, result=result, progress=progress, plan=plan,
                         reported=reported_elsewhere(workspace.id, scan.first_day, scan.last_day))
    _read(stream, importer.run)
    return result
