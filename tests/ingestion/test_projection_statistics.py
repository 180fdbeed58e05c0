"""The runner keeps planner statistics of fast-growing projection tables fresh (``refresh_statistics``).

A rebuild grows tables from empty to millions of rows in minutes; planned with the statistics of
an empty table, PostgreSQL read a whole workspace's customers for each batch lookup. These tests
run on real PostgreSQL, with committed rows (statistics counters only move at commit).
"""

from __future__ import annotations

import pytest
from django.db import connection

from attribution.models import ReferralCode
from attribution.projector import AttributionProjector
from ingestion.bulk_writes import insert_rows
from ingestion.projections import STATISTICS_MIN_CHANGES, STATISTICS_TARGET, refresh_statistics
from ingestion.workspaces import CreatedWorkspace

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _codes(workspace_id: str, count: int) -> list[ReferralCode]:
    return [ReferralCode(workspace_id=workspace_id, code=f"C{i:05d}", enrollment_id=f"enr_{i}", agent_id="agt",
                         program_id="prg", terms={}, status=ReferralCode.Status.APPROVED, decided_event_id="evt",
                         decided_position=i) for i in range(count)]


def _flush_statistics() -> None:
    """Make this session's pending table counters visible now (PostgreSQL 15+), not within ~1 s."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT 1")


def _estimated_rows(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        return cursor.fetchone()[0]


def _settle() -> None:
    """Start from fresh statistics, whatever earlier tests committed."""
    _flush_statistics()
    refresh_statistics(AttributionProjector())


def test_a_table_that_grew_past_the_threshold_is_analyzed_once(tenant: CreatedWorkspace) -> None:
    _settle()
    insert_rows(ReferralCode, _codes(tenant.workspace.id, STATISTICS_MIN_CHANGES + 500))
    _flush_statistics()

    analyzed = refresh_statistics(AttributionProjector())

    table = ReferralCode._meta.db_table
    assert table in analyzed
    assert _estimated_rows(table) == STATISTICS_MIN_CHANGES + 500
    _flush_statistics()
    assert table not in refresh_statistics(AttributionProjector())


def test_a_table_with_few_changes_is_left_to_autovacuum(tenant: CreatedWorkspace) -> None:
    _settle()
    insert_rows(ReferralCode, _codes(tenant.workspace.id, 20))
    _flush_statistics()

    assert ReferralCode._meta.db_table not in refresh_statistics(AttributionProjector())


def test_a_table_whose_rows_change_but_do_not_grow_is_not_analyzed_again(tenant: CreatedWorkspace) -> None:
    """A rebuild updates each customer at every payment: updates alone never trigger an ANALYZE."""
    _settle()
    insert_rows(ReferralCode, _codes(tenant.workspace.id, STATISTICS_MIN_CHANGES + 500))
    _flush_statistics()
    assert ReferralCode._meta.db_table in refresh_statistics(AttributionProjector())
    for status in (ReferralCode.Status.REMOVED, ReferralCode.Status.APPROVED, ReferralCode.Status.REMOVED):
        ReferralCode.objects.filter(workspace_id=tenant.workspace.id).update(status=status)
    _flush_statistics()

    assert ReferralCode._meta.db_table not in refresh_statistics(AttributionProjector())


def test_a_growth_analyze_takes_a_small_sample(tenant: CreatedWorkspace) -> None:
    """Statistics of STATISTICS_TARGET buckets (a 3,000-row sample), not the server's default of 100."""
    _settle()
    insert_rows(ReferralCode, _codes(tenant.workspace.id, STATISTICS_MIN_CHANGES + 500))
    _flush_statistics()

    assert ReferralCode._meta.db_table in refresh_statistics(AttributionProjector())

    with connection.cursor() as cursor:
        cursor.execute("SELECT array_length(histogram_bounds, 1) FROM pg_stats WHERE tablename = %s "
                       "AND attname = 'decided_position'", [ReferralCode._meta.db_table])
        (buckets,) = cursor.fetchone()
    assert buckets == STATISTICS_TARGET + 1
