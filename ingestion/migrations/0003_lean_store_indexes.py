"""Fewer indexes on the two tables every webhook and API event writes.

The workspace foreign keys lose their own indexes (the unique key and the composite indexes lead
with the workspace), and on PostgreSQL the ``varchar_pattern_ops`` copies Django adds for the
``event_id`` and delivery ``id`` columns go: nothing searches those ids by prefix.
"""

import django.db.models.deletion
from django.db import migrations, models

_PATTERN_INDEXES = (("ingestion_event", "event_id"), ("ingestion_delivery", "id"))


def drop_pattern_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table, column in _PATTERN_INDEXES:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
                "AND indexdef LIKE %s", [table, f"%({column} varchar_pattern_ops)%"])
            for (name,) in cursor.fetchall():
                schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def create_pattern_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in _PATTERN_INDEXES:
        name = schema_editor.quote_name(f"{table}_{column}_like")
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column} varchar_pattern_ops)")


class Migration(migrations.Migration):

    dependencies = [
        ("ingestion", "0002_event_append_only_trigger"),
    ]

    operations = [
        migrations.AlterField(
            model_name="delivery",
            name="workspace",
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="+", to="ingestion.workspace"),
        ),
        migrations.AlterField(
            model_name="event",
            name="workspace",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                    to="ingestion.workspace"),
        ),
        migrations.RunPython(drop_pattern_indexes, create_pattern_indexes),
    ]
