"""Refuse UPDATE, DELETE and TRUNCATE on the event store at the database level (PostgreSQL).

The session setting ``refairn.allow_purge = on`` lifts the guard; only the test settings set it,
because the test runner empties tables between tests. Anyone who could set it could also drop
the trigger, so it weakens nothing a database owner could not already do.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION ingestion_event_append_only() RETURNS trigger AS $$
BEGIN
    IF current_setting('refairn.allow_purge', true) = 'on' THEN
        IF TG_OP = 'UPDATE' THEN RETURN NEW; END IF;
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'ingestion_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ingestion_event_no_update_delete
    BEFORE UPDATE OR DELETE ON ingestion_event
    FOR EACH ROW EXECUTE FUNCTION ingestion_event_append_only();
CREATE TRIGGER ingestion_event_no_truncate
    BEFORE TRUNCATE ON ingestion_event
    FOR EACH STATEMENT EXECUTE FUNCTION ingestion_event_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS ingestion_event_no_truncate ON ingestion_event;
DROP TRIGGER IF EXISTS ingestion_event_no_update_delete ON ingestion_event;
DROP FUNCTION IF EXISTS ingestion_event_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("ingestion", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
