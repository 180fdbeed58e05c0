"""Fewer indexes on the tables a projection batch writes.

The workspace foreign keys lose their own indexes (every table's unique key or composite indexes
lead with the workspace), and on PostgreSQL the ``varchar_pattern_ops`` copy Django adds for the
customers' ``id`` goes: nothing searches ids by prefix. Each index costs every row a rebuild or a
backlog writes.
"""

import django.db.models.deletion
from django.db import migrations, models

_PATTERN_INDEXES = (("attribution_customer", "id"),)


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
        ('attribution', '0004_payment_alias_both_ways'),
        ('ingestion', '0003_lean_store_indexes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='attributionrefusal',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.AlterField(
            model_name='click',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.AlterField(
            model_name='customer',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.AlterField(
            model_name='paymentattribution',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.AlterField(
            model_name='paymentrecord',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.AlterField(
            model_name='providercustomerlink',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.AlterField(
            model_name='referralcode',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.AlterField(
            model_name='subscriptionlink',
            name='workspace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ingestion.workspace'),
        ),
        migrations.RunPython(drop_pattern_indexes, create_pattern_indexes),
    ]
