"""The projection runner (issue #2 item 6): exactly once, one runner at a time, rebuild equals
incremental, a dependent never passes its dependency. Driven with the test projectors."""

from __future__ import annotations

import gc
import threading
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connections

from ingestion import projections
from ingestion.models import Event, ProjectionCheckpoint
from ingestion.store import event_append_many
from ingestion.workspaces import CreatedWorkspace
from tests.testapp.models import ProjectedEvent
from tests.testapp.projectors import DEPENDENT, RECORDER, DependentProjector, ProjectorFailure, RecordingProjector
from tests.testapp.support import new_event

pytestmark = pytest.mark.usefixtures("no_wakeups")


def _append(ws: str, count: int, prefix: str = "e") -> list[int]:
    results = event_append_many([new_event(ws, f"{prefix}-{i}", amount=i) for i in range(count)])
    return [r.position for r in results]


def _applied(projector: str) -> Counter[int]:
    """How many times each position was applied by ``projector``."""
    return Counter(ProjectedEvent.objects.filter(projector=projector).values_list("position", flat=True))


def _state(projector: str) -> list[tuple]:
    return sorted(ProjectedEvent.objects.filter(projector=projector).values_list(
        "position", "event_id", "workspace_id", "type", "amount", "dependency_seen"))


@pytest.mark.smoke
def test_run_applies_every_event_once_and_moves_the_checkpoint(
    db: None, tenant: CreatedWorkspace, recorder: RecordingProjector,
) -> None:
    """A run applies every stored event once, in position order, and leaves the checkpoint at the
    head; a second run applies nothing."""
    positions = _append(tenant.workspace.id, 25)

    assert projections.run_projection(RECORDER, batch_size=7) == 25
    assert projections.run_projection(RECORDER, batch_size=7) == 0
    assert _applied(RECORDER) == Counter(positions)
    assert projections.checkpoint_position(RECORDER) == positions[-1]
    assert list(ProjectedEvent.objects.filter(projector=RECORDER).order_by("id")
                .values_list("position", flat=True)) == positions


def test_exception_mid_batch_applies_nothing_of_that_batch(
    transactional_db: None, tenant: CreatedWorkspace, recorder: RecordingProjector,
) -> None:
    """When the projector raises on an event in the middle of a batch, nothing of that batch stays
    applied and the checkpoint stays where the last good batch left it; once the fault is gone a
    rerun applies every event exactly once."""
    positions = _append(tenant.workspace.id, 20)
    recorder.fail_at_position = positions[13]  # in the second batch of 10, after 3 writes in it

    with pytest.raises(ProjectorFailure):
        projections.run_projection(RECORDER, batch_size=10)

    assert _applied(RECORDER) == Counter(positions[:10])
    assert projections.checkpoint_position(RECORDER) == positions[9]

    recorder.fail_at_position = None
    assert projections.run_projection(RECORDER, batch_size=10) == 10
    assert _applied(RECORDER) == Counter(positions)
    assert projections.checkpoint_position(RECORDER) == positions[-1]


def test_exception_in_first_batch_leaves_checkpoint_at_zero(
    db: None, tenant: CreatedWorkspace, recorder: RecordingProjector,
) -> None:
    """A failure in the very first batch leaves no row and the checkpoint at 0 (or absent)."""
    positions = _append(tenant.workspace.id, 5)
    recorder.fail_at_position = positions[-1]
    with pytest.raises(ProjectorFailure):
        projections.run_projection(RECORDER)
    assert ProjectedEvent.objects.count() == 0
    assert projections.checkpoint_position(RECORDER) == 0


def test_rebuild_equals_incremental_state(
    db: None, tenant: CreatedWorkspace, other_tenant: CreatedWorkspace,
    recorder: RecordingProjector, dependent: DependentProjector,
) -> None:
    """State built incrementally (appends interleaved with runs of various batch sizes, with
    duplicates and two workspaces) equals the state a rebuild from zero produces."""
    a, b = tenant.workspace.id, other_tenant.workspace.id
    for round_, size in enumerate((1, 3, 50, 7)):
        event_append_many([new_event(a, f"r{round_}-{i}", amount=i) for i in range(9)])
        event_append_many([new_event(b, f"r{round_}-{i}", amount=10 * i) for i in range(4)])
        event_append_many([new_event(a, f"r{max(round_ - 1, 0)}-1")])  # a twin: stores nothing
        projections.run_projection(RECORDER, batch_size=size)
        projections.run_projection(DEPENDENT, batch_size=size + 1)
    incremental = (_state(RECORDER), _state(DEPENDENT))

    counts = projections.rebuild(RECORDER)

    assert counts == {RECORDER: 52, DEPENDENT: 52}
    assert (_state(RECORDER), _state(DEPENDENT)) == incremental
    assert _applied(RECORDER) == Counter(Event.objects.values_list("position", flat=True))


def test_dependent_never_passes_its_dependency(
    db: None, tenant: CreatedWorkspace, recorder: RecordingProjector, dependent: DependentProjector,
) -> None:
    """A projector that depends on another applies nothing beyond the other's checkpoint, and
    every event it applies was already applied by its dependency."""
    positions = _append(tenant.workspace.id, 30)

    assert projections.run_projection(DEPENDENT) == 0  # dependency still at 0
    projections.run_projection(RECORDER, batch_size=4, max_batches=2)
    assert projections.run_projection(DEPENDENT) == 8
    assert projections.checkpoint_position(DEPENDENT) == positions[7]

    projections.run_all()
    assert projections.checkpoint_position(DEPENDENT) == projections.checkpoint_position(RECORDER) == positions[-1]
    assert set(ProjectedEvent.objects.filter(projector=DEPENDENT).values_list("dependency_seen", flat=True)) == {True}


def test_rebuild_projections_command_replays_the_store(
    db: None, tenant: CreatedWorkspace, recorder: RecordingProjector,
) -> None:
    """``manage.py rebuild_projections NAME`` clears the projection and replays every event once."""
    positions = _append(tenant.workspace.id, 6)
    projections.run_projection(RECORDER)
    ProjectedEvent.objects.filter(projector=RECORDER).update(amount=-1)  # drifted state

    call_command("rebuild_projections", RECORDER)

    assert _applied(RECORDER) == Counter(positions)
    assert not ProjectedEvent.objects.filter(amount=-1).exists()


@pytest.mark.postgres
def test_two_concurrent_runners_never_apply_an_event_twice(
    transactional_db: None, tenant: CreatedWorkspace, recorder: RecordingProjector,
) -> None:
    """Two runners (threads, own connections) released together over the same projection, with
    small batches and a slow projector so they contend: every event is applied exactly once."""
    positions = _append(tenant.workspace.id, 120)
    recorder.sleep_per_event = 0.001
    barrier = threading.Barrier(2, timeout=30)
    applied: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            applied.append(projections.run_projection(RECORDER, batch_size=5))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sum(applied) == 120
    assert _applied(RECORDER) == Counter(positions)
    assert ProjectionCheckpoint.objects.get(name=RECORDER).position == positions[-1]


def test_run_all_moves_a_dependent_batch_behind_batch_with_its_dependency(
    db: None, tenant: CreatedWorkspace, recorder: RecordingProjector, dependent: DependentProjector,
) -> None:
    """A backlog is projected in turns, one batch of each projection: the dependent's first rows
    exist before its dependency has reached the head, so a ledger entry does not wait for the whole
    backlog to go through attribution (projection lag)."""
    positions = _append(tenant.workspace.id, 30)

    counts = projections.run_all(batch_size=10)

    assert counts[RECORDER] == counts[DEPENDENT] == 30
    rows = list(ProjectedEvent.objects.order_by("id").values_list("projector", "position"))
    first_dependent = next(i for i, (name, _) in enumerate(rows) if name == DEPENDENT)
    assert rows[first_dependent - 1] == (RECORDER, positions[9])  # right after the first batch
    assert projections.checkpoint_position(DEPENDENT) == positions[-1]


class _Carried:
    """What a projector carries between batches, in these tests: a name and the batches it saw."""

    def __init__(self, empty: bool) -> None:
        self.empty = empty
        self.batches: list[list[int]] = []


@pytest.fixture
def carrying(recorder: RecordingProjector, monkeypatch: pytest.MonkeyPatch) -> list[_Carried]:
    """Make the recorder carry a ``_Carried`` from batch to batch; return every carry it was given."""
    started: list[_Carried] = []
    apply_batch = recorder.apply_batch

    def start_run(*, empty: bool) -> _Carried:
        started.append(_Carried(empty))
        return started[-1]

    def apply_with(events, carry=None):  # noqa: ANN001, ANN202
        carry.batches.append([e.position for e in events])
        apply_batch(events)

    monkeypatch.setattr(recorder, "start_run", start_run)
    monkeypatch.setattr(recorder, "apply_batch", apply_with)
    return started


def test_a_run_hands_its_projector_one_carry_for_all_its_batches(db, tenant, carrying):
    positions = _append(tenant.workspace.id, 9)
    projections.run_projection(RECORDER, batch_size=4)
    assert len(carrying) == 1
    assert carrying[0].batches == [positions[:4], positions[4:8], positions[8:]]


def test_a_carry_is_told_the_tables_are_empty_only_from_position_zero(db, tenant, carrying):
    _append(tenant.workspace.id, 6)
    projections.run_projection(RECORDER, batch_size=3, max_batches=1)
    projections.run_projection(RECORDER, batch_size=3)
    assert [c.empty for c in carrying] == [True, False]


def test_run_all_keeps_each_projections_carry_across_its_turns(db, tenant, carrying, dependent):
    _append(tenant.workspace.id, 9)
    projections.run_all(batch_size=3)
    assert len(carrying) == 1
    assert len(carrying[0].batches) == 3


def test_a_run_starts_a_fresh_carry_when_another_run_applied_a_batch_in_between(db, tenant, carrying):
    """The carry may hold rows the other run has changed since: it is never trusted again."""
    positions = _append(tenant.workspace.id, 6)
    mine = projections.Run(projections.get_projector(RECORDER))
    projections.run_projection(RECORDER, batch_size=2, max_batches=1, run=mine)
    projections.run_projection(RECORDER, batch_size=2, max_batches=1)  # another worker's run
    projections.run_projection(RECORDER, batch_size=2, max_batches=1, run=mine)
    assert [c.batches for c in carrying] == [[positions[:2]], [positions[2:4]], [positions[4:6]]]
    assert mine.carry is carrying[2]


def test_a_rebuild_in_between_is_noticed_even_at_the_same_position(db, tenant, carrying):
    positions = _append(tenant.workspace.id, 4)
    mine = projections.Run(projections.get_projector(RECORDER))
    projections.run_projection(RECORDER, run=mine)
    projections.rebuild(RECORDER)  # back to 0 and replayed to the same head
    assert projections.checkpoint_position(RECORDER) == positions[-1]
    _append(tenant.workspace.id, 1, prefix="later")
    projections.run_projection(RECORDER, run=mine)
    assert len(carrying) == 3
    assert mine.carry is carrying[2]
    assert not carrying[2].empty


def test_a_failed_batch_drops_the_carry(transactional_db, tenant, carrying, recorder):
    positions = _append(tenant.workspace.id, 4)
    recorder.fail_at_position = positions[3]
    mine = projections.Run(recorder)
    with pytest.raises(ProjectorFailure):
        projections.run_projection(RECORDER, batch_size=2, run=mine)
    assert mine.carry is None
    recorder.fail_at_position = None
    projections.run_projection(RECORDER, batch_size=2, run=mine)
    assert len(carrying) == 2
    assert carrying[1].batches == [positions[2:]]


def test_the_projections_of_a_turn_share_its_read_of_the_store(db, tenant, recorder, dependent, monkeypatch,
                                                               settings):
    """A rebuild (of the recorder and its dependent) goes in turns, each batch read once for both."""
    _append(tenant.workspace.id, 30)
    settings.REFAIRN_PROJECTION_BATCH_SIZE = 10
    reads: list[int] = []
    read = projections.event_list_after

    def counted(position, **kwargs):  # noqa: ANN001, ANN202
        reads.append(position)
        return read(position, **kwargs)

    monkeypatch.setattr(projections, "event_list_after", counted)
    assert projections.rebuild(RECORDER) == {RECORDER: 30, DEPENDENT: 30}
    assert len(reads) == 5  # three batches read once each, then each projection finds nothing new
    assert _state(DEPENDENT) == [(p, e, w, t, 0, True) for p, e, w, t, *_ in _state(RECORDER)]


def test_a_shared_read_hands_out_a_prefix_never_past_the_bound(db, tenant):
    positions = _append(tenant.workspace.id, 10)
    reads = projections.Reads()
    before = positions[0] - 1
    assert [e.position for e in reads.events_after(before, limit=10, upper=None)] == positions
    assert [e.position for e in reads.events_after(before, limit=10, upper=positions[4])] == positions[:5]
    assert [e.position for e in reads.events_after(before, limit=3, upper=None)] == positions[:3]
    assert [e.position for e in reads.events_after(positions[1], limit=2, upper=None)] == positions[2:4]


def test_a_hand_off_serves_only_batches_within_the_positions_it_covers():
    reads = projections.Reads()
    reads.hand_off("upstream", 10, 20, ["rows"])
    assert reads.handed(["upstream"], 11, 20) == {"upstream": ["rows"]}
    assert reads.handed(["upstream"], 15, 16) == {"upstream": ["rows"]}
    assert reads.handed(["upstream"], 10, 20) == {}  # position 10 was applied by an earlier batch
    assert reads.handed(["upstream"], 11, 21) == {}  # position 21 by a later one
    assert reads.handed(["other"], 11, 20) == {}


def test_run_all_freezes_what_earlier_turns_left_alive_and_thaws_it_at_the_end(db, tenant, recorder, monkeypatch):
    """Between turns the objects alive are exempted from the collector's scans (``settle_heap``):
    the second and third batches run with them frozen, and after the run nothing stays frozen."""
    _append(tenant.workspace.id, 9)
    frozen_at_batch: list[int] = []
    apply_batch = recorder.apply_batch

    def apply_and_note(events, carry=None):  # noqa: ANN001, ANN202
        frozen_at_batch.append(gc.get_freeze_count())
        apply_batch(events)

    monkeypatch.setattr(recorder, "apply_batch", apply_and_note)
    assert gc.get_freeze_count() == 0
    projections.run_all(batch_size=3)
    assert len(frozen_at_batch) == 3
    assert frozen_at_batch[0] == 0
    assert min(frozen_at_batch[1:]) > 0
    assert gc.get_freeze_count() == 0


def test_a_failed_run_leaves_nothing_frozen(db, tenant, recorder):
    positions = _append(tenant.workspace.id, 9)
    recorder.fail_at_position = positions[7]
    with pytest.raises(ProjectorFailure):
        projections.run_all(batch_size=3)
    assert gc.get_freeze_count() == 0
