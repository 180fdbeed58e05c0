"""CSV exports of the ledger and of payouts (issue #7): the API routes, the admin actions, the cells.

Three ways out, one writer:

* ``GET /api/commissions/export.csv`` — every ledger entry of the key's workspace, with the same
  filters and the same status rules as ``GET /api/commissions`` (``asOf``, ``agentId``,
  ``status``, ``currency``, ``kind``, ``paymentRef``, ``customerId``), plus ``payoutId`` for the
  lines of one payout (an agent's statement). The columns are the API's field names, the rows in
  ledger order (oldest first), streamed in keyset-paged chunks so a large ledger never sits in
  memory and no database cursor stays open while a slow client reads.
* ``GET /api/payouts/export.csv`` — the **payout file**: one row per payout, i.e. per agent and
  currency, with the agent's name and email, the net amount and the number of entries covered,
  filtered like ``GET /api/payouts`` (``agentId``, ``status``, ``currency``). DESIGN.md names no
  such route; it is an addition, kept before ``/api/payouts/<id>`` in the url order.
* Admin actions "Export the selected entries as CSV" (ledger entries) and "Download the payout
  file (CSV)" (payouts), over the operator's own workspaces only.

**Formula injection** (OWASP "CSV Injection"): a spreadsheet runs a cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return as a formula. Every cell written here goes
through ``neutralise``, which prefixes such a cell with a single quote ``'`` so it is shown as
text — names, emails, payment refs, payout references, anything a caller or agent could type.
**Decision**: a cell that is exactly a plain number (``-9.90``, ``-990``) is kept as it is. A
spreadsheet reads it as a number, which cannot call anything, and quoting it would turn every
reversal amount into text that no longer sums. Only ``^-?[0-9]+(\\.[0-9]+)?$`` counts as a
number: ``-2+3``, ``-1e3``, ``- 5`` or ``-9,90`` are neutralised like any other text.

Encoding: UTF-8, CRLF line ends (RFC 4180), quoted as needed by the ``csv`` module. The API
answers without a BOM (machines read it); the admin downloads start with a UTF-8 BOM so Excel
shows accented names correctly. A file exported here imports nowhere by mistake: its header is
not the import's.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from agents.models import Agent
from ingestion.api_io import READ_ERRORS, iso, parse_currency, query_choice
from ingestion.money import from_minor

from . import selectors
from .api import AS_OF, as_of_param
from .models import LedgerEntry, Payout, PayoutLine

CHUNK = 2000
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")
BOM = "\ufeff"

LEDGER_COLUMNS = (
    "commissionId", "agentId", "customerId", "kind", "amount", "amountMinor", "currency", "status", "paymentRef",
    "createdFromEventId", "paymentEventId", "reversesCommissionId", "cause", "causeEventId", "programId",
    "enrollmentId", "occurredAt", "effectiveAt", "holdUntil", "payoutId",
)
PAYOUT_COLUMNS = (
    "payoutId", "agentId", "agentName", "agentEmail", "currency", "amount", "amountMinor", "entries", "status",
    "reference", "cutoff", "createdAt", "confirmedAt",
)


# --- cells ----------------------------------------------------------------------------------------

def neutralise(value: Any) -> str:
    """Return the cell text, prefixed with ``'`` when a spreadsheet would read it as a formula.

    A cell is dangerous when its first character, or its first after leading spaces, is one of
    ``FORMULA_TRIGGERS``; a plain number (``-9.90``) is not (see the module docstring).
    """
    if value is None:
        return ""
    text = str(value)
    if not text:
        return text
    first = text.lstrip(" ")[:1]
    if first and first in FORMULA_TRIGGERS and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


class _Line:
    """A file-like object whose ``write`` returns what it was given (``csv.writer`` into a generator)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]], *, bom: bool = False) -> Iterator[str]:
    """Yield the header then each row as one CSV line (CRLF), every cell neutralised."""
    writer = csv.writer(_Line(), lineterminator="\r\n")
    first = writer.writerow(header)
    yield (BOM + first) if bom else first
    for row in rows:
        yield writer.writerow([neutralise(cell) for cell in row])


def csv_response(lines: Iterator[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse((line.encode("utf-8") for line in lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- ledger rows ----------------------------------------------------------------------------------

def ledger_row(entry: LedgerEntry, status: str, payout_id: str | None) -> list[Any]:
    """One entry in ``LEDGER_COLUMNS`` order, the same values as ``GET /api/commissions`` gives."""
    reversal = entry.kind == LedgerEntry.Kind.REVERSAL
    return [
        entry.id, entry.agent_id, entry.customer_id, entry.kind, from_minor(entry.amount, entry.currency),
        entry.amount, entry.currency, status, entry.payment_ref, entry.created_from_event_id,
        entry.payment_event_id, entry.base_id if reversal else "", entry.cause, entry.cause_event_id,
        entry.program_id, entry.enrollment_id, iso(entry.occurred_at), iso(entry.effective_at),
        iso(entry.hold_until), payout_id or "",
    ]


def _chunks(qs: QuerySet[LedgerEntry]) -> Iterator[list[LedgerEntry]]:
    """Walk ``qs`` in (created_position, id) order, one short query per chunk (keyset paging)."""
    ordered = qs.order_by("created_position", "id")
    after: tuple[int, str] | None = None
    while True:
        page = ordered
        if after is not None:
            page = page.filter(Q(created_position__gt=after[0]) | Q(created_position=after[0], id__gt=after[1]))
        chunk = list(page[:CHUNK])
        if not chunk:
            return
        yield chunk
        if len(chunk) < CHUNK:
            return
        after = (chunk[-1].created_position, chunk[-1].id)


def _ledger_rows(qs: QuerySet[LedgerEntry], pairs: set[tuple[str, str]]) -> Iterator[list[Any]]:
    for chunk in _chunks(qs):
        payouts = selectors.payout_ids_for([entry.id for entry in chunk])
        for entry in chunk:
            yield ledger_row(entry, selectors.entry_status(entry, pairs), payouts.get(entry.id))


def ledger_export(*, workspace_id: str, as_of: datetime, agent_id: str | None = None, status: str | None = None,
                  currency: str | None = None, kind: str | None = None, payment_ref: str | None = None,
                  customer_id: str | None = None, payout_id: str | None = None, bom: bool = False,
                  ) -> Iterator[str]:
    """The workspace's ledger as CSV lines, filtered and labelled exactly as ``GET /api/commissions``."""
    qs, pairs = selectors.commission_list(workspace_id=workspace_id, as_of=as_of, agent_id=agent_id, status=status,
                                          currency=currency, kind=kind, payment_ref=payment_ref,
                                          customer_id=customer_id)
    if payout_id:
        lines = PayoutLine.objects.filter(workspace_id=workspace_id, payout_id=payout_id)
        qs = qs.filter(id__in=lines.values("entry_id"))
    return csv_lines(LEDGER_COLUMNS, _ledger_rows(qs, pairs), bom=bom)


def entries_export(entries: QuerySet[LedgerEntry], *, as_of: datetime, bom: bool = True) -> Iterator[str]:
    """Chosen entries (any workspaces, e.g. an admin selection) as CSV lines, status as of ``as_of``."""
    qs = selectors.annotate_status(LedgerEntry.objects.filter(pk__in=entries.values("pk")), as_of)
    pairs: set[tuple[str, str]] = set()
    for workspace_id in qs.order_by().values_list("workspace_id", flat=True).distinct():
        pairs |= selectors.payable_pairs(workspace_id=workspace_id, as_of=as_of)
    return csv_lines(LEDGER_COLUMNS, _ledger_rows(qs, pairs), bom=bom)


# --- payout file ----------------------------------------------------------------------------------

def _payout_rows(payouts: QuerySet[Payout]) -> Iterator[list[Any]]:
    rows = list(payouts.annotate(entry_count=Count("lines")).order_by("created_position", "id"))
    agents = {(a.workspace_id, a.id): a for a in Agent.objects.filter(
        id__in={p.agent_id for p in rows}, workspace_id__in={p.workspace_id for p in rows})}
    for payout in rows:
        agent = agents.get((payout.workspace_id, payout.agent_id))
        yield [
            payout.id, payout.agent_id, agent.name if agent else "", agent.email if agent else "", payout.currency,
            from_minor(payout.amount, payout.currency), payout.amount, payout.entry_count,  # type: ignore[attr-defined]
            payout.status, payout.reference, iso(payout.cutoff), iso(payout.created_at), iso(payout.confirmed_at),
        ]


def payout_file(payouts: QuerySet[Payout], *, bom: bool = False) -> Iterator[str]:
    """The payout file: one row per payout (one agent, one currency), oldest first."""
    return csv_lines(PAYOUT_COLUMNS, _payout_rows(payouts), bom=bom)


def _stamp() -> str:
    return timezone.now().strftime("%Y%m%d-%H%M%S")


# --- HTTP -----------------------------------------------------------------------------------------

def _currency(request: Request) -> str | None:
    value = request.query_params.get("currency")
    return parse_currency(value) if value else None


_CSV_DESCRIPTION = (
    "UTF-8, CRLF line ends, a header row of the column names below. Every cell that starts with `=`, `+`, `-`, "
    "`@`, a tab or a carriage return is prefixed with `'` (formula injection), except a plain number such as "
    "`-9.90`, kept as a number."
)
_LEDGER_SAMPLE = (
    ",".join(LEDGER_COLUMNS) + "\r\n"
    "com_4f0k2m,agt_9x,cus_b1,referral,19.80,1980,USD,payable,pi_3PQ1x2,evt_8kq,evt_8kq,,,,prog_1,enr_1,"
    "2024-05-01T12:05:00Z,2024-05-01T12:05:00Z,2024-05-15T12:05:00Z,\r\n"
    "com_7h2p1q,agt_9x,cus_b1,reversal,-9.90,-990,USD,payable,pi_3PQ1x2,evt_r1,evt_8kq,com_4f0k2m,refund,evt_r1,"
    "prog_1,enr_1,2024-05-20T08:00:00Z,2024-05-20T08:00:00Z,2024-05-15T12:05:00Z,\r\n"
)
_PAYOUT_SAMPLE = (
    ",".join(PAYOUT_COLUMNS) + "\r\n"
    "pay_k2,agt_9x,Anna Agent,anna@partners.example,USD,9.90,990,2,confirmed,bank transfer #4471,"
    "2024-06-01T00:00:00Z,2024-06-01T09:00:00Z,2024-06-02T10:00:00Z\r\n"
)


def _param(name: str, schema: Any, description: str = "") -> OpenApiParameter:
    return OpenApiParameter(name, schema, OpenApiParameter.QUERY, required=False, description=description)


class _CsvView(APIView):
    """A Bearer-key read answering CSV; errors stay JSON whatever the client's ``Accept`` says."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)


class CommissionExportView(_CsvView):
    """``GET /api/commissions/export.csv``."""

    @extend_schema(
        operation_id="commissions_export", tags=["commissions"], summary="Export ledger entries as CSV",
        description=(
            "The workspace's ledger entries, oldest first, with the filters and status rules of "
            "`GET /api/commissions` (all pages, no cursor), plus `payoutId` for the entries one payout covers. "
            f"Columns: {', '.join(LEDGER_COLUMNS)} (the API's fields; `amount` in major units, signed). "
            + _CSV_DESCRIPTION),
        parameters=[
            AS_OF,
            _param("agentId", OpenApiTypes.STR),
            _param("status", {"type": "string", "enum": list(selectors.STATUSES)}),
            _param("currency", OpenApiTypes.STR),
            _param("kind", {"type": "string", "enum": list(selectors.KINDS)}),
            _param("paymentRef", OpenApiTypes.STR),
            _param("customerId", OpenApiTypes.STR),
            _param("payoutId", OpenApiTypes.STR, "Only the entries this payout covers (pay_…)."),
        ],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The ledger as CSV.",
                                                      examples=[OpenApiExample("ledger", value=_LEDGER_SAMPLE)]),
                   **READ_ERRORS},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        params = request.query_params
        workspace_id = request.auth.workspace_id
        lines = ledger_export(
            workspace_id=workspace_id, as_of=as_of_param(request), agent_id=params.get("agentId") or None,
            status=query_choice(request, "status", selectors.STATUSES), currency=_currency(request),
            kind=query_choice(request, "kind", selectors.KINDS), payment_ref=params.get("paymentRef") or None,
            customer_id=params.get("customerId") or None, payout_id=params.get("payoutId") or None,
        )
        return csv_response(lines, f"refairn-ledger-{workspace_id}-{_stamp()}.csv")


class PayoutExportView(_CsvView):
    """``GET /api/payouts/export.csv``: the payout file."""

    @extend_schema(
        operation_id="payouts_export", tags=["payouts"],
        summary="The payout file (CSV): one row per agent and currency",
        description=(
            "One row per payout (a payout is one agent and one currency), oldest first, with the agent's name and "
            "email, the net amount and how many entries it covers; filters as `GET /api/payouts`. "
            "`GET /api/commissions/export.csv?payoutId=…` lists a payout's entries. "
            f"Columns: {', '.join(PAYOUT_COLUMNS)}. " + _CSV_DESCRIPTION),
        parameters=[
            _param("agentId", OpenApiTypes.STR),
            _param("status", {"type": "string", "enum": list(Payout.Status.values)}),
            _param("currency", OpenApiTypes.STR),
        ],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The payout file.",
                                                      examples=[OpenApiExample("payouts", value=_PAYOUT_SAMPLE)]),
                   **READ_ERRORS},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        workspace_id = request.auth.workspace_id
        payouts = selectors.payout_list(
            workspace_id=workspace_id, agent_id=request.query_params.get("agentId") or None,
            status=query_choice(request, "status", tuple(Payout.Status.values)), currency=_currency(request))
        return csv_response(payout_file(payouts), f"refairn-payouts-{workspace_id}-{_stamp()}.csv")


# --- admin actions (listed in commissions.admin) --------------------------------------------------

@admin.action(description="Export the selected entries as CSV")
def export_entries_csv(modeladmin: admin.ModelAdmin, request: HttpRequest,
                       queryset: QuerySet[LedgerEntry]) -> StreamingHttpResponse:
    """The selected entries (already limited to the operator's workspaces), status as of now."""
    return csv_response(entries_export(queryset, as_of=timezone.now()), f"refairn-ledger-{_stamp()}.csv")


@admin.action(description="Download the payout file (CSV) for the selected payouts")
def export_payout_file(modeladmin: admin.ModelAdmin, request: HttpRequest,
                       queryset: QuerySet[Payout]) -> StreamingHttpResponse:
    """One row per selected payout (agent and currency), for the bank transfer batch."""
    payouts = Payout.objects.filter(pk__in=queryset.values("pk"))
    return csv_response(payout_file(payouts, bom=True), f"refairn-payouts-{_stamp()}.csv")
