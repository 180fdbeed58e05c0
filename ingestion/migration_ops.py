"""Operations the apps' migrations share."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def drop_pattern_indexes(*columns: tuple[str, str]) -> migrations.RunPython:
    """Drop the ``varchar_pattern_ops`` copies Django adds on PostgreSQL for text keys (reversible).

    Django makes one for every indexed text column so that ``LIKE 'prefix%'`` can use an index;
    nothing here searches ids by prefix, and each index costs every row written. ``AlterField``
    drops the copy of a field whose index it removes, but not that of a primary key: ``columns``
    are those, as ``(table, column)``.
    """

    def drop(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            for table, column in columns:
                cursor.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
                    "AND indexdef LIKE %s", [table, f"%({column} varchar_pattern_ops)%"])
                for (name,) in cursor.fetchall():
                    schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")

    def create(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for table, column in columns:
            name = schema_editor.quote_name(f"{table}_{column}_like")
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column} varchar_pattern_ops)")

    return migrations.RunPython(drop, create)


def set_fillfactor(table: str, percent: int) -> migrations.RunPython:
    """Leave ``100 - percent`` % of each page of ``table`` free on PostgreSQL (reversible; nothing elsewhere).

    A row updated in place of itself on the same page is a heap-only tuple: none of the table's
    indexes gets a new entry. That needs room on the page, which a table filled by ``COPY`` and
    never vacuumed (autovacuum may be off) does not have. ``TRUNCATE`` keeps the setting.
    """

    def apply(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} SET (fillfactor = {int(percent)})")

    def revert(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} RESET (fillfactor)")

    return migrations.RunPython(apply, revert)
