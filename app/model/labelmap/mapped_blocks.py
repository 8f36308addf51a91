"""Blocks of bodies kept per mapping version: what the body view redraws.

A labelmap dataset's body view reads blocks of bodies (its supervoxel blocks
through the mapping) on the GUI thread at every redraw; mapping a 64³ block
costs about as much as 100 cached reads.  So a mapped block is kept, beside
the store's block cache, for as long as it is valid: while the store serves
the *same* supervoxel array for its key and the mapping has the same version.

- **Blocks that change.**  The store's arrays are never written after they
  are served (an edit stages a new array; the cache forgets or replaces the
  old one), so the supervoxel array a mapped block was made from identifies
  the block's content: every path that changes a block (staging, a refused
  edit put back, a direct write, a checkpoint, reopening the file) ends with
  the store serving another array, and the mapped block no longer matches.
  The mapped block holds its source only weakly: it keeps no memory alive
  that the store's cache let go of (a source gone is a miss too).
- **The mapping that changes.**  A mapped block records the mapping's
  :attr:`~app.model.labelmap.state.MappingState.version` it was made at, read
  before and after the view that mapped it (a change between the two: not
  kept); one of another version is never served.  The version never repeats
  (re-reading the mapping from the file counts as a change), so
  :meth:`MappedBlocks.clear` only frees the memory of blocks no reader
  will be served again.
- **Memory.**  An LRU cache of as many bytes as the store's block cache
  (coarse blocks kept apart, as there): the blocks in view, which the app
  keeps within a share of the block cache, fit (uint64 supervoxels: as
  many bytes of bodies).
- **Threads.**  Reads from any thread, edits on others: a reader gets a
  block mapped whole by one view, never a torn one (mapped blocks are new
  read-only arrays), and a reader that starts after a mapping change never
  gets a block of an older version.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from app.model.storage.cache import BlockCache
from app.model.storage.levels import BlockKey


class _View(Protocol):
    def map_block(self, block: NDArray[Any]) -> NDArray[np.uint64]: ...


class VersionedMapping(Protocol):
    """What the cache needs of the live mapping
    (:class:`~app.model.labelmap.state.MappingState`): an immutable view, and a
    version that changes with every change of the mapping, a reset included
    (no earlier than the views it serves), and never takes a value again."""

    version: int

    def view(self) -> _View: ...


def map_with(view: _View, labels: NDArray[Any]) -> NDArray[np.uint64]:
    """``labels`` (an array of supervoxels) mapped by ``view``: a new read-only array."""
    bodies = view.map_block(labels.reshape(-1)).reshape(labels.shape)
    bodies.flags.writeable = False
    return bodies


@dataclass(frozen=True)
class _Mapped:
    """A mapped block and what it is valid for."""

    bodies: NDArray[np.uint64]
    source: weakref.ref[NDArray[Any]]
    version: int

    @property
    def nbytes(self) -> int:
        return int(self.bodies.nbytes)


class MappedBlocks:
    """Blocks of supervoxels mapped to bodies, cached per mapping version.

    Parameters
    ----------
    mapping : VersionedMapping
        The live mapping.
    capacity_bytes : int
        Upper bound on the bytes of mapped blocks kept.
    """

    def __init__(self, mapping: VersionedMapping, capacity_bytes: int) -> None:
        self._mapping = mapping
        self._cache: BlockCache[_Mapped] = BlockCache(capacity_bytes)

    @property
    def nbytes(self) -> int:
        """Bytes of mapped blocks held."""
        return self._cache.nbytes

    def bodies(self, key: BlockKey, labels: NDArray[Any]) -> NDArray[np.uint64]:
        """Block ``key`` in bodies, given ``labels``: the supervoxel array the
        store serves for ``key`` now.  Read-only; cached."""
        version = self._mapping.version
        hit = self._cache.get(key)
        if hit is not None and hit.version == version and hit.source() is labels:
            return hit.bodies
        bodies = map_with(self._mapping.view(), labels)
        if self._mapping.version == version:  # (else stale at once: not kept)
            self._cache.put(key, _Mapped(bodies, weakref.ref(labels), version),
                            coarse=key[1] > 0)
        return bodies

    def clear(self) -> None:
        """Forget every mapped block (the mapping was reset: none is valid)."""
        self._cache.clear()
