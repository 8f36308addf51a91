"""Open-addressing hash tables of labels, shared by the relabel and counting kernels.

Multiplicative (Fibonacci) hashing — the slot of a label is bits 32.. of
``label * 2**64 / golden ratio`` — with linear probing.  The helpers are
inlined into the kernels that call them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

HASH_MUL = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True, inline="always")
def slot(value: Any, mask: int) -> Any:
    """The first slot (int64) of ``value`` in a table of ``mask + 1`` slots."""
    return np.int64((np.uint64(value) * HASH_MUL) >> np.uint64(32)) & mask


@njit(cache=True, nogil=True, inline="always")
def free_slot(used: NDArray[np.uint8], value: Any, mask: int) -> Any:
    """The slot a new key ``value`` goes in (the first free one from its own),
    in a table of ``mask + 1`` slots that holds no ``value`` yet."""
    h = slot(value, mask)
    while used[h]:
        h = (h + 1) & mask
    return h


@njit(cache=True, nogil=True)
def build_table(
    keys: NDArray[Any], bits: int
) -> tuple[NDArray[Any], NDArray[np.int64], NDArray[np.uint8]]:
    """Open-addressing hash table (``2**bits`` slots) mapping ``keys[i]`` to ``i``."""
    size = 1 << bits
    mask = size - 1
    tkeys = np.zeros(size, dtype=keys.dtype)
    tidx = np.zeros(size, dtype=np.int64)
    used = np.zeros(size, dtype=np.uint8)
    for i in range(keys.size):
        h = free_slot(used, keys[i], mask)
        used[h] = 1
        tkeys[h] = keys[i]
        tidx[h] = i
    return tkeys, tidx, used


@njit(cache=True, nogil=True, inline="always")
def lookup(
    tkeys: NDArray[Any],
    tidx: NDArray[np.int64],
    used: NDArray[np.uint8],
    kmin: Any,
    kmax: Any,
    value: Any,
) -> int:
    """The index of ``value`` among the keys of a :func:`build_table` table, or -1.

    ``kmin``/``kmax`` bound the keys: values outside are rejected at once.
    """
    if value < kmin or value > kmax:
        return -1
    mask = tkeys.size - 1
    h = slot(value, mask)
    while used[h]:
        if tkeys[h] == value:
            return tidx[h]
        h = (h + 1) & mask
    return -1


def key_table(keys: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.int64], NDArray[np.uint8]]:
    """:func:`build_table` of distinct ``keys``, at most 1/4 full."""
    return build_table(keys, max(4, int(keys.size - 1).bit_length() + 2))
