"""The projection tables' schema: what the database checks on every projected row, and what it leaves
to the projector."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import ProtectedError

from ingestion.models import Workspace
from ingestion.projections import registered
from tests.ingestion.test_bulk_writes import _code

pytestmark = pytest.mark.django_db


def _projection_models() -> list[type]:
    return [model for projector in registered().values() for model in getattr(projector, "models", ())]


def test_no_projection_table_has_the_database_check_its_workspace_at_every_commit():
    workspace_table = Workspace._meta.db_table
    checked = []
    with connection.cursor() as cursor:
        for model in _projection_models():
            for name, constraint in connection.introspection.get_constraints(cursor, model._meta.db_table).items():
                if constraint["foreign_key"] and constraint["foreign_key"][0] == workspace_table:
                    checked.append((model._meta.db_table, name))
    assert _projection_models(), "no projector declares its models"
    assert checked == []


def test_a_workspace_with_projection_rows_still_cannot_be_deleted(tenant):
    from attribution.models import ReferralCode

    ReferralCode.objects.bulk_create([_code(tenant.workspace.id, "KEEP")])
    with pytest.raises(ProtectedError) as refused:
        Workspace.objects.filter(pk=tenant.workspace.pk).delete()
    assert any(isinstance(row, ReferralCode) for row in refused.value.protected_objects)


def _fillfactor(table: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [table])
        options = cursor.fetchone()[0] or []
    return next((option.split("=", 1)[1] for option in options if option.startswith("fillfactor=")), None)


@pytest.mark.postgres
def test_customer_pages_keep_room_for_the_updates_every_payment_makes():
    from attribution.models import Customer

    assert _fillfactor(Customer._meta.db_table) == "50"


@pytest.mark.postgres
def test_a_rebuild_keeps_the_room_left_on_customer_pages(tenant):
    from attribution.models import Customer
    from ingestion.projections import rebuild

    rebuild()
    assert _fillfactor(Customer._meta.db_table) == "50"
