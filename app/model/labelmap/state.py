"""The live mapping of a labelmap dataset: the file's mapping and the changes since.

A merge or a cleave changes only the mapping; its cost must grow with the
supervoxels it moves, never with the mapping's size.  So the mapping the file
holds (the *base*, a :class:`Mapping` of sorted arrays) is not copied by an
edit: the edit's changes go into an *overlay* (a dict, supervoxel → body, and
its reverse, body → supervoxels), which a checkpoint folds into a new base.

Reads take an immutable :class:`MappingView` (the base and the overlay's sorted
arrays, built once per change); :func:`app.kernels.map_block` maps blocks
through it.  Thread-safe: edits (the commit thread, or replay) and reads (any
thread) may run at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels import map_block
from app.model.labelmap.mapping import Mapping


@dataclass(frozen=True)
class MappingView:
    """The mapping at one moment: ``base``, overridden by the overlay's entries.

    Attributes
    ----------
    base : Mapping
        The file's mapping.
    over_svs, over_bodies : NDArray[uint64], shape (k,)
        The changed supervoxels (sorted) and their bodies.
    """

    base: Mapping
    over_svs: NDArray[np.uint64]
    over_bodies: NDArray[np.uint64]

    def map_block(self, block: NDArray[Any]) -> NDArray[np.uint64]:
        """Each voxel's body (``block`` holds supervoxels; any shape and dtype)."""
        return map_block(
            block, self.base.svs, self.base.bodies,
            overlay=(self.over_svs, self.over_bodies), checked=True,
        )

    def body_of(self, svs: NDArray[np.integer[Any]] | Sequence[int]) -> NDArray[np.uint64]:
        """The bodies of ``svs`` (1D)."""
        return self.map_block(np.asarray(svs, dtype=np.uint64).ravel())

    def pairs(self) -> NDArray[np.uint64]:
        """The whole mapping as ``(n, 2)`` uint64 rows sorted by supervoxel."""
        svs = np.union1d(self.base.svs, self.over_svs)
        return np.stack([svs, self.body_of(svs)], axis=1)


class MappingState:
    """A labelmap dataset's mapping, as edits change it.

    Parameters
    ----------
    base : Mapping
        The mapping the file holds.
    """

    def __init__(self, base: Mapping) -> None:
        self._lock = threading.Lock()
        self._reset(base)

    def _reset(self, base: Mapping) -> None:
        self._base = base
        self._over: dict[int, int] = {}
        self._members: dict[int, set[int]] = {}  # body → its supervoxels in the overlay
        self._moved: dict[int, set[int]] = {}  # base body → its base supervoxels moved away
        self._view: MappingView | None = None
        self.version = 0
        """Counts the changes (a view of an older version is stale)."""

    def reset(self, base: Mapping) -> None:
        """Start again from ``base`` (the file changed: it is re-read)."""
        with self._lock:
            self._reset(base)

    def view(self) -> MappingView:
        """The current mapping (immutable; built on the first call after a change)."""
        with self._lock:
            if self._view is None:
                keys = np.fromiter(self._over.keys(), np.uint64, len(self._over))
                values = np.fromiter(self._over.values(), np.uint64, len(self._over))
                order = np.argsort(keys)
                self._view = MappingView(self._base, keys[order], values[order])
            return self._view

    def body_of(self, svs: NDArray[np.integer[Any]] | Sequence[int]) -> NDArray[np.uint64]:
        """The bodies of ``svs`` (1D)."""
        return self.view().body_of(svs)

    def supervoxels_of(
        self, body: int, has_voxels: Callable[[int], bool]
    ) -> NDArray[np.uint64]:
        """The supervoxels mapped to ``body``, sorted; with ``body`` itself when
        nothing maps it elsewhere and ``has_voxels(body)`` (an unmapped
        supervoxel is its own body; the label index says whether it exists)."""
        body = int(body)
        with self._lock:
            base = self._base
            found = base.supervoxels_of(body)
            moved = self._moved.get(body)
            if moved:
                found = found[~np.isin(found, np.fromiter(moved, np.uint64, len(moved)))]
            members = self._members.get(body)
            if members:
                found = np.union1d(found, np.fromiter(members, np.uint64, len(members)))
            at = int(np.searchsorted(base.svs, np.uint64(body)))
            in_base = at < base.svs.size and int(base.svs[at]) == body
            unmapped = body not in self._over and not in_base
        if unmapped and has_voxels(body):
            found = np.union1d(found, np.array([body], np.uint64))
        return found

    def move(self, svs: NDArray[np.uint64], source: int, target: int) -> None:
        """Map ``svs`` (distinct, 1D), all now of body ``source``, to ``target``."""
        svs = np.asarray(svs, dtype=np.uint64).ravel()
        keys = svs.tolist()
        with self._lock:
            members = self._members.get(source)
            if members:
                members.difference_update(keys)
                if not members:
                    del self._members[source]
            known = self._over.keys() & keys if self._over else set()
            if len(known) < len(keys):  # (some enter the overlay: note their base body)
                fresh = svs[np.fromiter((k not in known for k in keys), bool, len(keys))] \
                    if known else svs
                was = self._base.body_of(fresh)
                for body in np.unique(was).tolist():
                    self._moved.setdefault(body, set()).update(fresh[was == body].tolist())
            self._members.setdefault(target, set()).update(keys)
            self._over.update(dict.fromkeys(keys, target))
            self._view = None
            self.version += 1

    def problems(self) -> list[str]:
        """Where the reverse map (a body's supervoxels) disagrees with the forward
        one, for every body an edit changed (empty: none)."""
        with self._lock:
            bodies = sorted({*self._members, *self._moved, *self._over.values()})
            over = dict(self._over)
        view = self.view()
        found = []
        for body in bodies:
            listed = self.supervoxels_of(body, lambda _sv: True)
            candidates = np.union1d(
                self._base.supervoxels_of(body),
                np.array([body, *(sv for sv, b in over.items() if b == body)], np.uint64),
            )
            mapped = candidates[view.body_of(candidates) == body]
            if not np.array_equal(listed, mapped):
                found.append(f"body {body}: its supervoxels {listed.tolist()[:8]} are not "
                             f"those mapped to it {mapped.tolist()[:8]}")
        return found
