"""A thread-safe LRU cache of blocks (decoded arrays, or palettes), bounded in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

import numpy as np


class HasNbytes(Protocol):
    """What the cache holds: anything that says how many bytes it holds."""

    @property
    def nbytes(self) -> int: ...


V = TypeVar("V", bound=HasNbytes)

COARSE_SHARE = 0.5
"""Part of the capacity kept for coarse blocks, which fine ones cannot evict."""


class _Segment(Generic[V]):
    """One LRU list and the bytes it holds."""

    def __init__(self) -> None:
        self.items: OrderedDict[Hashable, V] = OrderedDict()
        self.nbytes = 0

    def add(self, key: Hashable, block: V) -> None:
        self.items[key] = block
        self.nbytes += block.nbytes

    def pop(self, key: Hashable) -> None:
        old = self.items.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes

    def evict_oldest(self) -> None:
        _, old = self.items.popitem(last=False)
        self.nbytes -= old.nbytes


class BlockCache(Generic[V]):
    """Least-recently-used map from a block key to a read-only block: a decoded
    array (``BlockCache[NDArray]``) or a palette.

    Blocks put here are never written again by anyone (writers build a new
    block and ``put`` it; an array is made read-only), so a reader holding one
    never sees a torn block.

    Coarse blocks (lower resolution levels) live in their own segment, of up
    to :data:`COARSE_SHARE` of the capacity, that fine blocks cannot evict: a
    coarse block covers many fine ones, so every edit below it and every
    zoomed-out view reads it again, while a stream of fine blocks is read once.

    Parameters
    ----------
    capacity_bytes : int
        Upper bound on the summed ``nbytes`` of the cached blocks.
    """

    def __init__(self, capacity_bytes: int = 256 << 20) -> None:
        self.capacity_bytes = capacity_bytes
        self._fine: _Segment[V] = _Segment()
        self._coarse: _Segment[V] = _Segment()
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._fine.nbytes + self._coarse.nbytes

    def get(self, key: Hashable) -> V | None:
        """The cached block for ``key``, or None."""
        with self._lock:
            for segment in (self._fine, self._coarse):
                block = segment.items.get(key)
                if block is not None:
                    segment.items.move_to_end(key)
                    return block
            return None

    def put(self, key: Hashable, block: V, *, coarse: bool = False) -> None:
        """Cache ``block`` (an array is made read-only) under ``key``, evicting the
        oldest entries.

        ``coarse`` puts it in the segment that fine blocks do not evict.
        """
        if isinstance(block, np.ndarray):
            block.flags.writeable = False
        with self._lock:
            self._fine.pop(key)
            self._coarse.pop(key)
            if block.nbytes > self.capacity_bytes:
                return
            (self._coarse if coarse else self._fine).add(key, block)
            while self._coarse.nbytes > COARSE_SHARE * self.capacity_bytes:
                self._coarse.evict_oldest()
            while self.nbytes > self.capacity_bytes:
                (self._fine if self._fine.items else self._coarse).evict_oldest()

    def discard(self, key: Hashable) -> None:
        """Forget ``key`` if cached."""
        with self._lock:
            self._fine.pop(key)
            self._coarse.pop(key)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._fine = _Segment()
            self._coarse = _Segment()
