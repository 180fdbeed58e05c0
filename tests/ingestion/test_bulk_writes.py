"""``ingestion.bulk_writes``: the projectors' COPY inserts and array updates write what the ORM would."""

from __future__ import annotations

import pytest
from django.db import NotSupportedError, connection, transaction
from django.db.models import Model

from attribution.models import Customer, PaymentRecord, ReferralCode
from commissions.models import LedgerEntry
from ingestion.bulk_writes import clear_tables, insert_rows, row_maker, update_rows
from ingestion.models import ProjectionCheckpoint
from ingestion.workspaces import workspace_create

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


def _fields(row: Model) -> dict[str, object]:
    return {f.attname: getattr(row, f.attname) for f in type(row)._meta.concrete_fields}


@pytest.mark.parametrize("model", [Customer, PaymentRecord, ReferralCode, LedgerEntry, ProjectionCheckpoint])
def test_a_row_maker_builds_what_the_model_constructor_builds(model):
    given = {"workspace_id": "ws_1"} if any(f.attname == "workspace_id" for f in model._meta.concrete_fields) else {}
    made, constructed = row_maker(model)(**given), model(**given)
    expected = _fields(constructed)
    if model is ProjectionCheckpoint:  # a callable default (timezone.now): called for each row
        assert made.updated_at is not None
        expected["updated_at"] = made.updated_at
    assert _fields(made) == expected
    assert made._state.adding
    assert made._state.db is None


def test_a_made_row_saves_and_reads_back_like_a_constructed_one(tenant):
    ws = tenant.workspace.id
    row_maker(ReferralCode)(**{f.attname: getattr(_code(ws, "MADE"), f.attname)
                               for f in ReferralCode._meta.concrete_fields if f.attname != "id"}).save()
    ReferralCode.objects.bulk_create([_code(ws, "BUILT")])
    assert _stored("MADE") == _stored("BUILT")


def test_a_row_maker_refuses_a_name_that_is_not_a_field():
    with pytest.raises(TypeError, match="workspace"):
        row_maker(ReferralCode)(workspace="ws_1")


def test_set_ids_gives_new_rows_their_ids_in_row_order(tenant):
    ws = tenant.workspace.id
    rows = [_code(ws, "FIRST"), _code(ws, "SECOND")]
    insert_rows(ReferralCode, rows, set_ids=True)
    assert rows[0].pk is not None
    assert rows[0].pk < rows[1].pk
    assert list(ReferralCode.objects.order_by("pk").values_list("pk", "code")) == [
        (rows[0].pk, "FIRST"), (rows[1].pk, "SECOND")]


# --- ``field__any_of``: the projectors' key lookups ------------------------------------------

_KEYS = ["A", "B", "C", "D"]


def _codes_matching(ws: str, keys: list[str]) -> list[str]:
    return sorted(ReferralCode.objects.filter(workspace_id=ws, code__any_of=keys).values_list("code", flat=True))


def test_any_of_finds_the_rows_whose_key_is_listed(tenant):
    ws = tenant.workspace.id
    insert_rows(ReferralCode, [_code(ws, key) for key in _KEYS])
    assert _codes_matching(ws, ["B", "D", "missing"]) == ["B", "D"]


def test_any_of_an_empty_list_matches_nothing(tenant):
    ws = tenant.workspace.id
    insert_rows(ReferralCode, [_code(ws, key) for key in _KEYS])
    assert _codes_matching(ws, []) == []


@pytest.mark.parametrize("odd", ["line\nbreak", "", "tab\tand 'quote'", "back\\slash"])
def test_any_of_matches_keys_that_hold_the_separator_or_nothing(tenant, odd):
    ws = tenant.workspace.id
    insert_rows(ReferralCode, [_code(ws, key) for key in [*_KEYS, odd]])
    assert _codes_matching(ws, [odd, "A"]) == sorted([odd, "A"])
    assert _codes_matching(ws, [odd]) == [odd]


def test_any_of_works_on_a_foreign_key_and_takes_a_set(tenant):
    ws = tenant.workspace.id
    insert_rows(ReferralCode, [_code(ws, key) for key in _KEYS])
    other = workspace_create(name="Other", base_currency="USD").workspace.id
    insert_rows(ReferralCode, [_code(other, key) for key in _KEYS])
    found = ReferralCode.objects.filter(workspace_id__any_of={ws}, code__any_of={"A", "C"})
    assert sorted(found.values_list("workspace_id", "code")) == [(ws, "A"), (ws, "C")]


def test_rows_may_be_plain_objects_with_the_models_fields(tenant):
    """A projector's own dataclass rows are inserted as they are: the same row as a model instance."""
    from dataclasses import dataclass

    @dataclass
    class CodeRow:  # ReferralCode's fields, without the generated id
        workspace_id: str
        code: str
        enrollment_id: str
        agent_id: str
        agent_email: str
        program_id: str
        product_id: str
        terms: dict
        status: str
        approved_event_id: str
        approved_position: int | None
        decided_event_id: str
        decided_position: int

    ws = tenant.workspace.id
    plain = CodeRow(ws, "PLAIN", "enr_1", "agt_1", "", "prg_1", "", {"referral": {"type": "percent", "value": "20"},
                    "note": "naïve\t\"q\"\n"}, ReferralCode.Status.APPROVED, "", None, "evt_1", 7)
    insert_rows(ReferralCode, [plain])
    insert_rows(ReferralCode, [_code(ws, "MODEL")])
    assert _stored("PLAIN") == _stored("MODEL")


# --- clear_tables (a rebuild's reset) -----------------------------------------------------------

def test_clear_tables_empties_every_table_given(tenant):
    ws = tenant.workspace.id
    insert_rows(ReferralCode, [_code(ws, "A"), _code(ws, "B")])
    ProjectionCheckpoint.objects.create(name="somewhere", position=3)
    clear_tables([ReferralCode, ProjectionCheckpoint])
    assert not ReferralCode.objects.exists()
    assert not ProjectionCheckpoint.objects.exists()


@pytest.mark.postgres
def test_clear_tables_leaves_no_dead_rows_behind_on_postgresql(tenant):
    """A TRUNCATE gives the table new, empty files: the rows and their index entries are gone,
    not left dead for a vacuum (a DELETE keeps the same file, every row still in it)."""
    ws = tenant.workspace.id
    insert_rows(ReferralCode, [_code(ws, f"C{i}") for i in range(50)])
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_filenode('attribution_referralcode')")
        before = cursor.fetchone()[0]
        clear_tables([ReferralCode])
        cursor.execute("SELECT pg_relation_filenode('attribution_referralcode'), "
                       "pg_relation_size('attribution_referralcode')")
        after, size = cursor.fetchone()
    assert after != before
    assert size == 0


@pytest.mark.postgres
def test_clear_tables_refuses_when_a_table_outside_the_list_points_into_it(tenant):
    """Never a silent CASCADE: a foreign key from a table not given makes the TRUNCATE fail."""
    ws = tenant.workspace.id
    insert_rows(ReferralCode, [_code(ws, "A")])
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE refairn_test_pointer (code_id bigint REFERENCES attribution_referralcode (id))")
        cursor.execute("INSERT INTO refairn_test_pointer SELECT id FROM attribution_referralcode")
    with pytest.raises(NotSupportedError), transaction.atomic():
        clear_tables([ReferralCode])
    assert ReferralCode.objects.filter(code="A").exists()
