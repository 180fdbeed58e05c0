"""Fewer indexes on the tables a projection batch writes.

The workspace foreign keys lose their own indexes (every table's unique key or composite indexes
lead with the workspace), and on PostgreSQL the ``varchar_pattern_ops`` copy Django adds for the
customers' ``id`` goes: nothing searches ids by prefix. Each index costs every row a rebuild or a
backlog writes.
"""

import django.db.models.deletion
from django.db import migrations, models

from ingestion.migration_ops import drop_pattern_indexes


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
        drop_pattern_indexes(("attribution_customer", "id")),
    ]
