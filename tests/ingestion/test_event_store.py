"""The event store (issue #2 item 5): one append service, idempotent, append-only, in order."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable

import psycopg
import pytest
from django.db import connection, connections, transaction

from ingestion.models import AppendOnlyError, Event
from ingestion.store import ONE_MESSAGE_MAX, Appended, event_append, event_append_many, event_list_after
from ingestion.workspaces import CreatedWorkspace
from tests.testapp.support import new_event

pytestmark = pytest.mark.usefixtures("no_wakeups")


@pytest.mark.smoke
def test_append_returns_the_new_event(tenant: CreatedWorkspace) -> None:
    """A first append stores the event and answers its id, position and created=True."""
    result = event_append(new_event(tenant.workspace.id, "k-1", amount=100))

    assert result.created is True
    stored = Event.objects.get(position=result.position)
    assert stored.event_id == result.event_id
    assert result.event_id.startswith("evt_")
    assert stored.source_event_id == "k-1"
    assert stored.data == {"amount": 100, "key": "k-1"}


@pytest.mark.smoke
def test_twin_returns_the_original_event_id(tenant: CreatedWorkspace) -> None:
    """Appending the same (workspace, source, source_event_id) again stores nothing and answers
    created=False with the ORIGINAL event's id and position."""
    first = event_append(new_event(tenant.workspace.id, "k-1", amount=100))
    twin = event_append(new_event(tenant.workspace.id, "k-1", amount=999))

    assert twin.created is False
    assert (twin.event_id, twin.position) == (first.event_id, first.position)
    assert Event.objects.count() == 1
    assert Event.objects.get().data["amount"] == 100


def test_same_source_event_id_in_another_workspace_or_source_is_a_new_event(
    tenant: CreatedWorkspace, other_tenant: CreatedWorkspace,
) -> None:
    """Uniqueness is per (workspace, source, source_event_id), not global."""
    a = event_append(new_event(tenant.workspace.id, "k-1"))
    b = event_append(new_event(other_tenant.workspace.id, "k-1"))
    c = event_append(new_event(tenant.workspace.id, "k-1", source="csv"))

    assert all(r.created for r in (a, b, c))
    assert len({a.event_id, b.event_id, c.event_id}) == 3


def test_append_many_with_new_and_duplicate_events(tenant: CreatedWorkspace) -> None:
    """A batch mixing new events, a twin of a stored event and a twin inside the batch stores each
    key once and answers, per item in order, created or the original's id."""
    ws = tenant.workspace.id
    stored = event_append(new_event(ws, "old"))

    results = event_append_many([
        new_event(ws, "new-1"), new_event(ws, "old"), new_event(ws, "new-2"), new_event(ws, "new-1"),
    ])

    assert [r.created for r in results] == [True, False, True, False]
    assert results[1].event_id == stored.event_id
    assert results[3].event_id == results[0].event_id
    assert results[0].position < results[2].position
    assert Event.objects.count() == 3
    assert event_append_many([]) == []


def test_a_large_append_keeps_the_batch_order_and_answers_twins(tenant: CreatedWorkspace) -> None:
    """Past ``ONE_MESSAGE_MAX`` events (COPY on PostgreSQL) positions still follow the batch's
    order, stored and in-batch twins are answered with the original, and payloads land intact."""
    ws = tenant.workspace.id
    stored = event_append(new_event(ws, "old"))
    keys = [f"big-{i:03d}" for i in reversed(range(ONE_MESSAGE_MAX + 50))]
    news = [new_event(ws, key, amount=i) for i, key in enumerate(keys)]
    news[7] = new_event(ws, "old")
    news.append(new_event(ws, keys[0]))
    news[3] = dataclasses.replace(news[3], raw={"line": 4, "note": "tab\there, newline\nthere, back\\slash"})

    results = event_append_many(news)

    assert [r.created for r in results].count(True) == len(keys) - 1
    assert results[7] == Appended(stored.event_id, stored.position, False)
    assert results[-1] == Appended(results[0].event_id, results[0].position, False)
    created = [r.position for r in results if r.created]
    assert created == sorted(created)
    row = Event.objects.get(source_event_id=keys[3])
    assert (row.data, row.raw) == ({"amount": 3, "key": keys[3]},
                                   {"line": 4, "note": "tab\there, newline\nthere, back\\slash"})
    assert Event.objects.count() == len(keys)


def test_event_save_on_a_stored_row_is_refused(tenant: CreatedWorkspace) -> None:
    """The model refuses to update a stored event."""
    event = Event.objects.get(position=event_append(new_event(tenant.workspace.id)).position)
    event.type = "changed"
    with pytest.raises(AppendOnlyError):
        event.save()
    assert Event.objects.get(position=event.position).type == "test.event"


def test_event_delete_is_refused(tenant: CreatedWorkspace) -> None:
    """The model refuses to delete a stored event."""
    event = Event.objects.get(position=event_append(new_event(tenant.workspace.id)).position)
    with pytest.raises(AppendOnlyError):
        event.delete()
    assert Event.objects.filter(position=event.position).exists()


@pytest.mark.smoke
@pytest.mark.parametrize("change", [
    lambda qs: qs.update(type="changed"),
    lambda qs: qs.delete(),
    lambda qs: qs.bulk_update(list(qs), ["type"]),
], ids=["update", "delete", "bulk_update"])
def test_queryset_update_and_delete_are_refused(tenant: CreatedWorkspace, change: Callable) -> None:
    """Bulk changes through the ORM are refused in Python, before any SQL runs."""
    event_append(new_event(tenant.workspace.id))
    with pytest.raises(AppendOnlyError):
        change(Event.objects.all())
    assert Event.objects.filter(type="test.event").count() == 1


def test_orm_inserts_outside_the_store_still_work(tenant: CreatedWorkspace) -> None:
    """save() of a new row and bulk_create (which take the append lock) insert normally."""
    base = new_event(tenant.workspace.id, "orm-1")
    fields = {k: getattr(base, k) for k in ("workspace_id", "source", "source_event_id", "type",
                                            "occurred_at", "data")}
    Event(event_id="evt_orm1", recorded_at=base.occurred_at, **fields).save()
    Event.objects.bulk_create([Event(event_id="evt_orm2", recorded_at=base.occurred_at,
                                     **{**fields, "source_event_id": "orm-2"})])
    assert Event.objects.count() == 2


# --- PostgreSQL: the trigger and concurrency ----------------------------------------------------


def _raw_connection() -> psycopg.Connection:
    """A direct connection to the test database WITHOUT ``refairn.allow_purge`` (what production has)."""
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"], user=s.get("USER") or None, password=s.get("PASSWORD") or None,
        host=s.get("HOST") or None, port=s.get("PORT") or None, autocommit=True, connect_timeout=10,
    )


@pytest.mark.postgres
@pytest.mark.parametrize("sql", [
    "UPDATE ingestion_event SET type = 'changed'",
    "DELETE FROM ingestion_event",
    "TRUNCATE ingestion_event CASCADE",
], ids=["update", "delete", "truncate"])
def test_trigger_refuses_update_delete_truncate(transactional_db: None, tenant: CreatedWorkspace,
                                                sql: str) -> None:
    """On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE of the event store, whatever
    client does it; the row is still there afterwards."""
    event_append(new_event(tenant.workspace.id))
    with _raw_connection() as conn:
        setting = conn.execute("SELECT current_setting('refairn.allow_purge', true)").fetchone()
        assert setting in (None, ("",), (None,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(sql)
        assert conn.execute("SELECT count(*), min(type) FROM ingestion_event").fetchone() == (1, "test.event")


@pytest.mark.postgres
def test_concurrent_appends_of_one_source_event_id_store_one_row(transactional_db: None,
                                                                   tenant: CreatedWorkspace) -> None:
    """Two threads, each with its own connection, released together by a barrier, append the same
    source_event_id: one row is stored, both answer its event_id, exactly one says created."""
    ws = tenant.workspace.id
    rounds = 10
    results: list[list] = [[] for _ in range(rounds)]
    barrier = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for i in range(rounds):
                barrier.wait()
                results[i].append(event_append(new_event(ws, f"race-{i}")))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for i, pair in enumerate(results):
        assert len(pair) == 2
        assert pair[0].event_id == pair[1].event_id
        assert sorted(r.created for r in pair) == [False, True]
        assert Event.objects.filter(source_event_id=f"race-{i}").count() == 1


def _concurrent_appends_with_a_tailing_reader(ws: str, *, writers: int, per_writer: int) -> tuple[set, set]:
    """Run ``writers`` threads appending with random sleeps inside their transactions while a
    reader follows positions (``position > last seen``); return (ids read, ids stored)."""
    done = threading.Event()
    errors: list[BaseException] = []
    seen: set[str] = set()

    def write(n: int) -> None:
        rng = random.Random(n)
        try:
            for i in range(per_writer):
                with transaction.atomic():
                    time.sleep(rng.uniform(0, 0.002))
                    event_append(new_event(ws, f"w{n}-{i}"))
                    # Hold the transaction open after the position is drawn: the window in which
                    # a higher position could otherwise commit first.
                    time.sleep(rng.uniform(0, 0.003))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    def read() -> None:
        last = 0
        try:
            while True:
                finished = done.is_set()
                batch = event_list_after(last, limit=50)
                for event in batch:
                    seen.add(event.event_id)
                    last = event.position
                if finished and not batch:
                    return
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    reader = threading.Thread(target=read)
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    reader.join(60)
    assert not errors, errors
    assert not reader.is_alive()
    stored = set(Event.objects.filter(workspace_id=ws).values_list("event_id", flat=True))
    return seen, stored


@pytest.mark.postgres
def test_reader_following_positions_never_misses_an_event(transactional_db: None,
                                                          tenant: CreatedWorkspace) -> None:
    """While 4 threads append concurrently (random sleeps inside their transactions), a reader that
    follows positions sees every stored event: the set it read equals the full set."""
    seen, stored = _concurrent_appends_with_a_tailing_reader(tenant.workspace.id, writers=4, per_writer=60)
    assert len(stored) == 240
    assert stored - seen == set()


@pytest.mark.postgres
def test_an_append_outside_a_transaction_is_one_round_trip(transactional_db: None, tenant: CreatedWorkspace) -> None:
    """On PostgreSQL, lock, insert and commit of an append travel as one message: the hot path's
    cost is its round trips, and the implicit transaction still holds the lock until commit."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        result = event_append(new_event(tenant.workspace.id, "one-trip"))

    assert result.created is True
    assert len(queries) == 1
    assert "pg_advisory_xact_lock" in queries[0]["sql"]
    assert Event.objects.filter(position=result.position).exists()


@pytest.mark.postgres
def test_a_statement_sent_with_the_events_fails_or_commits_with_them(transactional_db: None,
                                                                     tenant: CreatedWorkspace) -> None:
    """A ``before`` statement (a webhook's delivery row) and the events share one transaction: when
    it fails nothing of the events is stored, and the connection is usable afterwards."""
    from django.db import ProgrammingError

    with pytest.raises(ProgrammingError):
        event_append_many([new_event(tenant.workspace.id, "with-a-bad-row")],
                          before=[("INSERT INTO no_such_table VALUES (%s)", [1])])

    assert not Event.objects.filter(source_event_id="with-a-bad-row").exists()
    assert event_append(new_event(tenant.workspace.id, "after")).created is True


@pytest.mark.postgres
def test_the_binary_read_of_the_store_returns_what_the_orm_reads(tenant: CreatedWorkspace) -> None:
    """On PostgreSQL ``event_list_after`` reads in binary: the same events, fields and types as the ORM."""
    from datetime import UTC, datetime

    from ingestion.store import NewEvent, StoredEvent

    nested = {"amount": 1999, "nested": {"list": [1, "two", None, 3.5]}, "text": "naïve \"q\"\n", "flag": True}
    event_append_many([
        NewEvent(workspace_id=tenant.workspace.id, source="api", source_event_id=f"b-{n}", type="payment.succeeded",
                 occurred_at=datetime(2025, 3, 1, 12, n, 30, 123456, tzinfo=UTC), data={**nested, "n": n},
                 actor="user:someone")
        for n in range(7)
    ])
    orm = [StoredEvent(*row) for row in Event.objects.order_by("position").values_list(
        "position", "event_id", "workspace_id", "source", "type", "occurred_at", "data", "actor")]
    first, last = orm[0].position, orm[-1].position

    assert event_list_after(0, limit=100) == orm
    assert event_list_after(first, limit=3) == orm[1:4]
    assert event_list_after(first, limit=100, upper=last - 1) == orm[1:-1]
    assert event_list_after(last, limit=100) == []
    assert event_list_after(0, limit=1)[0].occurred_at.utcoffset().total_seconds() == 0
