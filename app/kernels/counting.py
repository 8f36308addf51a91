"""Voxel counts per label.

``label_counts`` is an exact, faster ``np.unique(block, return_counts=True)``:
one pass that accumulates runs of equal values (labels come in long runs along
x) into an open-addressing hash table, then a sort of the distinct labels only.
Blocks with very many distinct values (noise) fall back to ``np.unique``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from app.kernels.hashing import free_slot, key_table, lookup, slot
from app.kernels.relabel import _as_label_array, _check_block, _label_scalar

__all__ = ["count_equal", "count_in", "label_counts"]

# Past this many distinct values the hash pass gives up and np.unique sorts.
_MAX_DISTINCT = 1 << 20
_CHUNK = 64


# --------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True)
def _count_pass(
    flat: NDArray[Any],
    keys: NDArray[Any],
    counts: NDArray[np.int64],
    used: NDArray[np.uint8],
    bits: int,
    run_v: Any,
    run_n: int,
    n_distinct: int,
) -> tuple[int, Any, int, int]:
    """Count ``flat`` into the hash table, chunk by chunk, from its start.

    Open addressing with linear probing and Fibonacci hashing on a table of
    ``2**bits`` slots; ``used`` marks occupied slots (0 is a valid label).
    Chunks of ``_CHUNK`` voxels equal to the pending run's value ``run_v`` only
    extend the run (``run_n`` voxels, not yet in the table); other chunks are
    counted voxel by voxel. Stops after the chunk that fills the table to half.

    Returns ``(chunks_done, run_v, run_n, n_distinct)``; the caller resumes
    on ``flat[chunks_done * _CHUNK:]`` after growing the table.
    """
    n = flat.size
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    mask = (1 << bits) - 1
    half = (1 << bits) >> 1
    next_chunk = n_chunks
    # NB: loop shapes were measured. Starting at a variable chunk (instead of
    # slicing in the caller) or a `while` loop made this kernel 2-4x slower.
    for c in range(n_chunks):
        base = c * _CHUNK
        cnt = min(_CHUNK, n - base)
        diff = run_v ^ run_v
        for j in range(cnt):
            diff |= flat[base + j] ^ run_v
        if diff == 0:
            # the whole chunk continues the pending run
            run_n += cnt
            continue
        # mixed chunk: flush the pending run (j == -1), then count voxel by
        # voxel. A flush with run_n == 0 adds 0 to a label already counted (or,
        # on the very first chunk, to flat[0], which j == 0 then counts).
        for j in range(-1, cnt):
            if j < 0:
                x = run_v
                m = run_n
            else:
                x = flat[base + j]
                m = 1
            h = slot(x, mask)
            while True:
                if used[h] == 0:
                    used[h] = 1
                    keys[h] = x
                    counts[h] = m
                    n_distinct += 1
                    break
                if keys[h] == x:
                    counts[h] += m
                    break
                h = (h + 1) & mask
        # start a new, empty run with the chunk's last value
        run_v = flat[base + cnt - 1]
        run_n = 0
        if n_distinct > half:
            next_chunk = c + 1
            break
    return next_chunk, run_v, run_n, n_distinct


@njit(cache=True, nogil=True)
def _hash_rehash(
    keys: NDArray[Any],
    counts: NDArray[np.int64],
    used: NDArray[np.uint8],
    new_keys: NDArray[Any],
    new_counts: NDArray[np.int64],
    new_used: NDArray[np.uint8],
    new_bits: int,
) -> None:
    """Move every entry of a hash table into an empty one of ``2**new_bits`` slots."""
    mask = (1 << new_bits) - 1
    for k in range(keys.size):
        if used[k]:
            h = free_slot(new_used, keys[k], mask)
            new_used[h] = 1
            new_keys[h] = keys[k]
            new_counts[h] = counts[k]


@njit(cache=True, nogil=True)
def _hash_finish(
    keys: NDArray[Any],
    counts: NDArray[np.int64],
    used: NDArray[np.uint8],
    bits: int,
    run_v: Any,
    run_n: int,
    n_distinct: int,
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Add the pending run, then return the table's labels and counts (unsorted).

    The table must have a free slot (it is at most half full).
    """
    if run_n > 0:
        mask = (1 << bits) - 1
        h = slot(run_v, mask)
        while used[h] and keys[h] != run_v:
            h = (h + 1) & mask
        if used[h] == 0:
            used[h] = 1
            keys[h] = run_v
            n_distinct += 1
        counts[h] += run_n
    out_keys = np.empty(n_distinct, dtype=keys.dtype)
    out_counts = np.empty(n_distinct, dtype=np.int64)
    m = 0
    for k in range(keys.size):
        if used[k]:
            out_keys[m] = keys[k]
            out_counts[m] = counts[k]
            m += 1
    return out_keys, out_counts


def _label_counts_hash(
    flat: NDArray[Any], max_distinct: int
) -> tuple[NDArray[Any], NDArray[np.int64]] | None:
    """Unsorted distinct values and counts of non-empty 1D ``flat``, or None if
    there are more than ``max_distinct`` distinct values.

    Drives the kernels from Python: the table grows (4x) a handful of times at
    most, and keeping the growth out of the njit scanning loop keeps it fast.
    """
    bits = 10
    keys = np.empty(1 << bits, dtype=flat.dtype)
    counts = np.zeros(1 << bits, dtype=np.int64)
    used = np.zeros(1 << bits, dtype=np.uint8)
    n_chunks = (flat.size + _CHUNK - 1) // _CHUNK
    chunk, run_v, run_n, n_distinct = 0, flat[0], 0, 0
    while True:
        done, run_v, run_n, n_distinct = _count_pass(
            flat[chunk * _CHUNK :],
            keys,
            counts,
            used,
            bits,
            flat.dtype.type(run_v),
            run_n,
            n_distinct,
        )
        chunk += done
        if chunk >= n_chunks and 2 * n_distinct <= keys.size:
            break
        if n_distinct > max_distinct:
            return None
        bits += 2
        new_keys = np.empty(1 << bits, dtype=flat.dtype)
        new_counts = np.zeros(1 << bits, dtype=np.int64)
        new_used = np.zeros(1 << bits, dtype=np.uint8)
        _hash_rehash(keys, counts, used, new_keys, new_counts, new_used, bits)
        keys, counts, used = new_keys, new_counts, new_used
    return _hash_finish(keys, counts, used, bits, flat.dtype.type(run_v), run_n, n_distinct)


@njit(cache=True, nogil=True)
def _count_equal_kernel(flat: NDArray[Any], label: Any) -> int:
    """Number of elements of ``flat`` equal to ``label`` (vectorised)."""
    c = 0
    for i in range(flat.size):
        c += flat[i] == label
    return c


@njit(cache=True, nogil=True)
def _count_in_kernel(
    flat: NDArray[Any],
    tkeys: NDArray[Any],
    tidx: NDArray[np.int64],
    used: NDArray[np.uint8],
    kmin: Any,
    kmax: Any,
    n_keys: int,
) -> NDArray[np.int64]:
    """Per-key voxel counts; keys are in the hash table ``tkeys/tidx/used``
    (a :func:`app.kernels.hashing.key_table`) and bounded by ``kmin``/``kmax``.
    A voxel equal to the previous one reuses its lookup."""
    out = np.zeros(n_keys, dtype=np.int64)
    prev = flat[0]
    prev_idx = lookup(tkeys, tidx, used, kmin, kmax, prev)
    for i in range(flat.size):
        v = flat[i]
        if v != prev:
            prev = v
            prev_idx = lookup(tkeys, tidx, used, kmin, kmax, v)
        if prev_idx >= 0:
            out[prev_idx] += 1
    return out


# --------------------------------------------------------------------------- front ends


def label_counts(block: NDArray[Any]) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """Distinct labels of a block and their voxel counts.

    Same result as ``np.unique(block, return_counts=True)`` (with labels cast to
    uint64), computed faster on label data.

    Parameters
    ----------
    block : NDArray[uint8 | uint16 | uint32 | uint64], any shape, any layout

    Returns
    -------
    labels : NDArray[uint64], shape (m,)
        Distinct values, ascending (0 included if present).
    counts : NDArray[int64], shape (m,)
        Number of voxels of each label.

    Raises
    ------
    TypeError
        ``block`` is not an unsigned-integer ndarray.
    ValueError
        ``block`` is 0-d.
    """
    flat = _check_block(
        np.ascontiguousarray(block) if isinstance(block, np.ndarray) else block, writeable=False
    )
    if flat.size == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    found = _label_counts_hash(flat, _MAX_DISTINCT)
    if found is None:
        u, c = np.unique(flat, return_counts=True)
        return u.astype(np.uint64), c.astype(np.int64)
    keys, counts = found
    order = np.argsort(keys)
    return keys[order].astype(np.uint64), counts[order]


def count_equal(block: NDArray[Any], label: int) -> int:
    """Number of voxels of ``block`` equal to ``label``.

    Parameters
    ----------
    block : NDArray[uint8 | uint16 | uint32 | uint64], any shape, any layout
    label : int
        Non-negative label; one too large for the dtype counts 0.

    Returns
    -------
    int
    """
    flat = _check_block(
        np.ascontiguousarray(block) if isinstance(block, np.ndarray) else block, writeable=False
    )
    v = _label_scalar(label, "label")
    if v > np.iinfo(flat.dtype).max or flat.size == 0:
        return 0
    return int(_count_equal_kernel(flat, flat.dtype.type(v)))


def count_in(block: NDArray[Any], labels: ArrayLike) -> NDArray[np.int64]:
    """Number of voxels of ``block`` equal to each of ``labels``.

    Parameters
    ----------
    block : NDArray[uint8 | uint16 | uint32 | uint64], any shape, any layout
    labels : array_like of non-negative int, shape (n,)
        Requested labels, any order, duplicates allowed.

    Returns
    -------
    NDArray[int64], shape (n,)
        ``counts[i]`` is the number of voxels equal to ``labels[i]``.
    """
    flat = _check_block(
        np.ascontiguousarray(block) if isinstance(block, np.ndarray) else block, writeable=False
    )
    labs = _as_label_array(labels, "labels")
    out = np.zeros(labs.size, dtype=np.int64)
    maxv = np.uint64(np.iinfo(flat.dtype).max)
    fits = labs <= maxv
    keys = np.unique(labs[fits])
    if keys.size == 0 or flat.size == 0:
        return out
    k = keys.astype(flat.dtype)
    tkeys, tidx, used = key_table(k)
    per_key = _count_in_kernel(flat, tkeys, tidx, used, k[0], k[-1], k.size)
    out[fits] = per_key[np.searchsorted(keys, labs[fits])]
    return out
