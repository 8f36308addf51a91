"""The mutation engine: validated, durable, block-parallel edits with exact downres.

Every voxel mutation runs the same phases (SPEC §4):

1. **validate** under the label locks, from the label index (clear error,
   nothing changed);
2. **s0 phase**: the touched s0 blocks (only those the index names) are
   rewritten on the worker pool under their block locks, and staged for
   readers as they come (put back if the mutation is refused); then ONE
   small journal transaction holds the mutation record (with the blocks it
   touched), the label index rows, the counters, the undo data and the start
   event.  After this commit the edit is durable;
3. **cascade**, overlapping the s0 phase: each parent of changed blocks is
   recomputed as soon as the blocks below it are final, only in the octants
   of changed children, under its block lock; a branch stops as soon as a
   parent comes out unchanged;
4. **complete**: the record is marked done and the complete event written.

Block images are not journaled: a checkpoint (:mod:`app.model.dataset`)
writes the staged blocks into the HDF5 file with the id of the last mutation
they contain, and reopening :meth:`MutationEngine.replay`-s the recorded
mutations after it.  Replay applies the same block transforms to the same
blocks, so a crash at any point leaves each mutation fully applied or not at
all.

Threads: public methods may be called from any thread except the engine's own
pool workers.  Signals are emitted from the calling thread, except
``mutation_started`` and ``labels_changed``: from the commit thread.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psygnal import Signal

from app.kernels import (
    count_in,
    index_dtype,
    label_counts,
    mask_to_rles,
    relabel_inplace,
    split_inplace,
)
from app.model.cascade_tree import CascadeTree
from app.model.errors import InvalidMutationError, NothingToUndoError
from app.model.events.gotime import now_go
from app.model.journal import Coord, Journal
from app.model.locks import Gate, LabelLocks, StripedLocks
from app.model.mutation_events import complete_events, start_events
from app.model.octants import children_of, refresh_block, refresh_octants
from app.model.palette_block import PaletteBlock
from app.model.regions import SplitRegion
from app.model.store import LABELS, PyramidStore, StagedBlock
from app.model.undo_maps import decode_undo_map, encode_undo_map

UNDO_DEPTH = 1000
MAX_LABEL = (1 << 64) - 1

Transform = Callable[[Coord], "BlockChange"]
"""Computes one s0 block's change (reading the block itself)."""


class EngineSignals:
    """Plain (psygnal) events of the engine, emitted while a mutation holds the
    engine, from the thread running it (``mutation_started`` and
    ``labels_changed``: from the engine's commit thread): slots must return
    quickly and must not call back into the dataset (hand work to another
    thread or a Qt queue)."""

    mutation_started = Signal(dict)
    """A mutation's s0 phase is durable: its record (DVID field names)."""
    mutation_completed = Signal(dict)
    """Every level of a mutation is written: its record."""
    blocks_changed = Signal(int, list)
    """``(scale, [block coords])`` now show new data."""
    labels_changed = Signal(list)
    """Labels whose size or blocks changed."""


@dataclass(frozen=True)
class BlockChange:
    """What one block task produced."""

    coord: Coord
    new: NDArray[np.uint64] | PaletteBlock | None
    changed: int
    spans: NDArray[np.int32] | None = None
    counts: dict[int, int] = field(default_factory=dict)
    label_spans: dict[int, NDArray[np.int32]] = field(default_factory=dict)
    undo_map: bytes | None = None
    payload: bytes | None = None


@dataclass(frozen=True)
class Plan:
    """A validated voxel mutation, ready to run.

    ``finish`` sees every block change, raises InvalidMutationError if the
    result is not allowed (nothing is then written), and returns the record
    fields and label index rows.
    """

    record: dict[str, Any]
    coords: list[Coord]
    transform: Transform
    finish: Callable[[list[BlockChange]], tuple[dict[str, Any], list[tuple[int, Coord, int]]]]
    undoable: bool = True


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
    ) -> None:
        self.store = store
        self.journal = journal
        self.pool = pool
        self.committer = committer
        self.workers = workers
        self.uuid = uuid
        self.user = user
        self.signals = EngineSignals()
        self.label_locks = LabelLocks()
        # One lock set per scale: the holders of s0 locks wait for pool tasks,
        # and pool tasks take only locks of scales >= 1, so no cycle can form.
        self.block_locks = [StripedLocks() for _ in store.levels(LABELS)]
        self._gen = itertools.count(1)
        self.gate = Gate()
        self._counter_lock = threading.Lock()
        self._undo_lock = threading.Lock()
        self._visible: tuple[int, dict[Coord, int]] = (0, {})  # scale, block → rank
        attrs_next = int(store.attr("next_label", 1))
        self.max_label_value = max(
            int(journal.get_meta("max_label") or 0), int(store.attr("max_label", 0))
        )
        self.next_label_value = max(
            int(journal.get_meta("next_label") or 0), attrs_next, self.max_label_value + 1
        )
        self._new_labels: set[int] = set()  # allocated to mutations still running
        self.next_mutation_id = max(
            int(journal.get_meta("next_mutation_id") or 0),
            int(store.attr("next_mutation_id", 1)),
            1,
        )

    # ----------------------------------------------------------------- helpers
    @property
    def shape(self) -> tuple[int, int, int]:
        """s0 shape."""
        return self.store.shape

    @property
    def block_size(self) -> tuple[int, int, int]:
        """Block shape."""
        return self.store.block_size

    def _allocate(self, n: int = 1) -> int:
        with self._counter_lock:
            start = self.next_label_value
            if start + n - 1 > MAX_LABEL:
                raise InvalidMutationError("no more labels: the uint64 range is exhausted")
            self.next_label_value += n
            self.max_label_value = max(self.max_label_value, start + n - 1)
            return start

    def _release_new_label(self, label: int) -> None:
        with self._counter_lock:
            self._new_labels.discard(label)

    def _note_label(self, label: int) -> None:
        with self._counter_lock:
            self.max_label_value = max(self.max_label_value, label)
            self.next_label_value = max(self.next_label_value, label + 1)

    def _mutation_id(self, n: int = 1) -> int:
        """Reserve ``n`` consecutive MutationIDs; returns the first."""
        with self._counter_lock:
            mid = self.next_mutation_id
            self.next_mutation_id += n
            return mid

    def _write_counters(self, cur: Any) -> None:
        """Raise the persisted counters to the engine's (never lower them).

        Kept as decimal text and compared in Python: labels span the whole
        uint64 range, beyond SQLite's signed integers.
        """
        with self._counter_lock:
            values = {
                "next_label": self.next_label_value,
                "max_label": self.max_label_value,
                "next_mutation_id": self.next_mutation_id,
            }
        for key, value in values.items():
            row = cur.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is None or int(row[0]) < value:
                Journal.set_meta(cur, key, str(value))

    def _stamp(self, record: dict[str, Any], mid: int) -> dict[str, Any]:
        stamped = {
            "Action": record["Action"],
            "MutationID": mid,
            "UUID": self.uuid,
            "Timestamp": now_go(),
        }
        stamped.update({k: v for k, v in record.items() if k != "Action"})
        if self.user:
            stamped["User"] = self.user
        stamped["App"] = "segmend"
        return stamped

    def require_label(self, value: Any, what: str) -> int:
        """``value`` as a valid non-zero uint64 label, or InvalidMutationError naming it."""
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise InvalidMutationError(f"{what} must be an integer label, got {value!r}")
        label = int(value)
        if label == 0:
            raise InvalidMutationError(f"{what} is 0: label 0 is background and cannot be edited")
        if not 0 < label <= MAX_LABEL:
            raise InvalidMutationError(f"{what} {label} is not a uint64 label")
        return label

    def _blocks_of(self, label: int, what: str) -> dict[Coord, int]:
        blocks = self.journal.label_blocks(label)
        if not blocks:
            raise InvalidMutationError(f"{what} {label} has no voxels")
        return blocks

    # -------------------------------------------------------------- operations
    # -------------------------------------------------------- block transforms
    def _merge_transform(
        self,
        target: int,
        sources: Sequence[int],
        keep_undo: bool = False,
        block_sources: Mapping[Coord, Sequence[int]] | None = None,
    ) -> Transform:
        """``sources`` (sorted) become ``target``; with ``keep_undo`` each changed
        block also gets its undo map (:mod:`app.model.undo_maps`).

        Blocks are relabelled in palette form (:class:`PaletteBlock`): only a
        block's first merge since it was last written to the file touches its
        voxels.  ``block_sources`` (from the label index) names the sources
        each block holds, so that a merge of many bodies costs per block what a
        merge of one does.
        """
        keys = np.array(sources, dtype=np.uint64)
        codes = np.arange(1, keys.size + 1, dtype=index_dtype(keys.size))

        def transform(coord: Coord) -> BlockChange:
            block_keys, block_codes = keys, codes
            if block_sources is not None and coord in block_sources:
                block_keys = np.array(block_sources[coord], dtype=np.uint64)
                block_codes = codes[np.searchsorted(keys, block_keys)]
            palette = self.store.read_palette(LABELS, coord)
            new, n, index = palette.merged(block_keys, block_codes, target, undo=keep_undo)
            undo_map = encode_undo_map(index) if index is not None else None
            return BlockChange(coord, new, n, undo_map=undo_map)

        return transform

    def _split_transform(self, target: int, label: int, region: SplitRegion) -> Transform:
        def transform(coord: Coord) -> BlockChange:
            block = self._s0(coord)
            mask = region.mask(coord, self.block_size, block.shape)
            new = block.copy()
            n = split_inplace(new, mask, target, label)
            spans = mask_to_rles(new == label, _origin(coord, self.block_size)) if n else None
            return BlockChange(coord, new if n else None, n, spans)

        return transform

    def _restore_transform(self, target: int, sources: Sequence[int], undone: int) -> Transform:
        """Put back the labels a merge changed (from its undo maps)."""
        maps = self.journal.undo_maps(undone)
        labels = np.array(sources, dtype=np.uint64)
        count_keys = np.array([target, *sources], dtype=np.uint64)

        def transform(coord: Coord) -> BlockChange:
            block = self._s0(coord)
            index = decode_undo_map(maps[coord], block.shape, len(sources))
            restore = (index != 0) & (block == target)
            new = block.copy()
            new[restore] = labels[index[restore].astype(np.intp) - 1]
            n = int(restore.sum())
            counts = dict(
                zip([target, *sources], (int(v) for v in count_in(new, count_keys)), strict=True)
            )
            origin = _origin(coord, self.block_size)
            spans = {
                s: mask_to_rles(restore & (index == k + 1), origin)
                for k, s in enumerate(sources)
                if counts[s]
            }
            return BlockChange(coord, new if n else None, n, counts=counts, label_spans=spans)

        return transform

    def _transform_of(self, record: dict[str, Any]) -> Transform | None:
        """The block transform a recorded mutation applied (None: no voxels changed)."""
        action = record["Action"]
        if action.startswith("post-"):
            return None
        target = int(record["Target"])
        if action == "undo" and record["Of"] == "merge":
            return self._restore_transform(target, record["Labels"], record["Undoes"])
        if action in ("merge", "undo"):
            return self._merge_transform(target, record["Labels"])
        region = SplitRegion.from_rle_bytes(self.journal.get_blob(record["Split"]), headered=False)
        return self._split_transform(target, int(record["NewLabel"]), region)

    # -------------------------------------------------------------- operations
    def merge(self, target: int, labels: Iterable[int]) -> int:
        """Every voxel of ``labels`` becomes ``target``; returns the MutationID."""
        target = self.require_label(target, "target")
        sources = sorted({self.require_label(v, "label") for v in labels})
        if not sources:
            raise InvalidMutationError("merge needs at least one label to merge into the target")
        if target in sources:
            raise InvalidMutationError(f"target {target} is also among the labels to merge")
        with self.label_locks.hold([target, *sources]):
            plan = self._merge_plan(target, sources, {"Action": "merge"})
            return self._run(plan)

    def _merge_plan(
        self, target: int, sources: list[int], record: dict[str, Any], keep_undo: bool = True
    ) -> Plan:
        target_blocks = self._blocks_of(target, "target")
        source_blocks = {s: self._blocks_of(s, "label") for s in sources}
        coords = sorted(set().union(*source_blocks.values()))
        expected = sum(sum(b.values()) for b in source_blocks.values())

        def finish(
            changes: list[BlockChange],
        ) -> tuple[dict[str, Any], list[tuple[int, Coord, int]]]:
            moved = sum(c.changed for c in changes)
            if moved != expected:
                raise InvalidMutationError(
                    f"label index disagrees with the voxels ({moved} moved, index says "
                    f"{expected}); run 'segmend reindex'"
                )
            rows: list[tuple[int, Coord, int]] = []
            for c in coords:
                total = target_blocks.get(c, 0) + sum(b.get(c, 0) for b in source_blocks.values())
                rows.append((target, c, total))
                rows.extend((s, c, 0) for s in sources if c in source_blocks[s])
            size = sum(target_blocks.values()) + expected
            return {"Target": target, "Labels": sources, "TargetSize": size}, rows

        block_sources: dict[Coord, list[int]] = {}
        for source in sources:
            for c in source_blocks[source]:
                block_sources.setdefault(c, []).append(source)
        transform = self._merge_transform(target, sources, keep_undo, block_sources)
        return Plan({**record}, coords, transform, finish)

    def split(
        self, target: int, region: SplitRegion, new_label: int | None = None
    ) -> tuple[int, int]:
        """Voxels of ``target`` inside ``region`` become a new label.

        Returns
        -------
        (label, MutationID)
        """
        target = self.require_label(target, "target")
        region.check_bounds(self.shape)
        lock = [target] if new_label is None else [target, self._check_new_label(new_label, target)]
        with self.label_locks.hold(lock):
            target_blocks = self._blocks_of(target, "target")
            coords = [c for c in region.block_coords(self.block_size) if c in target_blocks]
            if not coords:
                raise InvalidMutationError(f"the split region holds no voxel of target {target}")
            label = self._claim_new_label(new_label, target)
            try:
                transform = self._split_transform(target, label, region)
                plan = self._split_plan(
                    {"Action": "split"}, target, label, target_blocks, coords, transform
                )
                return label, self._run(plan)
            finally:
                self._release_new_label(label)

    def split_coarse(
        self, target: int, blocks: Sequence[Sequence[int]], new_label: int | None = None
    ) -> tuple[int, int]:
        """Every voxel of ``target`` in the given s0 blocks becomes a new label.

        Returns
        -------
        (label, MutationID)
        """
        target = self.require_label(target, "target")
        grid = self.store.level(LABELS, 0).grid
        chosen: list[Coord] = []
        for b in blocks:
            values = tuple(int(v) for v in b)
            if len(values) != 3 or any(not 0 <= c < g for c, g in zip(values, grid, strict=True)):
                raise InvalidMutationError(f"block {tuple(b)} is outside the block grid {grid}")
            chosen.append((values[0], values[1], values[2]))
        if not chosen:
            raise InvalidMutationError("split-coarse needs at least one block")
        lock = [target] if new_label is None else [target, self._check_new_label(new_label, target)]
        with self.label_locks.hold(lock):
            target_blocks = self._blocks_of(target, "target")
            coords = sorted(c for c in set(chosen) if c in target_blocks)
            if not coords:
                raise InvalidMutationError(f"the split blocks hold no voxel of target {target}")
            if len(coords) == len(target_blocks):
                raise InvalidMutationError(
                    f"the split blocks hold all of target {target}; nothing would remain"
                )
            label = self._claim_new_label(new_label, target)
            keys = np.array([target], dtype=np.uint64)

            def transform(coord: Coord) -> BlockChange:
                new = self._s0(coord).copy()
                n = relabel_inplace(new, keys, label)
                spans = mask_to_rles(new == label, _origin(coord, self.block_size))
                return BlockChange(coord, new, n, spans)

            record = {"Action": "splitcoarse", "Blocks": [list(c) for c in coords]}
            plan = self._split_plan(record, target, label, target_blocks, coords, transform)
            try:
                return label, self._run(plan)
            finally:
                self._release_new_label(label)

    def _check_new_label(self, new_label: int, target: int) -> int:
        label = self.require_label(new_label, "new label")
        if label == target:
            raise InvalidMutationError(f"new label {label} is the target itself")
        return label

    def _claim_new_label(self, new_label: int | None, target: int) -> int:
        """A label for a split: allocated, or ``new_label`` if nobody uses it.

        The label counts as in use until :meth:`_release_new_label`, so that a
        concurrent split cannot be given the same one.
        """
        if new_label is None:
            label = self._allocate()
        else:
            label = new_label
            with self._counter_lock:
                if label in self._new_labels:
                    raise InvalidMutationError(f"new label {label} is in use")
            if self.journal.label_size(label):
                raise InvalidMutationError(f"new label {label} is in use")
            self._note_label(label)
        with self._counter_lock:
            self._new_labels.add(label)
        return label

    def _split_plan(
        self,
        record: dict[str, Any],
        target: int,
        label: int,
        target_blocks: dict[Coord, int],
        coords: list[Coord],
        transform: Transform,
    ) -> Plan:
        size = sum(target_blocks.values())

        def finish(
            changes: list[BlockChange],
        ) -> tuple[dict[str, Any], list[tuple[int, Coord, int]]]:
            moved = sum(c.changed for c in changes)
            if moved == 0:
                raise InvalidMutationError(f"the split region holds no voxel of target {target}")
            if moved == size:
                raise InvalidMutationError(
                    f"the split region holds all {size} voxels of target {target}; "
                    "nothing would remain"
                )
            rows: list[tuple[int, Coord, int]] = []
            for c in changes:
                if c.changed:
                    rows.append((target, c.coord, target_blocks[c.coord] - c.changed))
                    rows.append((label, c.coord, c.changed))
            fields = {
                "Target": target,
                "NewLabel": label,
                "TargetSize": size - moved,
                "NewLabelSize": moved,
            }
            return fields, rows

        return Plan(record, coords, transform, finish)

    def next_label(self, n: int = 1) -> tuple[int, int]:
        """Reserve ``n`` consecutive unused labels; returns (start, end)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise InvalidMutationError(f"the number of labels to reserve must be >= 1, got {n!r}")
        with self.gate.shared():
            start = self._allocate(int(n))
            end = start + int(n) - 1
            self._commit_counter_record(
                {"Action": "post-nextlabel", "Start Label": start, "End Label": end}
            )
        return start, end

    def set_max_label(self, value: int) -> int:
        """Raise the max label to ``value`` (never lowers it); returns the MutationID."""
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise InvalidMutationError(f"max label must be a positive integer, got {value!r}")
        if value > MAX_LABEL:
            raise InvalidMutationError(f"max label {value} is not a uint64 label")
        with self.gate.shared():
            with self._counter_lock:
                if value < self.max_label_value:
                    raise InvalidMutationError(
                        f"max label {value} is below the current max label {self.max_label_value}"
                    )
            self._note_label(int(value))
            return self._commit_counter_record({"Action": "post-maxlabel", "MaxLabel": int(value)})

    def _commit_counter_record(self, record: dict[str, Any]) -> int:
        mid = self._mutation_id()
        stamped = self._stamp(record, mid)
        with self.journal.transaction() as cur:
            Journal.put_mutation(cur, stamped, "done")
            self._write_counters(cur)
            start_events(cur, stamped)
        self.signals.mutation_completed.emit(stamped)
        return mid

    # ------------------------------------------------------------- undo / redo
    def undo(self) -> int:
        """Apply the inverse of the last undoable mutation as a new mutation."""
        with self._undo_lock:
            stack = self.journal.get_json("undo_stack", [])
            if not stack:
                raise NothingToUndoError("nothing to undo")
            done = self.journal.mutation(stack[-1])
            assert done is not None
            target = int(done["Target"])
            record = {"Action": "undo", "Undoes": done["MutationID"], "Of": done["Action"]}
            stacks = ("undo", done["MutationID"])
            if done["Action"] == "merge":
                sources = [int(v) for v in done["Labels"]]
                with self.label_locks.hold([target, *sources]):
                    plan = self._restore_plan(done, target, sources, record)
                    return self._run(plan, stacks)
            label = int(done["NewLabel"])
            with self.label_locks.hold([target, label]):
                plan = self._merge_plan(target, [label], record, keep_undo=False)
                return self._run(plan, stacks)

    def redo(self) -> int:
        """Apply again the last undone mutation, as a new mutation."""
        with self._undo_lock:
            stack = self.journal.get_json("redo_stack", [])
            if not stack:
                raise NothingToUndoError("nothing to redo")
            done = self.journal.mutation(stack[-1])
            assert done is not None
            target = int(done["Target"])
            record = {"Action": done["Action"], "Redoes": done["MutationID"]}
            stacks = ("redo", done["MutationID"])
            if done["Action"] == "merge":
                sources = [int(v) for v in done["Labels"]]
                with self.label_locks.hold([target, *sources]):
                    return self._run(self._merge_plan(target, sources, record), stacks)
            label = int(done["NewLabel"])
            with self.label_locks.hold([target, label]):
                target_blocks = self._blocks_of(target, "target")
                transform = self._transform_of(done)
                assert transform is not None
                coords = [c for c in _touched(done) if c in target_blocks]
                if done["Action"] == "splitcoarse":
                    record["Blocks"] = done["Blocks"]
                plan = self._split_plan(record, target, label, target_blocks, coords, transform)
                return self._run(plan, stacks)

    def _restore_plan(
        self, done: dict[str, Any], target: int, sources: list[int], record: dict[str, Any]
    ) -> Plan:
        target_size = self.journal.label_size(target)

        def finish(
            changes: list[BlockChange],
        ) -> tuple[dict[str, Any], list[tuple[int, Coord, int]]]:
            rows = [(label, c.coord, n) for c in changes for label, n in c.counts.items()]
            sizes = {s: sum(c.counts.get(s, 0) for c in changes) for s in sources}
            return {
                "Target": target,
                "Labels": sources,
                "TargetSize": target_size - sum(c.changed for c in changes),
                "LabelSizes": {str(k): v for k, v in sizes.items()},
            }, rows

        transform = self._restore_transform(target, sources, done["MutationID"])
        return Plan(record, _touched(done), transform, finish, undoable=False)

    # ------------------------------------------------------------ the pipeline
    def _run(self, plan: Plan, stacks: tuple[str, int] | None = None) -> int:
        committed: list[dict[str, Any]] = []

        def commit(changes: list[BlockChange]) -> None:
            record, rows = self._commit(plan, changes, stacks)
            committed.append(record)
            self.signals.mutation_started.emit(record)
            self.signals.labels_changed.emit(sorted({r[0] for r in rows}))

        with self.gate.shared():
            coords = self._visible_first(plan.coords)
            with self.block_locks[0].hold(coords):
                previous: dict[Coord, StagedBlock | None] = {}
                try:
                    self._apply(coords, plan.transform, previous, commit)
                except BaseException:
                    if not committed:
                        self._revert(previous)
                    raise
            self._complete(committed[0])
        return int(committed[0]["MutationID"])

    def _commit(
        self, plan: Plan, changes: list[BlockChange], stacks: tuple[str, int] | None
    ) -> tuple[dict[str, Any], list[tuple[int, Coord, int]]]:
        """Validate the result and journal the mutation in one durable transaction."""
        fields, rows = plan.finish(changes)
        restored = sorted({label for c in changes for label in c.label_spans})
        mid = self._mutation_id(max(1, len(restored)))
        record = self._stamp({**plan.record, **fields}, mid)
        written = [c for c in changes if c.new is not None]
        record["TouchedBlocks"] = [list(c.coord) for c in written]
        with self.journal.transaction() as cur:
            self._store_spans(cur, record, changes, restored)
            Journal.put_mutation(cur, record, "s0")
            Journal.set_label_counts(cur, rows)
            Journal.put_undo_maps(cur, mid, [(c.coord, c.undo_map) for c in written if c.undo_map])
            self._update_stacks(cur, mid, plan.undoable, stacks)
            self._write_counters(cur)
            start_events(cur, record)
        return record, rows

    def _apply(
        self,
        coords: list[Coord],
        transform: Transform | None,
        previous: dict[Coord, StagedBlock | None],
        s0_done: Callable[[list[BlockChange]], None] | None = None,
        *,
        full: bool = False,
    ) -> None:
        """Rewrite s0 blocks and refresh their ancestors, each as soon as it can be.

        With a ``transform``, the s0 tasks run on the pool in the order of
        ``coords`` (visible blocks first); each changed block is staged at once
        (its prior state kept in ``previous`` for :meth:`_revert`), and
        ``s0_done`` gets every change, in ``coords`` order, when the last one is
        in: on the committer thread, while the cascade goes on here; this
        returns once both are done (raising the commit's error, if any).
        Without, ``coords`` are s0 blocks that already changed.  A parent is
        refreshed as soon as the blocks below it are final (see
        :class:`CascadeTree`), ahead of the s0 tasks still waiting, so the
        levels overlap instead of running one after the other.  Changed s0
        blocks are announced (``blocks_changed``) together once those a viewer
        showing s0 has in view are all done, so that the view redraws the edit
        once.  Two tasks per worker are in flight, so that the pool stays busy
        while this thread stages blocks.  ``full`` recomputes every octant of
        every ancestor (the repair of an interrupted cascade).  If a task
        fails, the tasks in flight (and the commit) finish and the error is
        raised.
        """
        tree = CascadeTree(coords, len(self.store.levels(LABELS)))
        waiting_s0 = deque(coords if transform is not None else [])
        ready: deque[tuple[int, Coord, list[Coord] | None]] = deque()
        if transform is None:
            for c in coords:
                ready.extend(
                    (s, p, None if full else kids) for s, p, kids in tree.resolve(0, c, True)
                )
        changes: dict[Coord, BlockChange] = {}
        dirty: dict[tuple[int, Coord], list[Coord]] = {}  # refreshed block → changed children
        in_view = self._in_view_s0(coords) if transform is not None else set()
        held: list[Coord] = []  # changed s0 blocks not announced until in_view is done
        running: dict[Future[Any], tuple[int, Coord]] = {}
        finished: SimpleQueue[Future[Any]] = SimpleQueue()
        commit: Future[None] | None = None

        def submit(limit: int) -> None:
            """Parents first, then s0 tasks, until ``limit`` tasks are in flight."""
            while len(running) < limit and (ready or waiting_s0):
                task: Future[Any]
                if ready:
                    scale, parent, kids = ready.popleft()
                    parts = None
                    if kids is not None:  # the parts of each child that changed
                        parts = {k: dirty.pop((scale - 1, k), None) for k in kids}
                    task = self.pool.submit(self._refresh, scale, parent, parts)
                    running[task] = (scale, parent)
                else:
                    coord = waiting_s0.popleft()
                    assert transform is not None
                    task = self.pool.submit(self._block_task, transform, coord)
                    running[task] = (0, coord)
                task.add_done_callback(finished.put)

        try:
            while True:
                if transform is not None and s0_done is not None and len(changes) == len(coords):
                    commit = self.committer.submit(s0_done, [changes[c] for c in coords])
                    s0_done = None
                if not (waiting_s0 or ready or running):
                    break
                submit(2 * self.workers)
                done = [finished.get()]
                while not finished.empty():
                    done.append(finished.get())
                redrawn: dict[int, list[Coord]] = {}
                for task in done:
                    scale, coord = running.pop(task)
                    result = task.result()
                    if isinstance(result, BlockChange):
                        changes[coord] = result
                        changed = result.new is not None
                        if changed:
                            previous[coord] = self._stage_change(result)
                    else:
                        changed = bool(result) or full
                        dirty[(scale, coord)] = result
                    if changed:
                        redrawn.setdefault(scale, []).append(coord)
                    if scale == 0:
                        in_view.discard(coord)
                    for s, p, kids in tree.resolve(scale, coord, changed):
                        ready.append((s, p, None if full else kids))
                held += redrawn.pop(0, [])
                if held and not in_view:
                    redrawn[0], held = held, []
                for scale, blocks in sorted(redrawn.items()):
                    self.signals.blocks_changed.emit(scale, sorted(blocks))
            if commit is not None:
                commit.result()
        except BaseException:
            wait([*running, *([commit] if commit is not None else [])])
            raise

    def _stage_change(self, change: BlockChange) -> StagedBlock | None:
        """Stage a changed s0 block; returns what was staged for it before."""
        assert change.new is not None
        key = (LABELS, 0, *change.coord)
        before = self.store.staged(key)
        self.store.stage(key, change.new, change.payload, next(self._gen))
        return before

    def _revert(self, previous: dict[Coord, StagedBlock | None]) -> None:
        """Put back the s0 blocks of a refused mutation, and recompute their ancestors."""
        for coord, before in previous.items():
            self.store.restore((LABELS, 0, *coord), before)
        if previous:
            self.signals.blocks_changed.emit(0, sorted(previous))
            self.cascade(sorted(previous))

    def _store_spans(
        self, cur: Any, record: dict[str, Any], changes: list[BlockChange], restored: list[int]
    ) -> None:
        """Put a split's voxels (or an undone merge's, per label) in the blob store."""
        spans = [c.spans for c in changes if c.spans is not None]
        if spans:
            record["Split"] = self.journal.put_spans(cur, np.concatenate(spans))
        if restored:
            mid = record["MutationID"]
            record["MutationIDs"] = list(range(mid, mid + len(restored)))
            record["Splits"] = [
                [
                    label,
                    self.journal.put_spans(
                        cur,
                        np.concatenate(
                            [c.label_spans[label] for c in changes if label in c.label_spans]
                        ),
                    ),
                ]
                for label in restored
            ]

    # ------------------------------------------------------------- visibility
    def set_visible(self, scale: int, coords: Iterable[Coord]) -> None:
        """The blocks a viewer shows at ``scale``, most wanted first (e.g. from the
        view centre out): the work under them goes first, in that order.

        Called from any thread; replaces the previous visible set.
        """
        rank: dict[Coord, int] = {}
        for z, y, x in coords:
            rank.setdefault((int(z), int(y), int(x)), len(rank))
        with self._counter_lock:
            self._visible = (scale, rank)

    def _visible_first(self, coords: Iterable[Coord]) -> list[Coord]:
        """s0 blocks: those under visible blocks first, in the viewer's order, then
        the others in (z, y, x) order."""
        with self._counter_lock:
            down, rank = self._visible
        last = len(rank)
        return sorted(
            coords, key=lambda c: (rank.get((c[0] >> down, c[1] >> down, c[2] >> down), last), c)
        )

    def _in_view_s0(self, coords: Iterable[Coord]) -> set[Coord]:
        """Those of ``coords`` that a viewer showing s0 has in view (none if it
        shows a coarser level)."""
        with self._counter_lock:
            down, rank = self._visible
        return {c for c in coords if c in rank} if down == 0 else set()

    def _s0(self, coord: Coord) -> NDArray[np.uint64]:
        return self.store.read_block(LABELS, 0, coord)

    def _block_task(self, transform: Transform, coord: Coord) -> BlockChange:
        """Run ``transform`` on s0 block ``coord``; a changed array is encoded here
        (a palette is held until a checkpoint)."""
        change = transform(coord)
        if not isinstance(change.new, np.ndarray):
            return change
        return dataclasses.replace(
            change, payload=self.store.encode_block(LABELS, 0, coord, change.new)
        )

    def _update_stacks(
        self, cur: Any, mid: int, undoable: bool, stacks: tuple[str, int] | None
    ) -> None:
        undo = self.journal.get_json("undo_stack", [])
        redo = self.journal.get_json("redo_stack", [])
        if stacks is None:
            if not undoable:
                return
            undo.append(mid)
            redo = []
        elif stacks[0] == "undo":
            if stacks[1] not in undo:
                raise NothingToUndoError(f"mutation {stacks[1]} was undone meanwhile")
            undo.remove(stacks[1])
            redo.append(stacks[1])
        else:
            if stacks[1] not in redo:
                raise NothingToUndoError(f"mutation {stacks[1]} can no longer be redone")
            redo.remove(stacks[1])
            undo.append(mid)
        Journal.drop_undo_maps(cur, undo[:-UNDO_DEPTH])
        Journal.set_meta(cur, "undo_stack", undo[-UNDO_DEPTH:])
        Journal.set_meta(cur, "redo_stack", redo)

    def cascade(self, coords: Iterable[Coord], *, full: bool = False) -> None:
        """Recompute the ancestors of changed s0 blocks.

        Only the octants of changed children are recomputed, and a branch ends
        at the first parent that comes out unchanged (its ancestors cannot
        change either).  New blocks are staged for readers as they come.
        ``full`` recomputes every octant of every ancestor: the repair of a
        cascade that was interrupted part way.
        """
        self._apply(sorted(set(coords)), None, {}, full=full)

    def _refresh(
        self, scale: int, coord: Coord, children: dict[Coord, list[Coord] | None] | None
    ) -> list[Coord]:
        """Refresh block ``coord`` from the changed parts of ``children`` (see
        :func:`refresh_octants`; None: from all of every child); returns the
        children whose octant changed it (all of them if recomputed whole)."""
        with self.block_locks[scale].hold([coord]):
            old = self.store.read_block(LABELS, scale, coord)
            if children is None:
                new = refresh_block(self.store, LABELS, scale, coord)
                same = np.array_equal(new, old)
                changed = [] if same else children_of(self.store, LABELS, scale, coord)
            else:
                new, changed = refresh_octants(self.store, scale, coord, old, children)
            if changed:
                self.store.stage((LABELS, scale, *coord), new, None, next(self._gen))
        return changed

    def _complete(self, record: dict[str, Any]) -> None:
        """Mark the mutation done and add its complete event.

        Not fsync'ed: if a crash loses it, reopening replays the mutation and
        writes the same event again.
        """
        with self.journal.transaction(durable=False) as cur:
            Journal.put_mutation(cur, record, "done")
            complete_events(cur, record)
        self.signals.mutation_completed.emit(record)

    def replay(self, after: int, *, complete: bool) -> list[int]:
        """Re-apply, on the blocks as read, every recorded mutation after MutationID
        ``after`` (the last one the HDF5 file holds), in order; returns their ids.

        With ``complete``, mutations a crash interrupted are marked done and
        their complete events written (a writer reopening); a reader only
        stages the blocks in memory.
        """
        if complete:  # the file holds them, but a crash cut their cascade short
            for record in self.journal.mutations(0, state="s0"):
                if record["MutationID"] <= after:
                    self.cascade(_touched(record), full=True)
                    self._complete(record)
        replayed = []
        for record in self.journal.mutations(after):
            transform = self._transform_of(record)
            if transform is not None:
                coords = _touched(record)
                with self.block_locks[0].hold(coords):
                    self._apply(coords, transform, {})
            if complete and self.journal.mutation_state(record["MutationID"]) != "done":
                self._complete(record)
            replayed.append(record["MutationID"])
        return replayed

    # ------------------------------------------------------------------- index
    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the label index from s0; returns the number of labels."""
        level = self.store.level(LABELS, 0)
        coords = list(level.coords())
        done = itertools.count(1)

        def count(coord: Coord) -> list[tuple[int, Coord, int]]:
            labels, counts = label_counts(self.store.read_block(LABELS, 0, coord))
            if progress is not None:
                progress(next(done), len(coords))
            return [(int(lab), coord, int(n)) for lab, n in zip(labels, counts, strict=True) if lab]

        with self.gate.exclusive():
            rows = [r for block_rows in self.pool.map(count, coords) for r in block_rows]
            self._write_index(rows)
        return len({r[0] for r in rows})

    def _write_index(self, rows: list[tuple[int, Coord, int]]) -> None:
        top = max((r[0] for r in rows), default=0)
        self._note_label(top)
        with self.journal.transaction() as cur:
            Journal.clear_label_index(cur)
            Journal.set_label_counts(cur, rows)
            Journal.set_meta(cur, "index_built", "1")
            self._write_counters(cur)


def _touched(record: dict[str, Any]) -> list[Coord]:
    """The s0 blocks a recorded mutation changed."""
    return [(int(z), int(y), int(x)) for z, y, x in record.get("TouchedBlocks", [])]


def _origin(coord: Coord, block_size: tuple[int, int, int]) -> tuple[int, int, int]:
    return (coord[0] * block_size[0], coord[1] * block_size[1], coord[2] * block_size[2])
