"""Half of each page of the customer table left free, so that its updates stay on their page.

A customer row is rewritten at almost every payment of the customer (its payment count, its
first and last payment), and a rewrite that finds no room on its page adds an entry to each of
the table's six indexes: a 1,000,000-event rebuild (bench/replay.py) spent an eighth of its time
in those updates, half of which were heap-only. With the room, nearly all of them are
(121 -> 103 s on the same database). The room is kept on pages written from here on: an
existing database gets it on all of them at its next rebuild.
"""

from django.db import migrations

from ingestion.migration_ops import set_fillfactor


class Migration(migrations.Migration):
    dependencies = [
        ("attribution", "0006_projection_workspace_unchecked"),
    ]

    operations = [
        set_fillfactor("attribution_customer", 50),
    ]
