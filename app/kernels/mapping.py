"""Supervoxel → body mapping of label blocks (labelmap mode).

A mapping is two arrays: the mapped supervoxels, sorted and distinct, and the
body of each.  A supervoxel the mapping does not name is its own body; a
retired one maps to 0.  :func:`map_block` maps a block of supervoxels to
bodies for display and reads, through a mapping and, optionally, an overlay
(a hash table of the changes since, :mod:`app.kernels.mapping_table`: it wins
where both name a supervoxel).

Kernel: one pass over the voxels.  A voxel equal to the previous one reuses its
body (labels come in runs along x); another value is looked up in a small
open-addressing table of the values the block has shown so far, and only a
value seen for the first time is searched for in the mapping (binary
search).  A block of k distinct supervoxels costs k searches, whatever the
mapping's size.  (Also trying the voxel above before the table was measured:
slower, the extra branch mispredicts at a third of the run starts.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from app.kernels.hashing import slot
from app.kernels.mapping_table import check_table
from app.kernels.relabel import _check_block

__all__ = ["check_mapping", "map_block", "map_ids"]

_FIRST_TABLE_BITS = 12
"""The block's table starts with 4,096 slots (and doubles when half full)."""
_NONE = np.empty(0, np.uint64)
"""An empty mapping (no overlay)."""


@njit(cache=True, nogil=True, inline="always")
def _find(svs: NDArray[np.uint64], v: np.uint64) -> int:
    """Where ``v`` is in the sorted ``svs`` (-1: not there)."""
    lo, hi = 0, svs.size
    while lo < hi:
        mid = (lo + hi) >> 1
        if svs[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < svs.size and svs[lo] == v else -1


@njit(cache=True, nogil=True, inline="always")
def _body_of(
    svs: NDArray[np.uint64],
    bodies: NDArray[np.uint64],
    over_keys: NDArray[np.uint64],
    over_values: NDArray[np.uint64],
    value: Any,
) -> np.uint64:
    """The body of supervoxel ``value``: the overlay table's entry, else the
    mapping's, else itself."""
    v = np.uint64(value)
    if over_keys.size:
        mask = over_keys.size - 1
        h = slot(v, mask)
        for _ in range(over_keys.size):  # (a full table, that no caller should make, ends)
            if over_keys[h] == 0:
                break
            if over_keys[h] == v:
                return over_values[h]
            h = (h + 1) & mask
    at = _find(svs, v)
    if at >= 0:
        return bodies[at]
    return v


@njit(cache=True, nogil=True)
def _map_kernel(
    flat: NDArray[Any],
    svs: NDArray[np.uint64],
    bodies: NDArray[np.uint64],
    over_keys: NDArray[np.uint64],
    over_values: NDArray[np.uint64],
    out: NDArray[np.uint64],
    bits: int,
) -> int:
    """Map ``flat`` into ``out`` (both 1D) with a table of ``2**bits`` slots;
    returns where it stopped: ``flat.size``, or the first voxel whose value
    found the table half full (the caller goes on from there with a larger
    table; the loop always starts at 0: a variable start was measured slower)."""
    size = 1 << bits
    mask = size - 1
    keys = np.zeros(size, dtype=flat.dtype)
    values = np.zeros(size, dtype=np.uint64)
    used = np.zeros(size, dtype=np.uint8)
    seen = 0
    prev = flat[0]
    body = _body_of(svs, bodies, over_keys, over_values, prev)
    for i in range(flat.size):
        v = flat[i]
        if v != prev:
            h = slot(v, mask)
            while used[h] and keys[h] != v:
                h = (h + 1) & mask
            if used[h]:
                body = values[h]
            else:
                if 2 * seen >= size:
                    return i
                body = _body_of(svs, bodies, over_keys, over_values, v)
                used[h] = 1
                keys[h] = v
                values[h] = body
                seen += 1
            prev = v
        out[i] = body
    return flat.size


@njit(cache=True, nogil=True)
def _map_each(
    ids: NDArray[np.uint64],
    svs: NDArray[np.uint64],
    bodies: NDArray[np.uint64],
    over_keys: NDArray[np.uint64],
    over_values: NDArray[np.uint64],
    out: NDArray[np.uint64],
) -> None:
    """Map each of ``ids`` into ``out`` (both 1D), looked up one by one."""
    for i in range(ids.size):
        out[i] = _body_of(svs, bodies, over_keys, over_values, ids[i])


def check_mapping(svs: NDArray[Any], bodies: NDArray[Any]) -> None:
    """Raise unless ``svs`` and ``bodies`` are a mapping :func:`map_block` takes.

    Parameters
    ----------
    svs : NDArray[uint64], shape (n,)
        Mapped supervoxels, strictly increasing; C-contiguous.
    bodies : NDArray[uint64], shape (n,)
        The body of each; C-contiguous.

    Raises
    ------
    TypeError
        Not uint64 ndarrays.
    ValueError
        Not 1D, not C-contiguous, of different lengths, or ``svs`` not strictly
        increasing.
    """
    for name, arr in (("svs", svs), ("bodies", bodies)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint64:
            raise TypeError(f"{name} must be a uint64 numpy.ndarray")
        if arr.ndim != 1 or not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be 1D and C-contiguous")
    if svs.size != bodies.size:
        raise ValueError(f"{svs.size} supervoxels but {bodies.size} bodies")
    if svs.size > 1 and not bool((svs[1:] > svs[:-1]).all()):
        raise ValueError("svs must be strictly increasing")


def map_block(
    block: NDArray[Any],
    svs: NDArray[np.uint64],
    bodies: NDArray[np.uint64],
    *,
    overlay: tuple[NDArray[np.uint64], NDArray[np.uint64]] | None = None,
    checked: bool = False,
) -> NDArray[np.uint64]:
    """Each voxel's body: ``block`` mapped through the mapping ``svs → bodies``.

    Parameters
    ----------
    block : NDArray[uint8 | uint16 | uint32 | uint64], any shape, any layout
        Supervoxels; not modified.
    svs, bodies : NDArray[uint64], shape (n,)
        The mapping (see :func:`check_mapping`); supervoxels it does not name
        map to themselves.
    overlay : (NDArray[uint64], NDArray[uint64]), optional
        A table of changes ``(keys, values)``
        (:mod:`app.kernels.mapping_table`): its entries win.
    checked : bool
        The caller already ran :func:`check_mapping` on the mapping (an O(n)
        pass); only the block and the overlay's form are checked then.

    Returns
    -------
    NDArray[uint64], ``block``'s shape
        A new C-contiguous array.
    """
    over_keys, over_values = _checked(svs, bodies, overlay, checked)
    flat = np.ascontiguousarray(_check_block(block, writeable=False))
    out = np.empty(flat.size, np.uint64)
    done, bits = 0, _FIRST_TABLE_BITS
    while done < flat.size:
        done += _map_kernel(
            flat[done:], svs, bodies, over_keys, over_values, out[done:], bits
        )
        bits += 1
    return out.reshape(block.shape)


def map_ids(
    ids: NDArray[np.uint64],
    svs: NDArray[np.uint64],
    bodies: NDArray[np.uint64],
    *,
    overlay: tuple[NDArray[np.uint64], NDArray[np.uint64]] | None = None,
    checked: bool = False,
) -> NDArray[np.uint64]:
    """The body of each of ``ids``, a list of mostly distinct supervoxels (a
    body's, an edit's): as :func:`map_block` (same arguments), without its
    table of values seen, which only pays for voxels in runs.

    Parameters
    ----------
    ids : NDArray[uint64], shape (n,)
        Supervoxels.

    Returns
    -------
    NDArray[uint64], shape (n,)
    """
    over_keys, over_values = _checked(svs, bodies, overlay, checked)
    if not isinstance(ids, np.ndarray) or ids.dtype != np.uint64 or ids.ndim != 1:
        raise TypeError("ids must be a 1D uint64 numpy.ndarray")
    out = np.empty(ids.size, np.uint64)
    _map_each(np.ascontiguousarray(ids), svs, bodies, over_keys, over_values, out)
    return out


def _checked(
    svs: NDArray[np.uint64],
    bodies: NDArray[np.uint64],
    overlay: tuple[NDArray[np.uint64], NDArray[np.uint64]] | None,
    checked: bool,
) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """The overlay's arrays (empty without one), the mapping checked unless
    ``checked`` and the overlay's form always."""
    if not checked:
        check_mapping(svs, bodies)
    if overlay is None:
        return _NONE, _NONE
    check_table(*overlay)
    return overlay
