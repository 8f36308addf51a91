"""The mutation engine: validated, durable, block-parallel edits with exact downres.

Every voxel mutation runs the same phases (SPEC §4), whatever its kind
(:mod:`app.model.mutations`):

1. **plan**: under the label locks, the kind validates the request from the
   label index and builds a :class:`Plan` (clear error, nothing changed: a
   split's new label is held, not counted, until the split is allowed);
2. **s0 phase** (:mod:`.scheduler`): the touched s0 blocks are rewritten on the
   pool under their block locks and staged for readers as they come (put
   back if the mutation is refused); then one small durable journal
   transaction (:mod:`.commit`) holds the record, the label index rows, the
   counters (:mod:`.counters`), the undo data, the undo/redo stacks
   (:mod:`.history`) and the start events;
3. **cascade**, overlapping the s0 phase: each parent of changed blocks is
   recomputed as soon as the blocks below it are final;
4. **complete**: the record is marked done and the complete events written.

Block images are not journaled: a checkpoint writes the staged blocks into
the HDF5 file with the id of the last mutation they contain, and reopening
replays the mutations recorded after it (:mod:`.recovery`).

In labelmap mode a merge or a cleave changes only the mapping
(:class:`~app.model.labelmap.state.MappingState`): its plan has no blocks, its
record's moves are applied to the mapping right after its transaction commits
(and again by replay, from the file's mapping, after a crash).

Threads: public methods may be called from any thread except the engine's own
pool workers.  Signals are emitted from the calling thread, except
``mutation_started`` and ``labels_changed`` of a mutation with voxels: from
the commit thread; and the ``blocks_changed`` of a mapping change: from a pool
thread, just after.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

from app.model.engine import recovery
from app.model.engine.commit import Committer
from app.model.engine.context import EngineContext
from app.model.engine.counters import Counters
from app.model.engine.history import Direction, History, Step
from app.model.engine.locks import Gate, LabelLocks
from app.model.engine.reindex import Recounts, reindex
from app.model.engine.scheduler import BlockScheduler, Previous
from app.model.engine.signals import EngineSignals
from app.model.errors import InvalidMutationError
from app.model.geometry import Coord
from app.model.journal.journal import Journal
from app.model.labelmap.state import MappingState
from app.model.mutations import record_from_json
from app.model.mutations.base import BlockChange, EditContext, Move, Mutation, Plan, Stamp
from app.model.mutations.body_merge import BodyMerge
from app.model.mutations.body_split import BodySplit
from app.model.mutations.checks import MAX_LABEL, require_label, require_new_label
from app.model.mutations.cleave import Cleave, check_cleave
from app.model.mutations.label_counters import MaxLabel, NextLabel
from app.model.mutations.merge import Merge
from app.model.mutations.regions import SplitRegion
from app.model.mutations.split import Split
from app.model.mutations.split_coarse import SplitCoarse, blocks_region, check_blocks
from app.model.mutations.split_supervoxel import SplitSupervoxel, check_new_ids
from app.model.storage.store import PyramidStore


class MutationEngine:
    """Edits one dataset's label pyramid.

    Parameters
    ----------
    store : PyramidStore
        The writable pyramid.
    journal : Journal
        Its journal.
    pool : ThreadPoolExecutor
        Workers running block tasks.
    committer : ThreadPoolExecutor
        One thread that commits mutations to the journal (an fsync), while
        the calling thread keeps the pool busy with the cascade.
    workers : int
        The pool's number of threads (block tasks in flight at once).
    uuid : str
        The version UUID written into records and events.
    user : str, optional
        Recorded in records and events.
    mapping : MappingState, optional
        The mapping of a labelmap dataset (None: voxel mode).
    """

    def __init__(
        self,
        store: PyramidStore,
        journal: Journal,
        pool: ThreadPoolExecutor,
        committer: ThreadPoolExecutor,
        *,
        workers: int,
        uuid: str,
        user: str | None = None,
        mapping: MappingState | None = None,
    ) -> None:
        self.store = store
        self.mapping = mapping
        self.journal = journal
        self.pool = pool
        self.signals = EngineSignals()
        self.label_locks = LabelLocks()
        self.gate = Gate()
        self.counters = Counters.load(journal, store)
        self.scheduler = BlockScheduler(store, pool, committer, workers, self.signals)
        self.context = EngineContext(store, journal, self.counters, mapping)
        self.history = History(journal)
        self.committer = Committer(journal, self.counters, self.history, uuid, user)
        self._history_lock = threading.Lock()
        self._max_label_lock = threading.Lock()  # (a raise is checked and journaled at once)

    @property
    def shape(self) -> tuple[int, int, int]:
        """s0 shape."""
        return self.store.shape

    # -------------------------------------------------------------- the kinds
    def merge(self, target: int, labels: Iterable[int]) -> int:
        """Every voxel of ``labels`` becomes ``target``; returns the MutationID."""
        target, sources = Merge.check(target, labels)
        kind = Merge if self.mapping is None else BodyMerge
        record = self.edit([target, *sources], lambda ctx: kind.plan(ctx, target, sources))
        return record.mutation_id

    def cleave(
        self, body: int, supervoxels: Iterable[int], cleaved_label: int | None = None
    ) -> tuple[int, int]:
        """Supervoxels of ``body`` become a new body (or ``cleaved_label``);
        labelmap mode only.

        Returns
        -------
        (CleavedLabel, MutationID)
        """
        body, svs = check_cleave(body, supervoxels)
        self._require_labelmap("cleave")
        locks = _split_locks(body, cleaved_label)
        record = self.edit(locks, lambda ctx: Cleave.plan(ctx, body, svs, cleaved_label))
        assert isinstance(record, Cleave)
        return record.cleaved_label, record.mutation_id

    def split_supervoxel(
        self, sv: int, region: SplitRegion, split: int | None = None, remain: int | None = None
    ) -> tuple[int, int, int]:
        """Voxels of supervoxel ``sv`` inside ``region`` become a new supervoxel, the
        others another (or ``split``, ``remain``); labelmap mode only.

        Returns
        -------
        (SplitSupervoxel, RemainSupervoxel, MutationID)
        """
        sv = require_label(sv, "supervoxel")
        check_new_ids(sv, split, remain)
        self._require_labelmap("split-supervoxel")
        region.check_bounds(self.shape)
        assert self.mapping is not None
        body = int(self.mapping.body_of([sv])[0])
        locks = [body, sv, *(v for v in (split, remain) if v is not None)]
        record = self.edit(locks, lambda ctx: SplitSupervoxel.plan(ctx, sv, region, split, remain))
        assert isinstance(record, SplitSupervoxel)
        return record.split, record.remain, record.mutation_id

    def _require_labelmap(self, what: str) -> None:
        if self.mapping is None:
            raise InvalidMutationError(f"{what} needs a labelmap dataset; {self.store.path} "
                                       "is in voxel mode")

    def split(
        self, target: int, region: SplitRegion, new_label: int | None = None
    ) -> tuple[int, int]:
        """Voxels of ``target`` inside ``region`` become a new label (or ``new_label``);
        in labelmap mode, a new body (only the supervoxels the region cuts are split).

        Returns
        -------
        (label, MutationID)
        """
        target = require_label(target, "target")
        region.check_bounds(self.shape)
        locks = _split_locks(target, new_label)
        kind = Split if self.mapping is None else BodySplit
        record = self.edit(locks, lambda ctx: kind.plan(ctx, target, region, new_label))
        assert isinstance(record, Split | BodySplit)
        return record.new_label, record.mutation_id

    def split_coarse(
        self, target: int, blocks: Sequence[Sequence[int]], new_label: int | None = None
    ) -> tuple[int, int]:
        """Every voxel of ``target`` in the given s0 blocks (z, y, x) becomes a new
        label (in labelmap mode: a split by those blocks, as DVID's labelmap has
        no split-coarse).

        Returns
        -------
        (label, MutationID)
        """
        target = require_label(target, "target")
        chosen = check_blocks(blocks, self.context.grid)
        if self.mapping is not None:
            return self.split(target, blocks_region(chosen, self.context), new_label)
        locks = _split_locks(target, new_label)
        record = self.edit(locks, lambda ctx: SplitCoarse.plan(ctx, target, chosen, new_label))
        assert isinstance(record, SplitCoarse)
        return record.new_label, record.mutation_id

    def next_label(self, n: int = 1, start: int | None = None) -> tuple[int, int]:
        """Reserve ``n`` consecutive unused labels (from ``start``: at or past the
        next free label); returns (start, end)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise InvalidMutationError(f"the number of labels to reserve must be >= 1, got {n!r}")
        with self.gate.shared():
            first = self.counters.reserve(int(n), start)
            end = first + int(n) - 1
            try:
                self._commit_done(lambda stamp: NextLabel(stamp, (), first, end), label=end)
            finally:
                self.counters.release(first)
        return first, end

    def set_max_label(self, value: int) -> int | None:
        """Raise the max label to ``value`` (never lowers it); returns the
        MutationID, or None when the max label already is ``value``: as DVID,
        nothing is then recorded or sent."""
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise InvalidMutationError(f"max label must be a positive integer, got {value!r}")
        if value > MAX_LABEL:
            raise InvalidMutationError(f"max label {value} is not a uint64 label")
        with self.gate.shared(), self._max_label_lock:
            if not self.counters.check_max_label(int(value)):
                return None
            record = self._commit_done(
                lambda stamp: MaxLabel(stamp, (), int(value)), label=int(value)
            )
        return record.mutation_id

    # ---------------------------------------------------------------- history
    def undo(self) -> int:
        """Apply the inverse of the last undoable mutation as a new mutation."""
        return self._walk_history("undo")

    def redo(self) -> int:
        """Apply again the last undone mutation, as a new mutation."""
        return self._walk_history("redo")

    def _walk_history(self, direction: Direction) -> int:
        with self._history_lock:
            of = self.history.top(direction)
            row = self.journal.mutation(of)
            assert row is not None
            done = record_from_json(row)

            def build(ctx: EditContext) -> Plan:
                if direction == "redo":
                    return done.redo_plan(ctx)
                plan = done.undo_plan(ctx)
                assert plan is not None, f"mutation {of} on the undo stack cannot be undone"
                return plan

            return self.edit(done.labels_held(), build, Step(direction, of)).mutation_id

    # ------------------------------------------------------------ the pipeline
    def edit(
        self,
        labels: Iterable[int],
        build: Callable[[EditContext], Plan],
        step: Step | None = None,
    ) -> Mutation:
        """Run the plan ``build`` makes under the locks of ``labels``: the one way
        every voxel mutation runs (a new kind needs nothing more).

        Returns the mutation's record once every level is written; raises the
        plan's error (nothing changed) if it is refused.
        """
        with self.label_locks.hold(labels):
            plan = build(self.context)
            try:
                return self._run(plan, step)
            finally:
                if plan.release is not None:
                    plan.release()

    def _run(self, plan: Plan, step: Step | None) -> Mutation:
        committed: list[Mutation] = []

        def commit(changes: list[BlockChange], *, done: bool = False) -> None:
            record, rows = self.committer.commit(plan, changes, step, done=done)
            committed.append(record)
            moves = self.remap(record)
            self.signals.mutation_started.emit(record)
            bodies = {b for m in moves for b in (m.source, m.target)}
            self.signals.labels_changed.emit(sorted({r[0] for r in rows} | bodies))
            if moves and len(self.signals.blocks_changed):  # (a view is listening)
                self.pool.submit(self._announce_remapped, [m.svs for m in moves])

        interrupted: BaseException | None = None
        if plan.transform is None:  # (the mapping only: durable and done at once, here)
            with self.gate.shared():
                commit([], done=True)
                self.signals.mutation_completed.emit(committed[0])
            return committed[0]
        with self.gate.shared():
            coords = self.scheduler.visible_first(plan.coords)
            with self.scheduler.block_locks[0].hold(coords):
                previous: Previous = {}
                try:
                    self.scheduler.run(coords, plan.transform, previous, commit)
                except BaseException as exc:
                    if not committed:
                        self.scheduler.revert(previous)
                        raise
                    interrupted = exc  # (Ctrl-C) after it is durable: finish it first
            record = committed[0]
            if interrupted is not None:
                self.scheduler.cascade(record.touched, full=True)
            self.committer.complete(record)
            self.signals.mutation_completed.emit(record)
        if interrupted is not None:
            raise interrupted
        return record

    def remap(self, record: Mutation) -> list[Move]:
        """Apply a committed record's moves to the mapping; returns them."""
        moves = record.moves(self.journal.get_blob)
        if moves:
            mapping = self.mapping
            assert mapping is not None, f"a labelmap {record.action} in a voxel-mode dataset"
            for move in moves:
                mapping.move(move.svs, move.source, move.target)
            self.context.note_body_sizes(record.body_sizes())
        return moves

    def _announce_remapped(self, groups: list[NDArray[np.uint64]]) -> None:
        """Emit ``blocks_changed`` at every scale for the blocks that hold the
        remapped supervoxels (the label index names them); on a pool thread,
        after the edit, so that a body's size never slows its merge."""
        s0 = np.array(sorted(self.journal.labels_blocks(np.concatenate(groups))), np.int64)
        for scale in range(len(self.scheduler.block_locks)):
            coords = np.unique(s0 >> scale, axis=0) if s0.size else s0
            self.signals.blocks_changed.emit(scale, [tuple(c) for c in coords.tolist()])

    def _commit_done(self, make: Callable[[Stamp], Mutation], label: int) -> Mutation:
        record = self.committer.commit_done(make, label)
        self.signals.mutation_completed.emit(record)
        return record

    # ------------------------------------------------------- views and repair
    def set_visible(self, scale: int, coords: Iterable[Coord]) -> None:
        """The blocks a viewer shows at ``scale``, most wanted first: edits compute
        (and show) them first.  Any thread; replaces the previous set."""
        self.scheduler.set_visible(scale, coords)

    def cascade(self, coords: Iterable[Coord], *, full: bool = False) -> None:
        """Recompute the ancestors of changed s0 blocks (``full``: every octant)."""
        self.scheduler.cascade(coords, full=full)

    def replay(self, after: int, *, complete: bool) -> list[int]:
        """Re-apply the recorded mutations after MutationID ``after`` (see
        :func:`app.model.engine.recovery.replay`); returns their ids."""
        return recovery.replay(
            self.journal, self.scheduler, self.context, self.committer, after,
            complete=complete, remap=self.remap,
        )

    def reindex(
        self, progress: Callable[[int, int], None] | None = None, recounts: Recounts | None = None
    ) -> int:
        """Rebuild the label index from s0 (counted on the engine's pool, or by
        ``recounts``); returns the number of labels."""
        with self.gate.exclusive():
            self.context.forget_body_sizes()
            return reindex(self.store, self.journal, self.counters, self.pool, progress, recounts)


def _split_locks(target: int, new_label: int | None) -> list[int]:
    """The labels a split holds: its target, and the new label if one is asked for."""
    return [target] if new_label is None else [target, require_new_label(new_label, target)]
