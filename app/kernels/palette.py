"""Palette form of a label block: its distinct labels and, per voxel, which one.

DVID's labelarray keeps a block as a small list of labels plus a per-voxel
index into it, so that relabelling a block rewrites the list, not the voxels.
:func:`palettize` splits a block into that form in one pass; :func:`gather`
maps an index array through a lookup table (``labels[index]`` rebuilds the
block; a table of undo codes makes a merge's undo map); :func:`split_index`
moves the voxels of some entries inside RLE spans to a new entry (a split
rewrites the index only where the region lies).

Kernels: one pass over the voxels with an open-addressing hash table of the
labels seen so far (a voxel equal to the previous one reuses its entry, as
labels come in runs along x); the index is written as uint8 first, and the
pass restarts with a wider type only if the block holds more than 256 labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from app.kernels.hashing import slot
from app.kernels.relabel import _check_block
from app.kernels.rle import _check_spans, _check_triple

__all__ = ["INDEX_DTYPES", "gather", "palettize", "split_index"]

#: Dtypes of a palette index, narrowest first.
INDEX_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32))


@njit(cache=True, nogil=True)
def _palettize_kernel(
    flat: NDArray[Any],
    index: NDArray[Any],
    labels: NDArray[Any],
    counts: NDArray[np.int64],
    bits: int,
) -> int:
    """Fill ``index`` (1D, like ``flat``) with each voxel's entry in ``labels``
    (first-appearance order) and ``counts`` with the voxels per entry.

    Only a voxel that starts a run is looked up in the hash table.  Returns the
    number of entries, or -1 if ``flat`` holds more distinct labels than
    ``labels`` has room for.
    """
    mask = (1 << bits) - 1
    table = np.full(1 << bits, -1, dtype=np.int64)
    limit = labels.size
    n = 0
    prev = flat[0]
    entry = np.int64(-1)
    run_start = 0
    for i in range(flat.size):
        v = flat[i]
        if entry < 0 or v != prev:
            if entry >= 0:
                counts[entry] += i - run_start
            run_start = i
            prev = v
            h = slot(v, mask)
            while table[h] >= 0 and labels[table[h]] != v:
                h = (h + 1) & mask
            if table[h] < 0:
                if n == limit:
                    return -1
                table[h] = n
                labels[n] = v
                n += 1
            entry = table[h]
        index[i] = entry
    counts[entry] += flat.size - run_start
    return n


@njit(cache=True, nogil=True)
def _gather_kernel(table: NDArray[Any], index: NDArray[Any], out: NDArray[Any]) -> bool:
    """``out[i] = table[index[i]]`` (all 1D); False (and ``out`` partly
    written) if an index is outside ``table``."""
    k = table.size
    for i in range(index.size):
        j = index[i]
        if j >= k:
            return False
        out[i] = table[j]
    return True


@njit(cache=True, nogil=True)
def _split_index_kernel(
    spans: NDArray[np.int64],
    oz: int,
    oy: int,
    ox: int,
    hit: NDArray[np.bool_],
    entry: int,
    index: NDArray[Any],
    moved: NDArray[np.int64],
) -> None:
    """In the C-contiguous 3D ``index`` (a box at global ``(oz, oy, ox)``), set
    the voxels of ``spans`` whose entry is ``hit`` to ``entry`` and count them
    per entry in ``moved`` (``entry + 1`` long).  ``hit[entry]`` is False, so
    overlapping spans move a voxel once.

    Branch-free per voxel: each entry goes through a table (``entry`` for a hit
    one, else itself), and the entries met are counted in four interleaved
    histograms (so that runs of one entry do not wait on one counter).
    """
    nz, ny, nx = index.shape
    flat = index.reshape(-1)
    k = hit.size
    dest = np.empty(k, index.dtype)
    for e in range(k):
        dest[e] = entry if hit[e] else e
    seen = np.zeros((4, k), np.int64)
    for i in range(spans.shape[0]):
        z = spans[i, 2] - oz
        y = spans[i, 1] - oy
        if z < 0 or z >= nz or y < 0 or y >= ny:
            continue
        base = (z * ny + y) * nx
        j = base + max(spans[i, 0] - ox, 0)
        stop = base + min(spans[i, 0] + spans[i, 3] - ox, nx)
        while j + 4 <= stop:
            e0, e1, e2, e3 = flat[j], flat[j + 1], flat[j + 2], flat[j + 3]
            seen[0, e0] += 1
            seen[1, e1] += 1
            seen[2, e2] += 1
            seen[3, e3] += 1
            flat[j], flat[j + 1], flat[j + 2], flat[j + 3] = dest[e0], dest[e1], dest[e2], dest[e3]
            j += 4
        while j < stop:
            e0 = flat[j]
            seen[0, e0] += 1
            flat[j] = dest[e0]
            j += 1
    for e in range(k):
        if hit[e]:
            moved[e] += seen[0, e] + seen[1, e] + seen[2, e] + seen[3, e]


def palettize(block: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.int64]]:
    """Split a label block into its distinct labels and a per-voxel index.

    Parameters
    ----------
    block : NDArray[uint8 | uint16 | uint32 | uint64], any shape, any layout
        Not modified; at least one voxel.

    Returns
    -------
    labels : NDArray, shape (k,), ``block``'s dtype
        Distinct values in order of first appearance (C order).
    index : NDArray[uint8 | uint16 | uint32], ``block``'s shape
        New C-contiguous array, ``labels[index] == block``; the smallest of
        these dtypes that holds ``k - 1``.
    counts : NDArray[int64], shape (k,)
        Voxels of each entry.

    Raises
    ------
    TypeError
        ``block`` is not an unsigned-integer ndarray.
    ValueError
        ``block`` is 0-d or empty.
    """
    flat = np.ascontiguousarray(_check_block(block, writeable=False))
    if flat.size == 0:
        raise ValueError("block must hold at least one voxel")
    for dtype in INDEX_DTYPES:
        room = min(int(np.iinfo(dtype).max) + 1, flat.size)
        index = np.empty(block.shape, dtype)
        labels = np.empty(room, block.dtype)
        counts = np.zeros(room, np.int64)
        bits = max(4, (4 * room - 1).bit_length())
        n = _palettize_kernel(flat, index.reshape(-1), labels, counts, bits)
        if n >= 0:
            return labels[:n].copy(), index, counts[:n].copy()
    raise ValueError(f"block of {flat.size} voxels does not fit a uint32 index")  # pragma: no cover


def gather(table: NDArray[Any], index: NDArray[Any]) -> NDArray[Any]:
    """``table[index]``: each voxel's entry of ``table``.

    Parameters
    ----------
    table : NDArray, shape (k,), any numeric dtype
    index : NDArray[uint8 | uint16 | uint32 | uint64], any shape, any layout
        Every value < k (checked).

    Returns
    -------
    NDArray, ``index``'s shape, ``table``'s dtype
        New C-contiguous array.

    Raises
    ------
    TypeError
        ``table`` is not a 1D ndarray or ``index`` not an unsigned-integer ndarray.
    ValueError
        ``index`` holds a value outside ``table``.
    """
    if not isinstance(table, np.ndarray) or table.ndim != 1:
        raise TypeError("table must be a 1D numpy.ndarray")
    flat = np.ascontiguousarray(_check_block(index, "index", writeable=False))
    out = np.empty(index.shape, table.dtype)
    if not _gather_kernel(np.ascontiguousarray(table), flat, out.reshape(-1)):
        raise ValueError(f"index holds values outside a table of {table.size} entries")
    return out


def split_index(
    index: NDArray[Any],
    hit: NDArray[np.bool_],
    spans: NDArray[np.integer[Any]],
    offset_zyx: tuple[int, int, int],
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Move the voxels inside ``spans`` whose entry is ``hit`` to a new entry.

    Parameters
    ----------
    index : NDArray[uint8 | uint16 | uint32], shape (Z, Y, X)
        A palette index (any layout); not modified.
    hit : NDArray[bool], shape (k,)
        The entries that move; every value of ``index`` is < k (checked).
    spans : NDArray[integer], shape (n, 4)
        RLE rows ``(x, y, z, length)``, global coordinates; clipped to the box.
    offset_zyx : 3 ints
        Global coordinate of ``index[0, 0, 0]``.

    Returns
    -------
    index : NDArray[uint8 | uint16 | uint32], shape (Z, Y, X)
        New C-contiguous array: the moved voxels hold entry ``k``; the dtype of
        ``index``, or the next one of :data:`INDEX_DTYPES` if it cannot hold ``k``.
    moved : NDArray[int64], shape (k,)
        Voxels moved from each entry.

    Raises
    ------
    TypeError
        ``index`` is not a uint8, uint16 or uint32 ndarray, ``hit`` not a bool array.
    ValueError
        ``index`` is not 3D or holds an entry outside ``hit``; malformed spans.
    """
    if not isinstance(index, np.ndarray) or index.dtype not in INDEX_DTYPES:
        raise TypeError("index must be a uint8, uint16 or uint32 numpy.ndarray")
    if index.ndim != 3:
        raise ValueError(f"index must be 3D, got {index.ndim} dims")
    if not isinstance(hit, np.ndarray) or hit.dtype != np.bool_ or hit.ndim != 1:
        raise TypeError("hit must be a 1D bool numpy.ndarray")
    k = hit.size
    dtype = next((d for d in INDEX_DTYPES if k <= np.iinfo(d).max), None)
    if dtype is None:
        raise ValueError(f"a palette of {k + 1} entries does not fit a uint32 index")
    if dtype.itemsize < index.dtype.itemsize:
        dtype = index.dtype
    if index.size and int(index.max()) >= k:
        raise ValueError(f"index holds entries outside a palette of {k}")
    s = _check_spans(spans)
    oz, oy, ox = _check_triple(offset_zyx, "offset_zyx", positive=False)
    out = np.array(index, dtype=dtype, order="C")
    moved = np.zeros(k + 1, np.int64)  # (the new entry's slot stays 0)
    if s.shape[0]:
        _split_index_kernel(s, oz, oy, ox, np.append(hit, False), k, out, moved)
    return out, moved[:k]
