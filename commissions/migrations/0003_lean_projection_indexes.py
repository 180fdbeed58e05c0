"""Fewer indexes on the tables a ledger batch writes.

The workspace foreign keys lose their own indexes (every table's unique key or composite indexes
lead with the workspace; payout lines keep theirs), and on PostgreSQL the ``varchar_pattern_ops``
copies Django adds for the text primary keys go: nothing searches ids by prefix.
"""

import django.db.models.deletion
from django.db import migrations, models

from ingestion.migration_ops import drop_pattern_indexes


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
        drop_pattern_indexes(("commissions_ledgerentry", "id"), ("commissions_ledgerpayment", "id"),
                         ("commissions_paymentdispute", "id"), ("commissions_payout", "id")),
    ]
