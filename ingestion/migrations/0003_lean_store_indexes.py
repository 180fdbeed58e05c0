"""Fewer indexes on the two tables every webhook and API event writes.

The workspace foreign keys lose their own indexes (the unique key and the composite indexes lead
with the workspace), and on PostgreSQL the ``varchar_pattern_ops`` copies Django adds for the
``event_id`` and delivery ``id`` columns go: nothing searches those ids by prefix.
"""

import django.db.models.deletion
from django.db import migrations, models

from ingestion.migration_ops import drop_pattern_indexes


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
        drop_pattern_indexes(("ingestion_event", "event_id"), ("ingestion_delivery", "id")),
    ]
