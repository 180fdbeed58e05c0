"""The projection runner: registry, checkpoints, locks, batches, rebuilds, scheduling.

A projector turns events into its own tables. The runner feeds it events in position order, one
transaction per batch that also moves its checkpoint row, so a crash leaves either the whole batch
applied with its checkpoint, or neither: exactly once. The checkpoint row is locked for the batch,
so two workers never apply the same projection at once.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from .models import Event, ProjectionCheckpoint
from .store import StoredEvent, event_list_after

logger = logging.getLogger(__name__)


class Projector:
    """Base class: a deterministic fold of events into the projector's own tables.

    Subclasses set ``name`` (and ``depends_on`` when they read another projection's tables) and
    implement ``apply`` (or ``apply_batch`` for speed) and ``reset``. They read nothing but the
    event and their own (or their dependencies') tables: no clock, no current settings.

    A projector may also carry state from one batch of a run to the next (``start_run``), such as
    the rows its last batch loaded and wrote: ``apply_batch`` then receives it as ``carry``.
    """

    name: str = ""
    depends_on: tuple[str, ...] = ()
    # Whether ``apply_batch`` takes ``handed``: what its dependencies' batches of the same turn
    # handed off (``Reads.handed``), by dependency name, when they cover this batch.
    takes_handoffs: bool = False
    # The tables it writes: the runner keeps their planner statistics fresh (``refresh_statistics``).
    models: tuple[type[Model], ...] = ()

    def apply_batch(self, events: Sequence[StoredEvent], carry: Any = None) -> None:
        for event in events:
            self.apply(event)

    def start_run(self, *, empty: bool) -> Any:
        """Return what this projector carries between the batches of one run (``None``: nothing).

        Called by the runner before a run's first batch, and again whenever it cannot vouch that
        the projector's tables are still exactly what the run's last batch left (see ``Run``).
        ``empty`` says the checkpoint is at 0, so the tables hold no row at all (a reset or a new
        install): a carry may then treat any row it has not seen as absent, with no query.
        """
        return None

    def handoff(self, carry: Any) -> Any:
        """What the batch just committed hands to the projections of the same turn that depend on
        this one (``None``: nothing). See ``Reads.hand_off``."""
        return None

    def apply(self, event: StoredEvent) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Delete every row this projection owns, in every workspace."""
        raise NotImplementedError


_registry: dict[str, Projector] = {}


def register(projector: Projector) -> Projector:
    """Register a projector (called from ``AppConfig.ready()``); dependencies must come first."""
    if not projector.name:
        raise ValueError("a projector needs a name")
    for dependency in projector.depends_on:
        if dependency not in _registry:
            raise ValueError(f"{projector.name} depends on unregistered {dependency}")
    _registry[projector.name] = projector
    return projector


def unregister(name: str) -> None:
    _registry.pop(name, None)


def registered() -> dict[str, Projector]:
    """Return the projectors in dependency (registration) order."""
    return dict(_registry)


def get_projector(name: str) -> Projector:
    try:
        return _registry[name]
    except KeyError:
        raise KeyError(f"unknown projection {name!r}; known: {', '.join(_registry)}") from None


def dependents_of(name: str) -> list[str]:
    """Return ``name`` and every projection that depends on it, directly or not, in order."""
    chosen = [name]
    for other, projector in _registry.items():
        if other not in chosen and any(dep in chosen for dep in projector.depends_on):
            chosen.append(other)
    return chosen


def _checkpoint_for_update(name: str) -> ProjectionCheckpoint:
    ProjectionCheckpoint.objects.get_or_create(name=name)
    return ProjectionCheckpoint.objects.select_for_update().get(name=name)


def checkpoint_position(name: str) -> int:
    return ProjectionCheckpoint.objects.filter(name=name).values_list("position", flat=True).first() or 0


class Reads:
    """The batch of events read last, handed again to the next projection that asks from there.

    In a turn of ``run_all`` (and a rebuild) the ledger asks for the batch attribution has just
    read, from the same checkpoint: reading and decoding it twice was a sixth of a rebuild's time
    (bench/replay.py). The store is append-only and its positions become visible in order
    (``ingestion.store``), so what a read returned after a position is a prefix of what any later
    read from there returns: handing it out again is exact. A batch shorter than the store now
    holds only means the next batch starts earlier.
    """

    def __init__(self) -> None:
        self.after = -1
        self.events: list[StoredEvent] = []
        self.handoffs: dict[str, tuple[int, int, Any]] = {}

    def hand_off(self, name: str, after: int, last: int, payload: Any) -> None:
        """Keep what projection ``name``'s committed batch of the events in (``after``, ``last``] handed off.

        The ledger reads back the payment decisions attribution wrote for the same positions a
        moment before: a fifth of the CPU of a backlog's drain (bench/lag.py's shape), spent
        decoding rows this process had just built. A projector writes its rows only from the
        events it applies, one batch exactly once, so what it wrote for the events in
        (``after``, ``last``] is all that its tables hold for those positions. A dependent batch
        within that range may take it instead of reading (``handed``). Kept only for the turns of
        one run: a failed batch ends the run, and with it these.
        """
        self.handoffs[name] = (after, last, payload)

    def handed(self, names: Sequence[str], first: int, last: int) -> dict[str, Any]:
        """What the projections ``names`` handed off for batches covering positions ``first``..``last``."""
        found: dict[str, Any] = {}
        for name in names:
            kept = self.handoffs.get(name)
            if kept is not None and kept[0] < first and last <= kept[1]:
                found[name] = kept[2]
        return found

    def events_after(self, position: int, *, limit: int, upper: int | None) -> list[StoredEvent]:
        if position == self.after and self.events:
            events = self.events[:limit]
            if upper is not None and events[-1].position > upper:
                events = [e for e in events if e.position <= upper]
            if events:
                return events
        events = event_list_after(position, limit=limit, upper=upper)
        self.after, self.events = position, events
        return events


class Run:
    """One run of a projection: the projector's carry, and the checkpoint its last batch wrote.

    Reading back from the database, batch after batch, the rows the previous batch had just
    written was most of a rebuild's time (bench/replay.py): a projector may keep them instead
    (``Projector.start_run``). That is only sound while nothing else has written its tables, so
    the run remembers the checkpoint (position and time) its last batch wrote, and the runner
    starts a fresh carry whenever the locked checkpoint row says anything else: another worker
    applied a batch in between, or a rebuild started over. A batch that fails drops the carry,
    which may hold that rolled-back batch's changes.
    """

    def __init__(self, projector: Projector, reads: Reads | None = None) -> None:
        self.projector = projector
        self.reads = reads if reads is not None else Reads()
        self.carry: Any = None
        self.left_at: tuple[int, datetime] | None = None

    def carry_for(self, checkpoint: ProjectionCheckpoint) -> Any:
        if self.left_at != (checkpoint.position, checkpoint.updated_at):
            self.carry = self.projector.start_run(empty=checkpoint.position == 0)
        return self.carry

    def drop(self) -> None:
        self.carry, self.left_at = None, None


def run_projection(name: str, *, batch_size: int | None = None, max_batches: int | None = None,
                   run: Run | None = None) -> int:
    """Apply every event after the checkpoint, batch by batch; return how many were applied.

    ``run`` carries the projector's state across calls (``run_all`` applies one batch per call).
    """
    projector = get_projector(name)
    run = run if run is not None else Run(projector)
    size = batch_size or settings.REFAIRN_PROJECTION_BATCH_SIZE
    applied = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        try:
            with transaction.atomic():
                checkpoint = _checkpoint_for_update(name)
                upper = None
                if projector.depends_on:
                    # Never run ahead of a projection whose tables this one reads.
                    upper = min(checkpoint_position(dep) for dep in projector.depends_on)
                events = run.reads.events_after(checkpoint.position, limit=size, upper=upper)
                if not events:
                    return applied
                after = checkpoint.position
                carry = run.carry_for(checkpoint)
                handed = (run.reads.handed(projector.depends_on, events[0].position, events[-1].position)
                          if projector.takes_handoffs else {})
                if handed:
                    projector.apply_batch(events, carry, handed=handed)
                else:
                    projector.apply_batch(events, carry)
                checkpoint.position = events[-1].position
                checkpoint.updated_at = timezone.now()
                checkpoint.save(update_fields=["position", "updated_at"])
        except BaseException:
            run.drop()
            raise
        run.left_at = (checkpoint.position, checkpoint.updated_at)
        payload = projector.handoff(carry)
        if payload is not None:
            run.reads.hand_off(name, after, checkpoint.position, payload)
        applied += len(events)
        batches += 1
        refresh_statistics(projector)
    return applied


# ANALYZE a table once it holds this many more rows than its last ANALYZE counted, plus this share.
STATISTICS_MIN_CHANGES = 1000
STATISTICS_GROWTH_FACTOR = 0.5
# The statistics target of those ANALYZEs: a sample of 300 x 10 rows instead of 300 x 100.
STATISTICS_TARGET = 10


def refresh_statistics(projector: Projector) -> list[str]:
    """ANALYZE the projector's tables (and the store) that grew by more than half since their last ANALYZE.

    A rebuild, a backlog or a bulk import grows tables from a few rows to millions in minutes.
    PostgreSQL plans with the statistics of the last ANALYZE, and with those of a nearly empty
    table it chose, for a lookup of 500 customers by email, an index on the workspace alone and
    read all of its customers: 93 ms per lookup at 130,000 customers, growing with the table
    (bench/replay.py). Autovacuum's own ANALYZE comes later than that, or never where it is off.
    So after each batch the runner asks ``pg_stat_user_tables`` (one query) and analyzes what
    holds more than half again as many live rows as the last ANALYZE counted: logarithmically
    few ANALYZEs as a table grows. Growth, not changes: a rebuild updates each customer row at
    every payment, and counting those updates analyzed the customers every few batches, a
    quarter of a rebuild's database time. Returns the tables analyzed.

    Each ANALYZE samples 3,000 rows (``STATISTICS_TARGET``), not the default 30,000: what the
    projections' plans need while a table grows is its size and the spread of its keys, which
    a small sample estimates as well, and a full sample of wide rows (terms, formulas) cost
    0.5 s per table at 70,000 ledger entries: 15 % of a 100,000-event backlog's drain. Autovacuum,
    where it runs, analyzes again at the server's own target.
    """
    if connection.vendor != "postgresql":
        return []
    tables = [Event._meta.db_table, *(model._meta.db_table for model in projector.models)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.relid = ANY(%s::regclass[]) AND s.n_live_tup > %s + (1 + %s) * greatest(c.reltuples, 0)",
            [tables, STATISTICS_MIN_CHANGES, STATISTICS_GROWTH_FACTOR])
        stale = [name for (name,) in cursor.fetchall()]
        if stale:
            with transaction.atomic():
                cursor.execute(f"SET LOCAL default_statistics_target = {STATISTICS_TARGET}")
                for table in stale:
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    if stale:
        logger.info("projection %s: analyzed %s", projector.name, ", ".join(stale))
    return stale


def run_all(**kwargs: int) -> dict[str, int]:
    """Run every projection up to the head, dependencies first; return how many events each applied.

    Batch by batch in turn (one of each projection, then again), not one projection to the head
    and then the next: a projection that depends on another follows it batch behind batch, so a
    backlog's first ledger entries appear after one batch of each instead of after the whole
    backlog has gone through attribution. The projections of a turn share the batch's read
    (``Reads``), and each keeps its carry from turn to turn (``Run``).
    """
    if kwargs.get("max_batches") is not None:
        return {name: run_projection(name, **kwargs) for name in registered()}
    return _run_in_turns(list(registered()), **kwargs)


def _run_in_turns(names: list[str], **kwargs: int) -> dict[str, int]:
    totals = dict.fromkeys(names, 0)
    reads = Reads()
    runs = {name: Run(get_projector(name), reads) for name in names}
    try:
        while True:
            moved = 0
            for name in names:
                applied = run_projection(name, max_batches=1, run=runs[name], **kwargs)
                totals[name] += applied
                moved += applied
            if not moved:
                return totals
            settle_heap()
    finally:
        gc.unfreeze()


def settle_heap() -> None:
    """Between turns: collect the young garbage, then exempt every object alive from later collections.

    A run's carries keep millions of rows alive (``Run``), and CPython's full collections scan
    every tracked object each time: rebuilding 1,000,000 events spent 40 s of its 124 s of CPU in
    46 of them (bench/RESULTS.md). Frozen objects are skipped until the run ends
    (``gc.unfreeze`` in ``_run_in_turns``); the ones a carry drops meanwhile are still freed by
    reference counting, and a cycle among them waits for the first collection after the run.
    """
    gc.collect(1)
    gc.freeze()


def rebuild(name: str | None = None) -> dict[str, int]:
    """Clear a projection (and those that depend on it) and replay the store from zero, in turns."""
    names = list(registered()) if name is None else dependents_of(name)
    with transaction.atomic():
        for each in names:
            _checkpoint_for_update(each)
        for each in reversed(names):
            get_projector(each).reset()
        ProjectionCheckpoint.objects.filter(name__in=names).update(position=0, updated_at=timezone.now())
    return _run_in_turns(names)


REBUILT = "projection.rebuilt"


def rebuild_recorded(name: str | None, *, actor: str) -> dict[str, int]:
    """Rebuild as an operator action: ``rebuild`` then a ``projection.rebuilt`` event per workspace.

    A rebuild re-derives every workspace's ledger, so each workspace's own log says who asked for it
    and how many events were replayed; projectors ignore the type. The event is appended after the
    replay, so its counts are the real ones.
    """
    from .models import Workspace
    from .store import NewEvent, event_append_many

    counts = rebuild(name)
    now = timezone.now()
    stamp = now.strftime("%Y%m%dT%H%M%S.%f")
    event_append_many([
        NewEvent(workspace_id=workspace_id, source=Event.Source.OPERATOR, source_event_id=f"rebuild:{stamp}",
                 type=REBUILT, occurred_at=now, actor=actor,
                 data={"projections": list(counts), "events_replayed": counts})
        for workspace_id in Workspace.objects.values_list("id", flat=True)
    ])
    return counts


def projection_lag() -> dict[str, int]:
    """Return, per projection, how many positions it is behind the store head."""
    head = Event.objects.order_by("-position").values_list("position", flat=True).first() or 0
    return {name: head - checkpoint_position(name) for name in registered()}


# --- scheduling -------------------------------------------------------------------------------

_WAKE_WINDOW = 0.25  # s; each publish costs ~2 ms of CPU (kombu), so at most ~8 per second per process
_wake_lock = threading.Lock()
_last_wake = 0.0
_trailing_until = 0.0


def schedule_run() -> None:
    """Wake the projections after an append has committed.

    With no broker (the embedded default) the run happens here, in process. With a broker a
    Celery task is published; wake-ups are coalesced to at most one immediate and one trailing
    publish per 250 ms per process, since a task is a wake-up for a batch, never the unit of
    work. A broker that is down is logged and ignored: the event is stored, and the periodic
    beat run catches it up.
    """
    if settings.REFAIRN_RUN_PROJECTIONS_INLINE:
        try:
            run_all()
        except Exception:
            logger.exception("in-process projection run failed; the next append or run retries")
        return
    global _last_wake, _trailing_until
    now = time.monotonic()
    countdown: float | None
    with _wake_lock:
        if now - _last_wake >= _WAKE_WINDOW:
            _last_wake = now
            countdown = 0.0
        elif now >= _trailing_until:
            _trailing_until = now + _WAKE_WINDOW
            countdown = _WAKE_WINDOW
        else:
            return
    _publish_wake(countdown)


def _publish_wake(countdown: float) -> None:
    from .tasks import run_projections

    try:
        if countdown:
            run_projections.apply_async(countdown=countdown)
        else:
            run_projections.apply_async()
    except Exception as exc:  # noqa: BLE001 - the broker being down must never fail an append
        logger.warning("could not publish a projection wake-up (%s); beat will catch up", type(exc).__name__)
