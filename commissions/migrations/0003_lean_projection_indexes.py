"""Fewer indexes on the tables a ledger batch writes.

The workspace foreign keys lose their own indexes (every table's unique key or composite indexes
lead with the workspace; payout lines keep theirs), and on PostgreSQL the ``varchar_pattern_ops``
copies Django adds for the text primary keys go: nothing searches ids by prefix.
"""

import django.db.models.deletion
from django.db import migrations, models

_PATTERN_INDEXES = (("commissions_ledgerentry", "id"), ("commissions_ledgerpayment", "id"),
                    ("commissions_paymentdispute", "id"), ("commissions_payout", "id"))


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
        ('commissions', '0002_ledgerpayment_voided_entry_ids'),
        ('ingestion', '0003_lean_store_indexes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='ledgerentry',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.AlterField(
            model_name='ledgerpayment',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.AlterField(
            model_name='ledgertrail',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.AlterField(
            model_name='paymentdispute',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.AlterField(
            model_name='payout',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.RunPython(drop_pattern_indexes, create_pattern_indexes),
    ]
