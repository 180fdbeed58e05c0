"""Properties of the importer over generated files: text survives quoting, and lines are exact."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.csv_import import ImportResult
from ingestion.models import Event
from ingestion.workspaces import CreatedWorkspace

from .conftest import make_csv, row

pytestmark = pytest.mark.django_db
_counter = itertools.count()
# Commas, quotes, new lines (LF and CRLF), spaces and non-ASCII: what breaks naive CSV readers.
_TEXT = st.lists(st.sampled_from([*'ab ,"\'é;', "\n", "\r\n"]), max_size=30).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_TEXT, _TEXT, st.booleans()), min_size=1, max_size=8), bom=st.booleans(),
       newline=st.sampled_from(["\r\n", "\n"]))
def test_quoted_text_round_trips_and_bad_rows_are_reported_on_their_physical_line(
        run: Callable[..., ImportResult], tenant: CreatedWorkspace, rows: list[tuple[str, str, bool]], bom: bool,
        newline: str) -> None:
    """Names and plans with commas, quotes and new lines arrive intact; each bad row's line is its first line."""
    batch = next(_counter)
    cells = []
    expected_bad_lines = []
    line = 2
    for index, (name, plan, bad) in enumerate(rows):
        cells.append(row(f"p{batch}-{index}@example.com", name=name, plan=plan, amount="$1" if bad else "1.00",
                         code=""))
        if bad:
            expected_bad_lines.append(line)
        # csv.writer writes the cell's own new lines verbatim; the row's terminator adds one line.
        line += 1 + sum(text.count("\n") for text in (name, plan))
    result = run(make_csv(cells, bom=bom, newline=newline))

    assert [error.line for error in result.errors] == expected_bad_lines
    for index, (name, plan, bad) in enumerate(rows):
        email = f"p{batch}-{index}@example.com"
        customers = Event.objects.filter(workspace=tenant.workspace, source_event_id=f"customer:{email}")
        if bad:
            assert not customers.exists()
            continue
        assert customers.get().data["name"] == name.strip()
        payment = Event.objects.get(workspace=tenant.workspace, type="payment.succeeded", data__email=email)
        assert payment.data.get("plan", "") == plan.strip()
