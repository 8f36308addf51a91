"""A thread-safe LRU cache of decoded blocks, bounded in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from numpy.typing import NDArray


class BlockCache:
    """Least-recently-used map from a block key to a read-only decoded array.

    Arrays put here are never written again by anyone (writers build a new
    array and ``put`` it), so a reader holding one never sees a torn block.

    Parameters
    ----------
    capacity_bytes : int
        Upper bound on the summed ``nbytes`` of the cached arrays.
    """

    def __init__(self, capacity_bytes: int = 256 << 20) -> None:
        self.capacity_bytes = capacity_bytes
        self._items: OrderedDict[Hashable, NDArray[Any]] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._nbytes

    def get(self, key: Hashable) -> NDArray[Any] | None:
        """The cached array for ``key``, or None."""
        with self._lock:
            arr = self._items.get(key)
            if arr is not None:
                self._items.move_to_end(key)
            return arr

    def put(self, key: Hashable, arr: NDArray[Any]) -> None:
        """Cache ``arr`` (made read-only) under ``key``, evicting the oldest entries."""
        arr.flags.writeable = False
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._nbytes -= old.nbytes
            if arr.nbytes > self.capacity_bytes:
                return
            self._items[key] = arr
            self._nbytes += arr.nbytes
            while self._nbytes > self.capacity_bytes:
                _, evicted = self._items.popitem(last=False)
                self._nbytes -= evicted.nbytes

    def discard(self, key: Hashable) -> None:
        """Forget ``key`` if cached."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._nbytes -= old.nbytes

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._items.clear()
            self._nbytes = 0
