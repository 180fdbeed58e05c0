"""``ingestion.bulk_writes``: the projectors' COPY inserts and array updates write what the ORM would."""

from __future__ import annotations

import pytest

from attribution.models import ReferralCode
from ingestion.bulk_writes import insert_rows, update_rows

pytestmark = pytest.mark.django_db


def _code(workspace_id: str, code: str, **fields: object) -> ReferralCode:
    values: dict[str, object] = {
        "workspace_id": workspace_id, "code": code, "enrollment_id": "enr_1", "agent_id": "agt_1",
        "program_id": "prg_1", "terms": {"referral": {"type": "percent", "value": "20"}, "note": "naïve\t\"q\"\n"},
        "status": ReferralCode.Status.APPROVED, "decided_event_id": "evt_1", "decided_position": 7,
        "approved_position": None,
    }
    values.update(fields)
    return ReferralCode(**values)


def _stored(code: str) -> dict[str, object]:
    return ReferralCode.objects.filter(code=code).values(
        "workspace_id", "enrollment_id", "agent_id", "agent_email", "terms", "status", "approved_position",
        "decided_position").get()


def test_inserted_rows_read_back_as_the_orm_would_have_written_them(tenant):
    ws = tenant.workspace.id
    ReferralCode.objects.bulk_create([_code(ws, "ORM")])
    insert_rows(ReferralCode, [_code(ws, "COPY"), _code(ws, "COPY2", terms=[], approved_position=3)])
    orm, copied = _stored("ORM"), _stored("COPY")
    assert copied == orm
    assert copied["terms"] == {"referral": {"type": "percent", "value": "20"}, "note": "naïve\t\"q\"\n"}
    assert copied["status"] == "approved"
    assert copied["approved_position"] is None
    assert (_stored("COPY2")["terms"], _stored("COPY2")["approved_position"]) == ([], 3)


def test_updated_rows_change_only_the_named_fields(tenant):
    ws = tenant.workspace.id
    insert_rows(ReferralCode, [_code(ws, "A"), _code(ws, "B")])
    rows = list(ReferralCode.objects.filter(code__in=["A", "B"]).order_by("code"))
    for row in rows:
        row.status = ReferralCode.Status.REMOVED
        row.terms = {"changed": True}
        row.agent_id = "agt_ignored"
    update_rows(ReferralCode, rows, ["status", "terms"])
    assert [(_stored(c)["status"], _stored(c)["terms"], _stored(c)["agent_id"]) for c in "AB"] == [
        ("removed", {"changed": True}, "agt_1")] * 2


def test_nothing_to_write_runs_no_query(tenant, django_assert_num_queries):
    with django_assert_num_queries(0):
        insert_rows(ReferralCode, [])
        update_rows(ReferralCode, [], ["status"])
