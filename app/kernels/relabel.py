"""In-place relabelling of label blocks: merge and remap.

All front ends work on any shape (the kernels are element-wise) but need a
C-contiguous, writeable unsigned-integer array, because they change it in place.
They return the number of voxels whose value changed.  :func:`relabel_indexed`
(a merge that keeps its undo data) writes new arrays instead.

Kernels:

* few labels (<= ``_LINEAR_MAX``, the common merge): chunks of ``_CHUNK``
  voxels. A chunk holding one value (frequent in supervoxel data, whose labels
  come in long runs along x) is decided by one membership test and filled; any
  other chunk is compared against each label with vectorised (SIMD) loops.
* many labels, and ``remap_inplace``: an open-addressing hash table of the keys;
  a voxel equal to the previous one reuses its lookup.
* ``relabel_indexed``: one pass writing the merged copy and the label index of
  every changed voxel; chunks as above for few labels, else runs reuse their
  lookup and other voxels binary-search.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from app.kernels.hashing import key_table, lookup

__all__ = [
    "index_dtype",
    "relabel_indexed",
    "relabel_inplace",
    "remap_inplace",
]

_UNSIGNED = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32), np.dtype(np.uint64))

# Voxels per chunk of the scanning kernels (tuned on 256**3 and 512**3 volumes).
_CHUNK = 256
# Up to this many labels, membership is a vectorised compare against each label;
# above it, a hash-table lookup.
_LINEAR_MAX = 16


# --------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True)
def _relabel_indexed_kernel(
    flat: NDArray[Any], labels: NDArray[Any], target: Any, out: NDArray[Any], index: NDArray[Any]
) -> int:
    """``out = flat`` with voxels in ``labels`` (sorted, distinct) set to ``target``,
    and ``index[i] = k + 1`` where ``flat[i] == labels[k]``, else 0 (all 1D).

    A voxel equal to the previous one reuses its lookup (labels come in runs
    along x); a lookup is a binary search.
    """
    nl = labels.size
    lo = labels[0]
    hi = labels[nl - 1]
    changed = 0
    prev = flat[0]
    prev_k = 0
    for i in range(flat.size):
        v = flat[i]
        if i == 0 or v != prev:
            prev = v
            prev_k = 0
            if lo <= v <= hi:
                a = 0
                b = nl
                while a < b:
                    m = (a + b) >> 1
                    if labels[m] < v:
                        a = m + 1
                    else:
                        b = m
                if a < nl and labels[a] == v:
                    prev_k = a + 1
        if prev_k:
            out[i] = target
            changed += 1
        else:
            out[i] = v
        index[i] = prev_k
    return changed


@njit(cache=True, nogil=True, inline="always")
def _uniform_chunk(flat: NDArray[Any], base: int, cnt: int) -> bool:
    """True if ``flat[base:base + cnt]`` holds one value (a vectorised OR of XORs)."""
    v0 = flat[base]
    diff = v0 ^ v0
    for j in range(cnt):
        diff |= flat[base + j] ^ v0
    return diff == 0


@njit(cache=True, nogil=True, inline="always")
def _position(labels: NDArray[Any], value: Any) -> int:
    """1 + the index of ``value`` in the (few, sorted) ``labels``, or 0."""
    if value < labels[0] or value > labels[labels.size - 1]:
        return 0
    code = 0
    for k in range(labels.size):
        if labels[k] == value:
            code = k + 1
    return code


@njit(cache=True, nogil=True)
def _relabel_indexed_linear_kernel(
    flat: NDArray[Any], labels: NDArray[Any], target: Any, out: NDArray[Any], index: NDArray[Any]
) -> int:
    """:func:`_relabel_indexed_kernel` for few labels, in chunks of ``_CHUNK``
    voxels: a chunk of one value takes one lookup; any other is compared against
    each label with vectorised loops."""
    n = flat.size
    nl = labels.size
    changed = 0
    for c in range((n + _CHUNK - 1) // _CHUNK):
        base = c * _CHUNK
        cnt = min(_CHUNK, n - base)
        if _uniform_chunk(flat, base, cnt):
            v0 = flat[base]
            code = _position(labels, v0)
            for j in range(cnt):
                out[base + j] = target if code else v0
                index[base + j] = code
            changed += cnt if code else 0
            continue
        for j in range(cnt):
            index[base + j] = 0
        for k in range(nl):
            lab = labels[k]
            code = index.dtype.type(k + 1)
            for j in range(cnt):
                index[base + j] = code if flat[base + j] == lab else index[base + j]
        for j in range(cnt):
            h = index[base + j]
            changed += h != 0
            out[base + j] = target if h else flat[base + j]
    return changed


@njit(cache=True, nogil=True)
def _relabel_linear_kernel(flat: NDArray[Any], labels: NDArray[Any], target: Any) -> int:
    """Set voxels of ``flat`` (1D) found in ``labels`` (few, sorted) to ``target``."""
    n = flat.size
    nl = labels.size
    hit = np.zeros(_CHUNK, dtype=np.uint8)
    changed = 0
    for c in range((n + _CHUNK - 1) // _CHUNK):
        base = c * _CHUNK
        cnt = min(_CHUNK, n - base)
        if _uniform_chunk(flat, base, cnt):
            if _position(labels, flat[base]):
                for j in range(cnt):
                    flat[base + j] = target
                changed += cnt
            continue
        for j in range(cnt):
            hit[j] = 0
        for k in range(nl):
            lab = labels[k]
            for j in range(cnt):
                hit[j] |= flat[base + j] == lab
        nhit = 0
        for j in range(cnt):
            h = hit[j]
            nhit += h
            flat[base + j] = target if h else flat[base + j]
        changed += nhit
    return changed


@njit(cache=True, nogil=True)
def _remap_hash_kernel(
    flat: NDArray[Any],
    tkeys: NDArray[Any],
    tidx: NDArray[np.int64],
    used: NDArray[np.uint8],
    kmin: Any,
    kmax: Any,
    values: NDArray[Any],
) -> int:
    """Set voxels of ``flat`` (1D) that are keys of the hash table to their value.

    ``tkeys/tidx/used`` is a :func:`app.kernels.hashing.key_table`;
    ``kmin``/``kmax`` bound the keys (cheap reject). A voxel equal to the
    previous one reuses its lookup (labels come in runs along x). Values differ
    from their keys so that every replacement counts.
    """
    changed = 0
    prev = flat[0]
    prev_idx = lookup(tkeys, tidx, used, kmin, kmax, prev)
    for i in range(flat.size):
        v = flat[i]
        if v != prev:
            prev = v
            prev_idx = lookup(tkeys, tidx, used, kmin, kmax, v)
        if prev_idx >= 0:
            flat[i] = values[prev_idx]
            changed += 1
    return changed


def _remap_sorted(flat: NDArray[Any], keys: NDArray[Any], values: NDArray[Any]) -> int:
    """Apply ``keys[i] -> values[i]`` (distinct, sorted keys of flat's dtype)."""
    tkeys, tidx, used = key_table(keys)
    return int(_remap_hash_kernel(flat, tkeys, tidx, used, keys[0], keys[-1], values))


# --------------------------------------------------------------------------- helpers


def _check_block(block: Any, name: str = "block", *, writeable: bool = True) -> NDArray[Any]:
    """Validate an unsigned-integer block and return it flattened (a view)."""
    if not isinstance(block, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(block).__name__}")
    if block.dtype not in _UNSIGNED:
        raise TypeError(
            f"{name} must have an unsigned integer dtype (uint8/16/32/64), got {block.dtype}"
        )
    if block.ndim < 1:
        raise ValueError(f"{name} must have at least one axis, got a 0-d array")
    if writeable:
        if not block.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous to be modified in place")
        if not block.flags.writeable:
            raise ValueError(f"{name} must be writeable")
    return block.reshape(-1)


def _as_label_array(labels: ArrayLike, name: str) -> NDArray[np.uint64]:
    """Convert 1D non-negative integer labels to uint64 (no sorting).

    Python sequences are converted element by element (never through float64,
    which would corrupt labels above 2**53).
    """
    if isinstance(labels, np.ndarray):
        arr = labels
    else:
        arr = np.empty(0, dtype=object) if _is_empty(labels) else np.asarray(labels, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1D, got ndim={arr.ndim}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if arr.dtype == np.dtype(object):
        items = arr.tolist()
        if not all(isinstance(x, int | np.integer) and not isinstance(x, bool) for x in items):
            raise TypeError(f"{name} must hold integers")
        ints = [int(x) for x in items]
        if min(ints) < 0:
            raise ValueError(f"{name} must be non-negative, got {min(ints)}")
        if max(ints) >= 2**64:
            raise ValueError(f"{name} must be < 2**64, got {max(ints)}")
        return np.array(ints, dtype=np.uint64)
    if arr.dtype.kind not in "ui":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and bool((arr < 0).any()):
        raise ValueError(f"{name} must be non-negative, got {int(arr.min())}")
    return arr.astype(np.uint64, copy=False)


def _is_empty(values: Any) -> bool:
    try:
        return len(values) == 0
    except TypeError:
        return False


def _label_scalar(value: Any, name: str) -> int:
    """Validate a non-negative integer label given as a Python or NumPy integer."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if v < 0 or v >= 2**64:
        raise ValueError(f"{name} must be in [0, 2**64), got {v}")
    return v


def _fit_scalar(value: int, dtype: np.dtype[Any], name: str) -> np.unsignedinteger[Any]:
    """Cast a label that will be written into a block of ``dtype``."""
    if value > np.iinfo(dtype).max:
        raise ValueError(f"{name}={value} does not fit in the block's dtype {dtype}")
    return dtype.type(value)


def _representable(labels: NDArray[np.uint64], dtype: np.dtype[Any]) -> NDArray[Any]:
    """The labels that can occur in a block of ``dtype``, cast to it."""
    return labels[labels <= np.uint64(np.iinfo(dtype).max)].astype(dtype)


# --------------------------------------------------------------------------- front ends


def relabel_inplace(block: NDArray[Any], labels: ArrayLike, target: int) -> int:
    """Set every voxel whose value is in ``labels`` to ``target``, in place.

    Parameters
    ----------
    block : NDArray[uint8 | uint16 | uint32 | uint64], any shape
        C-contiguous, writeable; modified in place.
    labels : array_like of non-negative int, shape (n,)
        Labels to replace; any order, duplicates allowed. Labels too large for
        ``block``'s dtype cannot occur and are ignored.
    target : int
        Replacement label; must fit ``block``'s dtype.

    Returns
    -------
    int
        Number of voxels changed (voxels already equal to ``target`` do not count).

    Raises
    ------
    TypeError
        ``block`` is not an unsigned-integer ndarray, or ``labels``/``target`` are
        not integers.
    ValueError
        ``block`` is not C-contiguous or not writeable, ``labels`` is not 1D or
        holds negative values, ``target`` does not fit the dtype.
    """
    flat = _check_block(block)
    labs = _as_label_array(labels, "labels")
    tgt = _fit_scalar(_label_scalar(target, "target"), block.dtype, "target")
    labs = np.unique(_representable(labs, block.dtype))
    labs = labs[labs != tgt]
    if labs.size == 0 or flat.size == 0:
        return 0
    if labs.size <= _LINEAR_MAX:
        return int(_relabel_linear_kernel(flat, labs, tgt))
    values = np.full(labs.size, tgt, dtype=block.dtype)
    return _remap_sorted(flat, labs, values)


def remap_inplace(block: NDArray[Any], keys: ArrayLike, values: ArrayLike) -> int:
    """Set voxels equal to ``keys[i]`` to ``values[i]``, in place.

    Voxels whose value is not in ``keys`` are unchanged. The mapping is applied
    once (``{1: 2, 2: 3}`` maps 1 to 2, not to 3).

    Parameters
    ----------
    block : NDArray[uint8 | uint16 | uint32 | uint64], any shape
        C-contiguous, writeable; modified in place.
    keys : array_like of non-negative int, shape (n,)
        Distinct source labels, any order. Keys too large for the dtype are
        ignored.
    values : array_like of non-negative int, shape (n,)
        Destination labels; must fit ``block``'s dtype.

    Returns
    -------
    int
        Number of voxels changed (keys mapped to themselves do not count).

    Raises
    ------
    TypeError
        Bad ``block`` type/dtype, or non-integer keys/values.
    ValueError
        ``block`` not C-contiguous/writeable; ``keys``/``values`` not 1D, of
        different lengths, negative; duplicated keys; a value too large for the
        dtype.
    """
    flat = _check_block(block)
    k = _as_label_array(keys, "keys")
    v = _as_label_array(values, "values")
    if k.shape != v.shape:
        raise ValueError(f"keys and values must have the same length, got {k.size} and {v.size}")
    if k.size == 0 or flat.size == 0:
        return 0
    order = np.argsort(k, kind="stable")
    k = k[order]
    v = v[order]
    dup = k[1:] == k[:-1]
    if bool(dup.any()):
        raise ValueError(f"keys must be unique; {int(k[1:][dup][0])} is repeated")
    maxv = np.uint64(np.iinfo(block.dtype).max)
    keep = k <= maxv
    k = k[keep]
    v = v[keep]
    if v.size and bool((v > maxv).any()):
        bad = int(v[v > maxv][0])
        raise ValueError(f"values: {bad} does not fit in the block's dtype {block.dtype}")
    keep = k != v
    k = k[keep].astype(block.dtype)
    v = v[keep].astype(block.dtype)
    if k.size == 0:
        return 0
    return _remap_sorted(flat, k, v)


def relabel_indexed(
    block: NDArray[Any], labels: ArrayLike, target: int
) -> tuple[NDArray[Any], NDArray[Any], int]:
    """A relabelled copy of ``block`` and where each relabelled voxel came from.

    One pass makes both the merged block and its undo data: ``index`` names,
    per voxel, which of ``labels`` it held (1-based; 0 for voxels left alone).

    Parameters
    ----------
    block : NDArray[uint8 | uint16 | uint32 | uint64], any shape
        Any layout; not modified.
    labels : array_like of non-negative int, shape (n,), n >= 1
        Sorted, distinct labels to replace, without ``target``.
    target : int
        Replacement label; must fit ``block``'s dtype.

    Returns
    -------
    new : NDArray, same shape and dtype as ``block``
        New C-contiguous array: ``target`` where ``block`` is in ``labels``.
    index : NDArray[uint8 | uint16 | uint32 | uint64], same shape
        New C-contiguous array of :func:`index_dtype` ``(n)``: ``k + 1`` where
        ``block == labels[k]``, else 0.
    changed : int
        Number of voxels relabelled.

    Raises
    ------
    TypeError
        ``block`` is not an unsigned-integer ndarray, or ``labels``/``target`` are
        not integers.
    ValueError
        ``labels`` is empty, not sorted and distinct, or holds ``target``;
        ``target`` does not fit the dtype.
    """
    flat = np.ascontiguousarray(_check_block(block, writeable=False))
    labs = _as_label_array(labels, "labels")
    tgt = _fit_scalar(_label_scalar(target, "target"), block.dtype, "target")
    if labs.size == 0:
        raise ValueError("labels must not be empty")
    if bool((labs[1:] <= labs[:-1]).any()):
        raise ValueError("labels must be sorted and distinct")
    if bool((labs == np.uint64(int(tgt))).any()):
        raise ValueError(f"labels must not hold the target {int(tgt)}")
    new = np.empty(block.shape, block.dtype)
    index = np.empty(block.shape, index_dtype(labs.size))
    labs = _representable(labs, block.dtype)
    if labs.size == 0 or flat.size == 0:
        new[...] = block
        index[...] = 0
        return new, index, 0
    kernel = _relabel_indexed_linear_kernel if labs.size <= _LINEAR_MAX else _relabel_indexed_kernel
    changed = kernel(flat, labs, tgt, new.reshape(-1), index.reshape(-1))
    return new, index, int(changed)


def index_dtype(n: int) -> np.dtype[Any]:
    """The smallest unsigned dtype holding the indices ``0..n`` of :func:`relabel_indexed`."""
    for dtype in _UNSIGNED:
        if n <= np.iinfo(dtype).max:
            return dtype
    raise ValueError(f"{n} labels do not fit a uint64 index")
