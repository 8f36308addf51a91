"""The block scheduler: an edit's s0 blocks, then their ancestors, on the pool.

s0 tasks run in the order given (visible blocks first); each parent is
refreshed as soon as the blocks below it are final (:class:`CascadeTree`),
ahead of s0 tasks still waiting, so the levels overlap instead of running one
after the other.  Changed s0 blocks are announced together once those a
viewer showing s0 has in view are done, so that the view redraws an edit once.

Threads: :meth:`BlockScheduler.run` runs on the calling thread and keeps two
tasks per worker in flight on the pool; ``s0_done`` runs on the commit
thread; ``blocks_changed`` is emitted from the calling thread.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from queue import SimpleQueue
from typing import Any

import numpy as np

from app.model.engine.cascade_tree import CascadeTree
from app.model.engine.locks import StripedLocks
from app.model.engine.signals import EngineSignals
from app.model.geometry import Coord
from app.model.mutations.base import BlockChange, Transform
from app.model.storage.octants import children_of, refresh_block, refresh_octants
from app.model.storage.store import LABELS, PyramidStore, StagedBlock

S0Done = Callable[[list[BlockChange]], None]
"""Gets every s0 change of an edit, in order, on the commit thread."""
Previous = dict[Coord, "StagedBlock | None"]
"""What was staged for each changed s0 block before the edit (to put it back)."""


class BlockScheduler:
    """Runs block work of one pyramid's labels on a pool.

    Parameters
    ----------
    store : PyramidStore
        The writable pyramid; changed blocks are staged in it.
    pool : ThreadPoolExecutor
        Workers running block tasks.
    committer : ThreadPoolExecutor
        The commit thread (runs ``s0_done``).
    workers : int
        The pool's number of threads.
    signals : EngineSignals
        Where ``blocks_changed`` is emitted.
    """

    def __init__(
        self,
        store: PyramidStore,
        pool: ThreadPoolExecutor,
        committer: ThreadPoolExecutor,
        workers: int,
        signals: EngineSignals,
    ) -> None:
        self.store = store
        self.pool = pool
        self.committer = committer
        self.workers = workers
        self.signals = signals
        # One lock set per scale: the holders of s0 locks wait for pool tasks,
        # and pool tasks take only locks of scales >= 1, so no cycle can form.
        self.block_locks = [StripedLocks() for _ in store.levels(LABELS)]
        self._gen = itertools.count(1)
        self._visible_lock = threading.Lock()
        self._visible: tuple[int, dict[Coord, int]] = (0, {})  # scale, block → rank

    # ------------------------------------------------------------- visibility
    def set_visible(self, scale: int, coords: Iterable[Coord]) -> None:
        """The blocks a viewer shows at ``scale``, most wanted first: the work under
        them goes first, in that order.  Any thread; replaces the previous set."""
        rank: dict[Coord, int] = {}
        for z, y, x in coords:
            rank.setdefault((int(z), int(y), int(x)), len(rank))
        with self._visible_lock:
            self._visible = (scale, rank)

    def visible_first(self, coords: Iterable[Coord]) -> list[Coord]:
        """s0 blocks: those under visible blocks first, in the viewer's order, then
        the others in (z, y, x) order."""
        with self._visible_lock:
            down, rank = self._visible
        last = len(rank)
        return sorted(
            coords, key=lambda c: (rank.get((c[0] >> down, c[1] >> down, c[2] >> down), last), c)
        )

    def in_view_s0(self, coords: Iterable[Coord]) -> set[Coord]:
        """Those of ``coords`` that a viewer showing s0 has in view (none if it
        shows a coarser level)."""
        with self._visible_lock:
            down, rank = self._visible
        return {c for c in coords if c in rank} if down == 0 else set()

    # ------------------------------------------------------------------ runs
    def run(
        self,
        coords: list[Coord],
        transform: Transform | None,
        previous: Previous,
        s0_done: S0Done | None = None,
        *,
        full: bool = False,
    ) -> None:
        """Rewrite s0 blocks and refresh their ancestors, each as soon as it can be.

        With a ``transform``, the s0 tasks run in the order of ``coords``; each
        changed block is staged at once (its prior state kept in
        ``previous``), and ``s0_done`` gets every change when the last one is
        in, on the commit thread, while the cascade goes on here; this returns
        once both are done (raising the commit's error, if any).  Without,
        ``coords`` are s0 blocks that already changed.  ``full`` recomputes every
        octant of every ancestor (the repair of an interrupted cascade).  If a
        task fails, the tasks in flight (and the commit) finish and the error
        is raised.
        """
        _BlockRun(self, coords, transform, previous, s0_done, full).run()

    def cascade(self, coords: Iterable[Coord], *, full: bool = False) -> None:
        """Recompute the ancestors of changed s0 blocks (only the octants of changed
        children; a branch ends at the first parent that comes out unchanged)."""
        self.run(sorted(set(coords)), None, {}, full=full)

    def revert(self, previous: Previous) -> None:
        """Put back the s0 blocks of a refused mutation, and recompute their ancestors."""
        for coord, before in previous.items():
            self.store.restore((LABELS, 0, *coord), before)
        if previous:
            self.signals.blocks_changed.emit(0, sorted(previous))
            self.cascade(sorted(previous))

    # ------------------------------------------------------------ block tasks
    def block_task(self, transform: Transform, coord: Coord) -> BlockChange:
        """Run ``transform`` on s0 block ``coord`` (a pool thread); a changed array
        is encoded here (a palette is held until a checkpoint)."""
        change = transform(coord)
        if not isinstance(change.new, np.ndarray):
            return change
        return dataclasses.replace(
            change, payload=self.store.encode_block(LABELS, 0, coord, change.new)
        )

    def refresh(
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

    def stage_change(self, change: BlockChange) -> StagedBlock | None:
        """Stage a changed s0 block; returns what was staged for it before."""
        assert change.new is not None
        key = (LABELS, 0, *change.coord)
        before = self.store.staged(key)
        self.store.stage(key, change.new, change.payload, next(self._gen))
        return before


class _BlockRun:
    """The state of one :meth:`BlockScheduler.run`."""

    def __init__(
        self,
        scheduler: BlockScheduler,
        coords: list[Coord],
        transform: Transform | None,
        previous: Previous,
        s0_done: S0Done | None,
        full: bool,
    ) -> None:
        self.s = scheduler
        self.coords = coords
        self.transform = transform
        self.previous = previous
        self.s0_done = s0_done if transform is not None else None
        self.full = full
        self.tree = CascadeTree(coords, len(scheduler.store.levels(LABELS)))
        self.waiting_s0 = deque(coords if transform is not None else [])
        self.ready: deque[tuple[int, Coord, list[Coord] | None]] = deque()
        if transform is None:
            for c in coords:
                self._resolve(0, c, True)
        self.changes: dict[Coord, BlockChange] = {}
        self.dirty: dict[tuple[int, Coord], list[Coord]] = {}  # refreshed → changed children
        self.in_view = scheduler.in_view_s0(coords) if transform is not None else set()
        self.held: list[Coord] = []  # changed s0 blocks not announced until in_view is done
        self.running: dict[Future[Any], tuple[int, Coord]] = {}
        self.finished: SimpleQueue[Future[Any]] = SimpleQueue()
        self.commit: Future[None] | None = None

    def run(self) -> None:
        try:
            while True:
                if self.s0_done is not None and len(self.changes) == len(self.coords):
                    ordered = [self.changes[c] for c in self.coords]
                    self.commit = self.s.committer.submit(self.s0_done, ordered)
                    self.s0_done = None
                if not (self.waiting_s0 or self.ready or self.running):
                    break
                self._submit(2 * self.s.workers)
                self._collect()
            if self.commit is not None:
                self.commit.result()
        except BaseException:
            wait([*self.running, *([self.commit] if self.commit is not None else [])])
            raise

    def _resolve(self, scale: int, coord: Coord, changed: bool) -> None:
        for s, p, kids in self.tree.resolve(scale, coord, changed):
            self.ready.append((s, p, None if self.full else kids))

    def _submit(self, limit: int) -> None:
        """Parents first, then s0 tasks, until ``limit`` tasks are in flight."""
        pool = self.s.pool
        while len(self.running) < limit and (self.ready or self.waiting_s0):
            task: Future[Any]
            if self.ready:
                scale, parent, kids = self.ready.popleft()
                parts = None
                if kids is not None:  # the parts of each child that changed
                    parts = {k: self.dirty.pop((scale - 1, k), None) for k in kids}
                task = pool.submit(self.s.refresh, scale, parent, parts)
                self.running[task] = (scale, parent)
            else:
                coord = self.waiting_s0.popleft()
                assert self.transform is not None
                task = pool.submit(self.s.block_task, self.transform, coord)
                self.running[task] = (0, coord)
            task.add_done_callback(self.finished.put)

    def _collect(self) -> None:
        """Wait for finished tasks, take their results, announce what changed."""
        done = [self.finished.get()]
        while not self.finished.empty():
            done.append(self.finished.get())
        redrawn: dict[int, list[Coord]] = {}
        for task in done:
            scale, coord = self.running.pop(task)
            result = task.result()
            if isinstance(result, BlockChange):
                self.changes[coord] = result
                changed = result.new is not None
                if changed:
                    self.previous[coord] = self.s.stage_change(result)
            else:
                changed = bool(result) or self.full
                self.dirty[(scale, coord)] = result
            if changed:
                redrawn.setdefault(scale, []).append(coord)
            if scale == 0:
                self.in_view.discard(coord)
            self._resolve(scale, coord, changed)
        self.held += redrawn.pop(0, [])
        if self.held and not self.in_view:
            redrawn[0], self.held = self.held, []
        for scale, blocks in sorted(redrawn.items()):
            self.s.signals.blocks_changed.emit(scale, sorted(blocks))
