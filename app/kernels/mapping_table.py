"""The overlay table of a live mapping: supervoxel → body, changed in place.

A labelmap edit remaps some supervoxels; its cost must grow with them, never
with the mapping or with the edits made before it.  So the changes since the
file's mapping live in an open-addressing hash table of two uint64 arrays
(``keys``, ``values``; a power-of-two size; key 0 marks a free slot, since
supervoxel 0 is never remapped), kept at most half full, with the slot of
:func:`app.kernels.hashing.slot` and linear probing.  :func:`table_put` writes
n entries in O(n); :func:`app.kernels.map_block` looks values up in it before
the sorted mapping.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from app.kernels.hashing import slot

__all__ = ["check_table", "empty_table", "table_pairs", "table_put"]

Table = tuple[NDArray[np.uint64], NDArray[np.uint64]]
"""``(keys, values)``: see the module docstring."""

_MIN_BITS = 10
"""The smallest table: 1,024 slots."""


@njit(cache=True, nogil=True)
def _put(keys: NDArray[np.uint64], values: NDArray[np.uint64],
         svs: NDArray[np.uint64], body: np.uint64) -> int:
    """Map each of ``svs`` (non-zero) to ``body``, in place; returns how many
    were not in the table (the table has room for them)."""
    mask = keys.size - 1
    added = 0
    for i in range(svs.size):
        v = svs[i]
        h = slot(v, mask)
        while keys[h] != 0 and keys[h] != v:
            h = (h + 1) & mask
        if keys[h] == 0:
            keys[h] = v
            added += 1
        values[h] = body
    return added


@njit(cache=True, nogil=True)
def _rehash(keys: NDArray[np.uint64], values: NDArray[np.uint64], size: int) -> tuple[
        NDArray[np.uint64], NDArray[np.uint64]]:
    """The entries of a table in a new table of ``size`` slots."""
    mask = size - 1
    new_keys = np.zeros(size, np.uint64)
    new_values = np.zeros(size, np.uint64)
    for i in range(keys.size):
        v = keys[i]
        if v != 0:
            h = slot(v, mask)
            while new_keys[h] != 0:
                h = (h + 1) & mask
            new_keys[h] = v
            new_values[h] = values[i]
    return new_keys, new_values


def empty_table() -> Table:
    """A table with no entries."""
    return np.zeros(1 << _MIN_BITS, np.uint64), np.zeros(1 << _MIN_BITS, np.uint64)


def check_table(keys: NDArray[Any], values: NDArray[Any]) -> None:
    """Raise unless ``(keys, values)`` is a table (uint64, 1D, C-contiguous, of
    one power-of-two size; the table's own invariants are not scanned)."""
    for name, arr in (("table keys", keys), ("table values", values)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint64:
            raise TypeError(f"{name} must be a uint64 numpy.ndarray")
        if arr.ndim != 1 or not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be 1D and C-contiguous")
    if keys.size != values.size or keys.size & (keys.size - 1):
        raise ValueError(f"a table needs keys and values of one power-of-two size, "
                         f"got {keys.size} and {values.size}")


def table_put(table: Table, count: int, svs: NDArray[np.uint64], body: int) -> tuple[Table, int]:
    """Map ``svs`` to ``body`` in ``table`` (of ``count`` entries).

    Parameters
    ----------
    table : (NDArray[uint64], NDArray[uint64])
        Changed in place unless it must grow.
    count : int
        Its entries.
    svs : NDArray[uint64], shape (n,)
        Distinct, non-zero supervoxels.
    body : int
        Their body (0: retired).

    Returns
    -------
    (table, count)
        The table (a new, larger one if ``table`` would have been more than
        half full) and its entries.
    """
    keys, values = table
    check_table(keys, values)
    svs = np.ascontiguousarray(svs, dtype=np.uint64)
    if svs.ndim != 1:
        raise ValueError("svs must be 1D")
    if svs.size and not svs.all():
        raise ValueError("supervoxel 0 cannot be remapped")
    if 2 * (count + svs.size) > keys.size:
        size = keys.size
        while 2 * (count + svs.size) > size:
            size *= 2
        keys, values = _rehash(keys, values, size)
    return (keys, values), count + _put(keys, values, svs, np.uint64(body))


def table_pairs(keys: NDArray[np.uint64], values: NDArray[np.uint64]) -> Table:
    """The table's entries: supervoxels sorted, and their bodies."""
    used = keys != 0
    svs, bodies = keys[used], values[used]
    order = np.argsort(svs)
    return svs[order], bodies[order]
