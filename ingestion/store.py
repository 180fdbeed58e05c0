"""The append-only event store: one way in (``event_append``), reads by position.

Ordering (issue #2, DESIGN.md "Commit order"): a bigserial taken in one transaction can become
visible after a higher one taken by another, and a projector reading ``position > checkpoint``
would then skip it forever. Appends therefore take one transaction-scoped advisory lock before
they draw positions and hold it until commit, so positions become visible strictly in order and
a reader that follows positions never misses an event. It caps appends at one committing
transaction at a time; measured against the ceiling in ``bench/ingest.py``. On SQLite the
IMMEDIATE transaction mode gives the same serialisation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from .ids import new_id
from .models import Event

# "Refairn" in ASCII: the advisory lock key that serialises appends.
APPEND_LOCK_KEY = 0x526566616972
_COLUMNS = (
    "event_id", "workspace_id", "source", "source_event_id", "type", "occurred_at",
    "recorded_at", "data", "raw", "schema_version", "actor",
)


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended; ``data`` is the canonical snake_case payload."""

    workspace_id: str
    source: str
    source_event_id: str
    type: str
    occurred_at: datetime
    data: dict
    raw: dict | None = None
    schema_version: int = 1
    actor: str = ""
    event_id: str = field(default_factory=lambda: new_id("evt", 24))


@dataclass(frozen=True)
class Appended:
    """The outcome of an append: the stored event's id and position, and whether it is new."""

    event_id: str
    position: int
    created: bool


def event_append(new: NewEvent) -> Appended:
    """Append one event, or return its existing twin (same workspace, source, source_event_id)."""
    return event_append_many([new])[0]


Statement = tuple[str, Sequence[object]]
# Appends up to this many events go as one message (the hot path: a request's one or few events).
# A larger batch (a CSV chunk, an API batch) takes the atomic path (COPY on PostgreSQL, see
# ``_insert_by_copy``), which reads back only the twins.
ONE_MESSAGE_MAX = 100


def event_append_many(news: Sequence[NewEvent], *, before: Sequence[Statement] = (),
                      after: Sequence[Statement] = ()) -> list[Appended]:
    """Append events in one transaction; each result says whether it is new or a twin.

    Idempotency rests on the ``(workspace, source, source_event_id)`` unique constraint with
    ``ON CONFLICT DO NOTHING``, so two racing deliveries of the same event store one row.
    ``before`` and ``after`` are statements (SQL, params) that commit or fail with the events, run
    before and after their insert: a webhook's delivery row goes in, and is settled as a
    duplicate, that way, in the same transaction and round trip.
    """
    if not news:
        return []
    first_seen: dict[tuple[str, str, str], int] = {}
    unique: list[NewEvent] = []
    for index, new in enumerate(news):
        key = (new.workspace_id, new.source, new.source_event_id)
        if key not in first_seen:
            first_seen[key] = index
            unique.append(new)

    from .projections import schedule_run

    if len(unique) <= ONE_MESSAGE_MAX and _one_round_trip():
        # Lock, insert, twins and commit in one message: PostgreSQL runs a multi-statement simple
        # query as one implicit transaction, so the append lock is held until that commit, exactly
        # as in the atomic block below, and a duplicate costs no more round trips than a new event.
        inserted, twins = _insert_in_one_message(unique, before=before, after=after)
        if inserted:
            schedule_run()
    else:
        with transaction.atomic():
            _execute_all(before)
            lock_appends()
            inserted = _insert(unique)
            _execute_all(after)
            missing = [k for k in first_seen if k not in inserted]
            twins = _find(missing) if missing else {}
            if inserted:
                transaction.on_commit(schedule_run)

    results: list[Appended] = []
    claimed: set[tuple[str, str, str]] = set()
    for new in news:
        key = (new.workspace_id, new.source, new.source_event_id)
        if key in inserted and key not in claimed:
            claimed.add(key)
            event_id, position = inserted[key]
            results.append(Appended(event_id, position, True))
        else:
            event_id, position = inserted.get(key) or twins[key]
            results.append(Appended(event_id, position, False))
    return results


def lock_appends(using: str = DEFAULT_DB_ALIAS) -> None:
    """Take the append lock until the current transaction ends (call inside ``atomic``).

    Every insert into the event store must hold it, so positions become visible in order.
    """
    conn = connections[using]
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_KEY])


def _one_round_trip() -> bool:
    """Can this append go as one multi-statement message (PostgreSQL, not inside ``atomic``)?

    Inside an outer transaction the caller's own atomicity applies and statements go one by
    one. Client-side parameter binding (Django's default for psycopg 3) is what lets several
    statements with parameters share one message.
    """
    conn = connections[DEFAULT_DB_ALIAS]  # once: each use of the ``connection`` proxy looks it up again
    if conn.vendor != "postgresql" or conn.in_atomic_block:
        return False
    return not (conn.settings_dict.get("OPTIONS") or {}).get("server_side_binding")


def _execute_all(statements: Sequence[Statement]) -> None:
    for sql, params in statements:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


_Found = dict[tuple[str, str, str], tuple[str, int]]


def _insert_in_one_message(news: Sequence[NewEvent], *, before: Sequence[Statement],
                           after: Sequence[Statement]) -> tuple[_Found, _Found]:
    """Insert ``news`` and read every key back in one message; return (inserted, twins).

    The closing SELECT runs after the insert in the same transaction, so it sees this message's
    rows and every twin committed before the lock was taken: a key whose row carries the event id
    drawn here was inserted now, any other is the earlier twin.
    """
    insert_sql, insert_params = _insert_statement(news, returning=False)
    # One clause per (workspace, source), its ids as a list: the unique index serves each clause
    # (a row-value IN over every key may be planned as a scan of the whole store).
    by_scope: dict[tuple[str, str], list[str]] = {}
    for new in news:
        by_scope.setdefault((new.workspace_id, new.source), []).append(new.source_event_id)
    clauses: list[str] = []
    lookup_params: list[object] = []
    for (workspace_id, source), ids in by_scope.items():
        clauses.append("(workspace_id = %s AND source = %s AND source_event_id IN ("
                       + ", ".join(["%s"] * len(ids)) + "))")
        lookup_params.extend([workspace_id, source, *ids])
    lookup_sql = ("SELECT workspace_id, source, source_event_id, event_id, position FROM ingestion_event WHERE "
                  + " OR ".join(clauses))
    statements = [*before, (f"SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})", ()), (insert_sql, insert_params),
                  *after, (lookup_sql, lookup_params)]
    with connection.cursor() as cursor:
        cursor.execute("; ".join(text for text, _ in statements), [p for _, ps in statements for p in ps])
        while cursor.nextset():
            pass  # the closing SELECT's rows are the last result set
        rows = cursor.fetchall()
    drawn = {(new.workspace_id, new.source, new.source_event_id): new.event_id for new in news}
    inserted: _Found = {}
    twins: _Found = {}
    for w, s, k, event_id, position in rows:
        (inserted if drawn[(w, s, k)] == event_id else twins)[(w, s, k)] = (event_id, position)
    return inserted, twins


# One encoder for every append: ``json.dumps`` with arguments builds a new encoder per call.
_to_json = json.JSONEncoder(separators=(",", ":")).encode


def _row_values(new: NewEvent, recorded_at: object, adapt_datetime: Callable[[object], object]) -> list[object]:
    """The values of ``_COLUMNS`` for one event, as both insert paths send them."""
    return [
        new.event_id, new.workspace_id, new.source, new.source_event_id, new.type,
        adapt_datetime(new.occurred_at), recorded_at,
        _to_json(new.data), None if new.raw is None else _to_json(new.raw),
        new.schema_version, new.actor,
    ]


def _insert_statement(news: Iterable[NewEvent], *, returning: bool = True) -> Statement:
    conn = connections[DEFAULT_DB_ALIAS]
    adapt = conn.ops.adapt_datetimefield_value
    recorded_at = adapt(timezone.now())
    json_cast = "::jsonb" if conn.vendor == "postgresql" else ""
    row_sql = f"(%s, %s, %s, %s, %s, %s, %s, %s{json_cast}, %s{json_cast}, %s, %s)"
    rows: list[str] = []
    params: list[object] = []
    for new in news:
        rows.append(row_sql)
        params.extend(_row_values(new, recorded_at, adapt))
    sql = (
        f"INSERT INTO ingestion_event ({', '.join(_COLUMNS)}) VALUES {', '.join(rows)} "
        "ON CONFLICT (workspace_id, source, source_event_id) DO NOTHING"
    )
    if returning:
        sql += " RETURNING workspace_id, source, source_event_id, event_id, position"
    return sql, params


def _insert(news: Sequence[NewEvent]) -> _Found:
    if connection.vendor == "postgresql" and len(news) > ONE_MESSAGE_MAX:
        return _insert_by_copy(news)
    sql, params = _insert_statement(news)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(w, s, k): (e, p) for w, s, k, e, p in cursor.fetchall()}


# A large append (a CSV chunk) as one INSERT … VALUES spent most of its time in psycopg parsing a
# statement of tens of thousands of placeholders (client-side binding), so it goes through COPY
# into a staging table dropped at commit, then one INSERT … SELECT in the rows' order.
_STAGE = "refairn_append_stage"
_STAGE_DDL = (
    f"CREATE TEMPORARY TABLE {_STAGE} (ord integer, event_id text, workspace_id text, source text, "
    "source_event_id text, type text, occurred_at timestamptz, recorded_at timestamptz, data jsonb, raw jsonb, "
    "schema_version smallint, actor text) ON COMMIT DROP"
)


def _insert_by_copy(news: Sequence[NewEvent]) -> _Found:
    """Insert ``news`` (inside the append transaction, lock held) by COPY; return the new keys.

    Positions follow the rows' order (``ORDER BY ord``), as with the VALUES list; twins are
    skipped by the same ``ON CONFLICT DO NOTHING``.
    """
    recorded_at = timezone.now()
    columns = ", ".join(_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(_STAGE_DDL)
        adapt = connection.ops.adapt_datetimefield_value
        with cursor.copy(f"COPY {_STAGE} (ord, {columns}) FROM STDIN") as copy:
            for index, new in enumerate(news):
                copy.write_row([index, *_row_values(new, recorded_at, adapt)])
        cursor.execute(
            f"INSERT INTO ingestion_event ({columns}) SELECT {columns} FROM {_STAGE} ORDER BY ord "
            "ON CONFLICT (workspace_id, source, source_event_id) DO NOTHING "
            "RETURNING workspace_id, source, source_event_id, event_id, position")
        found = {(w, s, k): (e, p) for w, s, k, e, p in cursor.fetchall()}
        cursor.execute(f"DROP TABLE {_STAGE}")
    return found


def _find(keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str], tuple[str, int]]:
    found: dict[tuple[str, str, str], tuple[str, int]] = {}
    by_scope: dict[tuple[str, str], list[str]] = {}
    for workspace_id, source, source_event_id in keys:
        by_scope.setdefault((workspace_id, source), []).append(source_event_id)
    for (workspace_id, source), ids in by_scope.items():
        rows = Event.objects.filter(
            workspace_id=workspace_id, source=source, source_event_id__in=ids
        ).values_list("source_event_id", "event_id", "position")
        for source_event_id, event_id, position in rows:
            found[(workspace_id, source, source_event_id)] = (event_id, position)
    return found


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A stored event as projectors read it: the fields they use (``data``, never ``raw``).

    A plain object, not an ``Event`` model instance: building a model instance per event, and
    parsing a ``recorded_at`` no projector may read (no clock), were a seventh of a rebuild's
    time (bench/replay.py).
    """

    position: int
    event_id: str
    workspace_id: str
    source: str
    type: str
    occurred_at: datetime
    data: dict
    actor: str


_STORED_FIELDS = tuple(StoredEvent.__dataclass_fields__)


def event_list_after(position: int, *, limit: int, upper: int | None = None) -> list[StoredEvent]:
    """Return up to ``limit`` events after ``position`` (and at most ``upper``), in store order.

    Without ``raw``: projectors read ``data`` only (``Projector``), and the input as received is
    often the larger of the two (a whole provider envelope), so reading and parsing it was a
    good part of a replay's read time.
    """
    if connection.vendor == "postgresql":
        rows: Iterable[tuple] = _event_rows_binary(position, limit=limit, upper=upper)
    else:
        qs = Event.objects.filter(position__gt=position)
        if upper is not None:
            qs = qs.filter(position__lte=upper)
        rows = qs.order_by("position").values_list(*_STORED_FIELDS)[:limit]
    return [StoredEvent(*row) for row in rows]


def _event_rows_binary(position: int, *, limit: int, upper: int | None) -> list[tuple]:
    """``event_list_after``'s rows on PostgreSQL, read in binary on the same connection and transaction.

    Django's cursors bind parameters on the client and so read text only; a timestamp and a
    ``jsonb`` parse faster in binary (psycopg decodes ``data`` itself), and the ORM's per-row
    converters go too: 1.4-1.6x the events/s of the ORM read on a 1,000,000-event store
    (bench/replay.py's read-only pass, which is this function). Not prepared: a generic plan of
    a ``LIMIT $n`` may pick a scan and a sort.
    """
    import psycopg

    columns = ", ".join(connection.ops.quote_name(Event._meta.get_field(name).column) for name in _STORED_FIELDS)
    sql = f"SELECT {columns} FROM {connection.ops.quote_name(Event._meta.db_table)} WHERE position > %s"
    params: list[int] = [position]
    if upper is not None:
        sql += " AND position <= %s"
        params.append(upper)
    sql += " ORDER BY position LIMIT %s"
    params.append(limit)
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=False, binary=True)
        return cursor.fetchall()


def store_head() -> int:
    """Return the highest position in the store (0 when empty)."""
    last = Event.objects.order_by("-position").values_list("position", flat=True).first()
    return last or 0
