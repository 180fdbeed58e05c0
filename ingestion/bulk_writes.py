"""Set-at-a-time writes for projectors: insert by COPY, update by primary key from arrays.

A projection batch writes thousands of rows into its own tables inside the runner's transaction.
Django's ``bulk_create`` and ``bulk_update`` build those statements value by value in Python,
and with psycopg's client-side binding every array or literal is quoted in Python too: profiled
on a 100,000-event backlog (bench/lag.py), that was a third of the projection's time. Here each
row travels once, through ``COPY`` (psycopg's C copy writer) or one ``UPDATE … FROM unnest(…)``
per chunk. Plain fields (text, integers, booleans, datetimes) send the row's Python value, which
a projector has built of the field's type; every other field (JSON above all) is prepared by the
field itself (``get_db_prep_save``), so what lands is what the ORM would have written. Other
databases (the embedded SQLite default) get the ORM's own bulk methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from typing import Any, TypeVar

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import (
    NOT_PROVIDED,
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    Field,
    ForeignKey,
    ForeignObject,
    IntegerField,
    Lookup,
    Model,
    PositiveIntegerField,
    TextField,
)
from django.db.models.base import ModelState

M = TypeVar("M", bound=Model)

CHUNK = 500
# Fields whose Python value (already of the field's type: a projector builds its rows itself) is
# what the database receives; every other field goes through ``get_db_prep_save``.
_PLAIN = (CharField, TextField, IntegerField, BigIntegerField, PositiveIntegerField, BooleanField, DateTimeField)


def _is_plain(field: Field) -> bool:
    target = field.target_field if isinstance(field, ForeignKey) else field
    return type(target) in _PLAIN or isinstance(target, AutoField)


def _preparer(field: Field, connection: Any) -> Any:
    """A function from a row to the value a field that is not plain writes: the field prepares it."""
    return lambda row: field.get_db_prep_save(field.pre_save(row, True), connection)


def _row_writer(fields: Sequence[Field], connection: Any) -> tuple[list[Field], Callable[[Any], tuple]]:
    """The columns to COPY (plain fields first) and a function from a row to its values in that order.

    The plain fields are read by one ``attrgetter`` call per row, in C: a projection batch copies
    tens of thousands of rows, and a Python call per field and row was most of the copy's time.
    """
    plain = [f for f in fields if _is_plain(f)]
    other = [f for f in fields if not _is_plain(f)]
    read = attrgetter(*(f.attname for f in plain)) if plain else (lambda row: ())
    if len(plain) == 1:
        single = read
        read = lambda row: (single(row),)  # noqa: E731
    prepares = [_preparer(f, connection) for f in other]
    if not prepares:
        return plain, read
    return [*plain, *other], lambda row: (*read(row), *(prepare(row) for prepare in prepares))


def row_maker(model: type[M]) -> Callable[..., M]:
    """A constructor of new ``model`` rows from attribute names, ~5x cheaper than ``model(**values)``.

    ``Model.__init__`` walks every field and asks each for its default on every call: for the
    tens of thousands of rows a projection batch creates, that was a fifth of a rebuild's time
    (bench/replay.py). Here the constant defaults are computed once and copied, callable ones
    are called, and the given values (by attname: ``workspace_id``, not ``workspace``) set
    over them. The row is what ``model(**values)`` builds (``tests/ingestion/test_bulk_writes.py``),
    except that no ``pre_init``/``post_init`` signal is sent: projection rows have no receivers.
    """
    constant: dict[str, Any] = {}
    computed: list[tuple[str, Callable[[], Any]]] = []
    for field in model._meta.concrete_fields:
        if field.default is not NOT_PROVIDED and callable(field.default):
            computed.append((field.attname, field.default))
        else:
            constant[field.attname] = field.get_default()
    known = frozenset(constant) | {name for name, _ in computed}
    new = object.__new__

    def make(**values: Any) -> M:
        if not values.keys() <= known:
            raise TypeError(f"{model.__name__} has no field(s) {', '.join(sorted(values.keys() - known))}")
        row = new(model)
        state = row.__dict__
        state["_state"] = ModelState()
        state.update(constant)
        for name, default in computed:
            state[name] = default()
        state.update(values)
        return row

    return make


def _as_instance(model: type[M], row: Any) -> M:
    if isinstance(row, model):
        return row
    return model(**{f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields
                    if hasattr(row, f.attname)})


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


_COLUMN_TYPES: dict[tuple[str, str], dict[str, int]] = {}


def _column_types(cursor: Any, table: str, columns: Sequence[str]) -> list[int]:
    """The type oids of ``table``'s ``columns``, read from the catalog once per table and process.

    Projection rows are copied in COPY's binary format: psycopg formats a datetime, an integer or
    a string about twice as fast in binary as in text (a projection batch's COPY was a fifth of a
    backlog drain's CPU, most of it formatting timestamps). Binary needs each column's exact type.
    """
    key = (cursor.connection.info.dbname, table)
    known = _COLUMN_TYPES.get(key)
    if known is None or not all(column in known for column in columns):
        cursor.execute("SELECT attname, atttypid::int FROM pg_attribute "
                       "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped", [table])
        known = _COLUMN_TYPES[key] = dict(cursor.fetchall())
    return [known[column] for column in columns]


def _copy_binary(cursor: Any, table: str, columns: str, types: list[int], rows: Sequence[Any],
                 values: Callable[[Any], tuple]) -> None:
    """COPY ``rows`` (their ``values``) into ``columns`` of ``table``, of those ``types``, in binary."""
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(values(row))


def insert_rows(model: type[Model], rows: Sequence[Any], *, set_ids: bool = False) -> None:
    """INSERT new ``rows`` of ``model`` (no conflict expected).

    A row is a ``model`` instance, or any object with the model's fields as attributes (by
    attname; a generated primary key may be missing), such as the ledger's own ``Entry``
    dataclass: on PostgreSQL it is copied as it is, where building a model instance for each of
    a batch's thousands of entries, from keyword arguments, was a tenth of the ledger's CPU.
    Rows whose primary key the database generates keep ``pk = None`` afterwards, unlike
    ``bulk_create``, unless ``set_ids``: their ids are then drawn from the table's sequence first
    (one query), in row order, so a caller can update the rows later by primary key.
    """
    if not rows:
        return
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        # bulk_create sets generated ids itself, on model instances only.
        model.objects.bulk_create([_as_instance(model, row) for row in rows], batch_size=CHUNK)
        return
    meta = model._meta
    pk = meta.pk
    quote = connection.ops.quote_name
    if set_ids and isinstance(pk, AutoField):
        missing = [row for row in rows if getattr(row, pk.attname) is None]
        if missing:
            with connection.cursor() as cursor:
                cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                               [quote(meta.db_table), pk.column, len(missing)])
                for row, (value,) in zip(missing, sorted(cursor.fetchall()), strict=True):
                    setattr(row, pk.attname, value)
    fields = [f for f in meta.concrete_fields
              if not (f.primary_key and isinstance(f, AutoField)
                      and all(getattr(row, f.attname, None) is None for row in rows))]
    ordered, values = _row_writer(fields, connection)
    columns = ", ".join(quote(f.column) for f in ordered)
    with connection.cursor() as cursor:
        types = _column_types(cursor, meta.db_table, [f.column for f in ordered])
        _copy_binary(cursor, quote(meta.db_table), columns, types, rows, values)


def update_rows(model: type[Model], rows: Sequence[Model], fields: Sequence[str]) -> None:
    """UPDATE ``fields`` of ``rows`` by primary key: COPY into a temporary table, then one UPDATE.

    Django's ``bulk_update`` builds a ``CASE WHEN pk = … THEN …`` expression per field and row,
    and array parameters (``UPDATE … FROM unnest(%s::text[], …)``) are quoted element by element
    in Python by psycopg's client-side binding: at 300,000 events that quoting was the largest
    single cost of a rebuild (bench/replay.py). COPY formats the rows in C, and the UPDATE joins
    on the primary key. The table lives until the end of the statement's transaction at most.
    """
    if not rows:
        return
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        model.objects.bulk_update(rows, list(fields), batch_size=CHUNK)
        return
    meta = model._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    ordered, values = _row_writer(columns, connection)
    quote = connection.ops.quote_name
    table = quote(f"refairn_update_{meta.db_table}")
    names = ", ".join(quote(f.column) for f in ordered)
    sets = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in columns[1:])
    pk = quote(meta.pk.column)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # The target's own column types: a binary COPY sends each value in its column's exact format.
        cursor.execute(f"CREATE TEMPORARY TABLE {table} ON COMMIT DROP AS "
                       f"SELECT {names} FROM {quote(meta.db_table)} WITH NO DATA")
        types = _column_types(cursor, meta.db_table, [f.column for f in ordered])
        _copy_binary(cursor, table, names, types, rows, values)
        cursor.execute(f"UPDATE {quote(meta.db_table)} AS t SET {sets} FROM {table} AS v WHERE t.{pk} = v.{pk}")
        cursor.execute(f"DROP TABLE {table}")


def clear_tables(models: Sequence[type[Model]]) -> None:
    """Empty a projection's tables for a rebuild: one ``TRUNCATE`` of them all on PostgreSQL.

    A ``DELETE`` leaves every row behind as a dead tuple, with its index entries, until a vacuum
    (and autovacuum may be off or late): the rebuild that follows then inserts into indexes that
    still hold every old key, and each unique check visits the dead rows of its key. On the
    1,000,000-event replay those tables had grown to several times their live size. ``TRUNCATE``
    is transactional (rolled back with the rebuild's reset) and needs every table that
    references one of these in the same statement: without ``CASCADE``, a table outside the
    list that points into it makes it fail instead of emptying that table too. PostgreSQL
    refuses to truncate a table with deferred foreign-key checks still pending in the transaction
    (rows written earlier in it, as in a test): those checks are run first, then the constraints,
    all ``INITIALLY DEFERRED`` as Django declares them, are deferred again. Other databases get
    the ORM's ``delete``, in the order given.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        for model in models:
            model.objects.all().delete()
        return
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"TRUNCATE {tables}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@Field.register_lookup
class AnyOf(Lookup):
    """``field__any_of=values``: ``field IN values`` for text keys, sent as ONE parameter on PostgreSQL.

    A projector loads the rows a batch names in chunks of ``CHUNK`` keys. Written as ``__in``,
    Django prepares every value and builds a placeholder per value, and psycopg's client-side
    binding then splits and quotes the statement value by value in Python: profiled on a
    30,000-event backlog (bench/lag.py's shape), that was about a tenth of the projections' time,
    for queries the database answers in a millisecond. Here the keys travel as one text that the
    server splits (``string_to_array``), compared with ``= ANY``, which the column's index serves
    as it serves ``IN``. A key holding the separator, or an empty key (``string_to_array`` of ''
    is an empty array), sends an array instead. Other databases get a plain ``IN``.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self) -> list[str]:
        return [str(value) for value in self.rhs]

    def get_db_prep_lookup(self, value: Any, connection: Any) -> tuple[str, list[Any]]:
        return "%s", [value]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values: list[str] = self.rhs
        if not values:
            raise EmptyResultSet
        if connection.vendor == "postgresql":
            joined = "\n".join(values)
            if all(values) and joined.count("\n") == len(values) - 1:
                return f"{lhs} = ANY(string_to_array(%s, E'\\n'))", [*lhs_params, joined]
            return f"{lhs} = ANY(%s::text[])", [*lhs_params, values]
        placeholders = ", ".join(["%s"] * len(values))
        return f"{lhs} IN ({placeholders})", [*lhs_params, *values]


ForeignObject.register_lookup(AnyOf)  # related fields keep lookups of their own: compare the key column
