"""The live mapping of a labelmap dataset: the file's mapping and the changes since.

A merge or a cleave changes only the mapping; its cost must grow with the
bodies it edits, never with the mapping's size.  So the mapping the file
holds (the *base*, a :class:`Mapping` of sorted arrays) is not copied by an
edit: the edit writes its supervoxels' new bodies into an *overlay*, a hash
table changed in place (:mod:`app.kernels.mapping_table`), and the reverse
map keeps, for each body an edit changed, its supervoxels as one sorted
array (a merge hands the merged body's array to the target in one merge of
two sorted runs, at memory speed; a body that loses all its supervoxels
costs nothing).  A checkpoint that wrote the whole mapping to the file folds
a large overlay into a new base (the first read after an edit copies the
overlay: this bounds it).

Reads take an immutable :class:`MappingView` (the base and a copy of the
overlay, made on the first read after a change); :func:`app.kernels.map_block`
maps blocks through it.  Thread-safe: edits (the commit thread, or replay) and
reads (any thread) may run at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels import map_block, map_ids
from app.kernels.mapping_table import Table, empty_table, table_pairs, table_put
from app.model.labelmap.mapping import Mapping

FOLD_AT = 1 << 16
"""Overlay entries from which a checkpoint folds the overlay into a new base."""


@dataclass(frozen=True)
class MappingView:
    """The mapping at one moment: ``base``, overridden by the overlay's entries.

    Attributes
    ----------
    base : Mapping
        The file's mapping.
    overlay : (NDArray[uint64], NDArray[uint64]), shape (2**k,) each
        A read-only copy of the overlay table.
    """

    base: Mapping
    overlay: Table

    def map_block(self, block: NDArray[Any]) -> NDArray[np.uint64]:
        """Each voxel's body (``block`` holds supervoxels; any shape and dtype)."""
        return map_block(block, self.base.svs, self.base.bodies, overlay=self.overlay,
                         checked=True)

    def body_of(self, svs: NDArray[np.integer[Any]] | Sequence[int]) -> NDArray[np.uint64]:
        """The bodies of ``svs`` (1D, mostly distinct ids)."""
        return _mapped(np.asarray(svs, dtype=np.uint64).ravel(), self.base, self.overlay)

    def changed(self) -> NDArray[np.uint64]:
        """The supervoxels the overlay remaps, sorted."""
        return table_pairs(*self.overlay)[0]

    def pairs(self) -> NDArray[np.uint64]:
        """The whole mapping as ``(n, 2)`` uint64 rows sorted by supervoxel."""
        svs = np.union1d(self.base.svs, self.changed())
        return np.stack([svs, self.body_of(svs)], axis=1)


def _mapped(ids: NDArray[np.uint64], base: Mapping, overlay: Table | None) -> NDArray[np.uint64]:
    """The bodies of supervoxels ``ids`` (1D, mostly distinct) through
    ``overlay``, then ``base``."""
    return map_ids(ids, base.svs, base.bodies, overlay=overlay, checked=True)


class MappingState:
    """A labelmap dataset's mapping, as edits change it.

    Parameters
    ----------
    base : Mapping
        The mapping the file holds.
    """

    def __init__(self, base: Mapping) -> None:
        self._lock = threading.Lock()
        self.version = 0
        """Counts the changes (a view of an older version is stale)."""
        self._reset(base)

    def _reset(self, base: Mapping) -> None:
        self._base = base
        self._table = empty_table()
        self._count = 0  # (the overlay's entries)
        self._members: dict[int, NDArray[np.uint64]] = {}  # body → its svs (bodies edited)
        self._view: MappingView | None = None

    def reset(self, base: Mapping) -> None:
        """Start again from ``base`` (the file changed: it is re-read)."""
        with self._lock:
            self._reset(base)
            self.version += 1

    def fold(self, base: Mapping, version: int) -> bool:
        """Make ``base`` (the whole mapping as of ``version``, with its reverse
        map built) the new base, with an empty overlay, if nothing changed since
        ``version``; returns whether it did."""
        with self._lock:
            if version != self.version:
                return False
            self._reset(base)
            return True

    @property
    def overlay_size(self) -> int:
        """The overlay's entries."""
        return self._count

    def view(self) -> MappingView:
        """The current mapping (immutable; built on the first call after a change)."""
        with self._lock:
            if self._view is None:
                keys, values = (a.copy() for a in self._table)
                keys.flags.writeable = values.flags.writeable = False
                self._view = MappingView(self._base, (keys, values))
            return self._view

    def body_of(self, svs: NDArray[np.integer[Any]] | Sequence[int]) -> NDArray[np.uint64]:
        """The bodies of ``svs`` (1D)."""
        arr = np.asarray(svs, dtype=np.uint64).ravel()
        with self._lock:
            return _mapped(arr, self._base, self._table)

    def supervoxels_of(
        self, body: int, has_voxels: Callable[[int], bool]
    ) -> NDArray[np.uint64]:
        """The supervoxels mapped to ``body``, sorted (read-only); with ``body`` itself when
        nothing maps it elsewhere and ``has_voxels(body)`` (an unmapped
        supervoxel is its own body; the label index says whether it exists)."""
        body = int(body)
        with self._lock:
            base = self._base
            found = self._members.get(body)
            if found is None:
                found = base.supervoxels_of(body)
            own = (not _has(base.svs, body) and not _has(found, body)
                   and int(_mapped(np.array([body], np.uint64), base, self._table)[0]) == body)
        if own and has_voxels(body):
            found = np.sort(np.append(found, np.uint64(body)))
        return found

    def move(self, svs: NDArray[np.uint64], source: int, target: int) -> None:
        """Map ``svs`` (distinct, non-zero, 1D), all now of body ``source``, to
        ``target``."""
        svs = np.array(svs, dtype=np.uint64).ravel()
        if svs.size > 1 and not bool((svs[1:] > svs[:-1]).all()):
            svs.sort()
        with self._lock:
            self._table, self._count = table_put(self._table, self._count, svs, target)
            if source:  # (0: new ids, or retired ones coming back; nobody lists them)
                self._members[source] = _without(self._current(source), svs)
            if target:
                self._members[target] = _merged(self._current(target), svs)
            self._view = None
            self.version += 1

    def _current(self, body: int) -> NDArray[np.uint64]:
        """The supervoxels ``body`` has (without its own unmapped one)."""
        found = self._members.get(body)
        return self._base.supervoxels_of(body) if found is None else found

    def problems(self) -> list[str]:
        """Where the reverse map (a body's supervoxels) disagrees with the forward
        one, for every body an edit changed (empty: none)."""
        with self._lock:
            edited = {*self._members}
        view = self.view()
        changed = table_pairs(*view.overlay)
        edited.update(np.unique(changed[1]).tolist())
        edited.discard(0)
        pairs = view.pairs()
        order = np.argsort(pairs[:, 1], kind="stable")  # (each body's svs stay sorted)
        ranked, svs = pairs[order, 1], pairs[order, 0]
        found = []
        for body in sorted(edited):
            listed = self.supervoxels_of(body, lambda _sv: True)
            key = np.uint64(body)
            mapped = svs[np.searchsorted(ranked, key):np.searchsorted(ranked, key, "right")]
            if not _has(pairs[:, 0], body):  # (unmapped: its own body)
                mapped = np.sort(np.append(mapped, key))
            if not np.array_equal(listed, mapped):
                found.append(f"body {body}: its supervoxels {listed.tolist()[:8]} are not "
                             f"those mapped to it {mapped.tolist()[:8]}")
        return found


def _without(members: NDArray[np.uint64], svs: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The sorted ``members`` less the sorted ``svs``."""
    if np.array_equal(members, svs):
        return _NO_SVS  # (a merge: every one leaves)
    out = members[~_within(svs, members)]
    out.flags.writeable = False
    return out


def _merged(members: NDArray[np.uint64], svs: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The sorted union of two sorted arrays with nothing in common."""
    out = np.concatenate([members, svs])
    out.sort(kind="stable")  # (two sorted runs: one merge pass)
    out.flags.writeable = False
    return out


_NO_SVS = np.zeros(0, np.uint64)
_NO_SVS.flags.writeable = False


def _has(sorted_ids: NDArray[np.uint64], value: int) -> bool:
    """Whether the sorted ``sorted_ids`` hold ``value``."""
    at = int(sorted_ids.searchsorted(np.uint64(value)))
    return at < sorted_ids.size and int(sorted_ids[at]) == value


def _within(sorted_ids: NDArray[np.uint64], values: NDArray[np.uint64]) -> NDArray[np.bool_]:
    """Whether each of ``values`` is in the sorted ``sorted_ids``."""
    if sorted_ids.size == 0:
        return np.zeros(values.shape, bool)
    at = np.minimum(np.searchsorted(sorted_ids, values), sorted_ids.size - 1)
    return np.asarray(sorted_ids[at] == values)
