"""Exact 2x2x2 downsampling of label and grayscale volumes.

Axis order is ``(z, y, x)``, C order. A voxel of the output summarises the
2x2x2 group of input voxels below it; at the far edges of an odd-sized axis a
group has fewer than 8 voxels and only the voxels inside the volume take part.

Label rules (see SPEC §2 "Downres rule"):

``"labelmap"`` (default, DVID labelmap/labelarray)
    Each non-zero label votes; most votes wins; a tie goes to the smaller label;
    an all-zero group gives 0.
``"labelblk"`` (what DVID's labelblk ``downsizeAdd`` does)
    Zero votes like any label; a tie goes to the larger label.

Grayscale: the mean of the group, rounded to nearest with halves rounded up,
``(sum + n // 2) // n`` with ``n`` the number of voxels of the group inside the
volume.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
from numba import njit
from numpy.typing import NDArray

from app.kernels.palette import INDEX_DTYPES
from app.kernels.relabel import index_dtype

__all__ = [
    "RULES",
    "downsample_image",
    "downsample_image_into",
    "downsample_labels",
    "downsample_labels_into",
    "downsample_palette_into",
    "downsampled_shape",
]

#: Names of the supported label downsampling rules.
RULES: tuple[str, ...] = ("labelmap", "labelblk")

_LABEL_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32), np.dtype(np.uint64))
_IMAGE_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))

U = TypeVar("U", bound=np.unsignedinteger[Any])

# Groups per chunk of the interior loop (see _vote_planes).
_CHUNK = 16


# --------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True, inline="always")
def _vote8(
    a0: Any, a1: Any, a2: Any, a3: Any, a4: Any, a5: Any, a6: Any, a7: Any, labelblk: bool
) -> Any:
    """Winner of a full 2x2x2 group of 8 values; branch-free, so that the
    caller's loop vectorises (SIMD min/max, compares and blends).

    Sorts the 8 values with an optimal 19-comparator network, computes the
    length of the run of equal values ending at each sorted position, and keeps
    the best run scanning in ascending order: a strictly longer run replaces the
    winner for ``labelmap`` (so ties keep the smaller label; zeros score 0), a
    longer or equal one for ``labelblk`` (ties go to the larger label). A run's
    partial lengths never exceed its full length, so only full runs matter.
    """
    # sorting network (Knuth, TAOCP 5.3.4; 19 comparators, depth 6)
    b0, b2 = min(a0, a2), max(a0, a2)
    b1, b3 = min(a1, a3), max(a1, a3)
    b4, b6 = min(a4, a6), max(a4, a6)
    b5, b7 = min(a5, a7), max(a5, a7)
    c0, c4 = min(b0, b4), max(b0, b4)
    c1, c5 = min(b1, b5), max(b1, b5)
    c2, c6 = min(b2, b6), max(b2, b6)
    c3, c7 = min(b3, b7), max(b3, b7)
    s0, d1 = min(c0, c1), max(c0, c1)
    d2, d3 = min(c2, c3), max(c2, c3)
    d4, d5 = min(c4, c5), max(c4, c5)
    d6, s7 = min(c6, c7), max(c6, c7)
    e2, e4 = min(d2, d4), max(d2, d4)
    e3, e5 = min(d3, d5), max(d3, d5)
    f1, f4 = min(d1, e4), max(d1, e4)
    f3, f6 = min(e3, d6), max(e3, d6)
    s1, s2 = min(f1, e2), max(f1, e2)
    s3, s4 = min(f3, f4), max(f3, f4)
    s5, s6 = min(e5, f6), max(e5, f6)
    # length of the run of equal values ending at each sorted position
    n1 = 2 if s1 == s0 else 1
    n2 = n1 + 1 if s2 == s1 else 1
    n3 = n2 + 1 if s3 == s2 else 1
    n4 = n3 + 1 if s4 == s3 else 1
    n5 = n4 + 1 if s5 == s4 else 1
    n6 = n5 + 1 if s6 == s5 else 1
    n7 = n6 + 1 if s7 == s6 else 1
    best = s0
    if labelblk:
        # zero votes like any label; a tie goes to the larger label
        bn = 1
        t = n1 >= bn
        best = s1 if t else best
        bn = n1 if t else bn
        t = n2 >= bn
        best = s2 if t else best
        bn = n2 if t else bn
        t = n3 >= bn
        best = s3 if t else best
        bn = n3 if t else bn
        t = n4 >= bn
        best = s4 if t else best
        bn = n4 if t else bn
        t = n5 >= bn
        best = s5 if t else best
        bn = n5 if t else bn
        t = n6 >= bn
        best = s6 if t else best
        bn = n6 if t else bn
        t = n7 >= bn
        best = s7 if t else best
        return best
    # labelmap: zero scores 0 (does not vote); a tie goes to the smaller label.
    # Zeros sort first, so an all-zero group keeps best = s0 = 0.
    bn = 1 * (s0 != 0)
    k = n1 * (s1 != 0)
    t = k > bn
    best = s1 if t else best
    bn = k if t else bn
    k = n2 * (s2 != 0)
    t = k > bn
    best = s2 if t else best
    bn = k if t else bn
    k = n3 * (s3 != 0)
    t = k > bn
    best = s3 if t else best
    bn = k if t else bn
    k = n4 * (s4 != 0)
    t = k > bn
    best = s4 if t else best
    bn = k if t else bn
    k = n5 * (s5 != 0)
    t = k > bn
    best = s5 if t else best
    bn = k if t else bn
    k = n6 * (s6 != 0)
    t = k > bn
    best = s6 if t else best
    bn = k if t else bn
    k = n7 * (s7 != 0)
    t = k > bn
    best = s7 if t else best
    return best


@njit(cache=True, nogil=True)
def _vote_n(buf: NDArray[Any], n: int, labelblk: bool) -> Any:
    """Winner among the first ``n`` (1..8) values of ``buf`` (partial groups)."""
    best = buf[0]
    bc = 0
    for i in range(n):
        v = buf[i]
        c = 0
        for j in range(n):
            c += buf[j] == v
        if labelblk:
            if c > bc or (c == bc and v > best):
                best = v
                bc = c
        else:
            if v == 0:
                c = 0
            if c > bc or (c == bc and v < best):
                best = v
                bc = c
    return best


@njit(cache=True, nogil=True, inline="always")
def _at(plane: NDArray[Any], y: int, x: int, lut: Any) -> Any:
    """Label of voxel ``(y, x)`` of ``plane``: the value itself, or its entry
    in ``lut`` when ``lut`` is not None (resolved when compiling)."""
    if lut is None:
        return plane[y, x]
    return lut[plane[y, x]]


@njit(cache=True, nogil=True)
def _vote_planes(
    p0: NDArray[Any],
    p1: NDArray[Any],
    full_z: bool,
    lut: Any,
    out: NDArray[Any],
    labelblk: bool,
    buf: NDArray[Any],
    dec: NDArray[Any],
) -> None:
    """Write into 2D ``out`` the label vote of the groups on planes ``p0`` (z0)
    and ``p1`` (z0 + 1; ignored unless ``full_z``, at a far-edge z plane).

    The planes hold labels (``lut`` None) or palette entries whose labels are
    ``lut``. ``buf`` (8 values) and ``dec`` (4 rows of ``2 * _CHUNK``) are
    scratch of ``out``'s dtype. Rows are indexed in place, not taken as views:
    a view per row costs reference counting that dwarfs a uniform chunk.
    """
    ny, nx = p0.shape
    oy_n, ox_n = out.shape
    fy = ny // 2
    fx = nx // 2
    for oy in range(oy_n):
        y0 = 2 * oy
        y1 = min(y0 + 1, ny - 1)
        start = 0
        if full_z and oy < fy:
            # Interior: full 8-voxel groups, in chunks of _CHUNK groups along
            # x (loops of a constant trip count, so that they vectorise). A
            # first pass detects whether the chunk's voxels are all one
            # stored value (a palette's entries are one byte each): such a
            # chunk (frequent in supervoxel data) costs one streaming read. A
            # mixed one is copied (labels looked up) into ``dec`` and voted on
            # there by a second, branch-free pass. The groups after the last
            # whole chunk go with the partial groups below.
            for c in range(fx // _CHUNK):
                base = 2 * c * _CHUNK
                a0 = p0[y0, base]
                mixed = a0 ^ a0  # zero of the stored dtype
                for j in range(2 * _CHUNK):
                    x = base + j
                    mixed |= (
                        (p0[y0, x] ^ a0) | (p0[y1, x] ^ a0) | (p1[y0, x] ^ a0) | (p1[y1, x] ^ a0)
                    )
                if mixed == 0:
                    v = a0 if lut is None else lut[a0]
                    for j in range(_CHUNK):
                        out[oy, c * _CHUNK + j] = v
                    continue
                for j in range(2 * _CHUNK):
                    x = base + j
                    dec[0, j] = _at(p0, y0, x, lut)
                    dec[1, j] = _at(p0, y1, x, lut)
                    dec[2, j] = _at(p1, y0, x, lut)
                    dec[3, j] = _at(p1, y1, x, lut)
                for j in range(_CHUNK):
                    x = 2 * j
                    out[oy, c * _CHUNK + j] = _vote8(
                        dec[0, x],
                        dec[0, x + 1],
                        dec[1, x],
                        dec[1, x + 1],
                        dec[2, x],
                        dec[2, x + 1],
                        dec[3, x],
                        dec[3, x + 1],
                        labelblk,
                    )
            start = fx // _CHUNK * _CHUNK
        # the rest, one group at a time: the groups after the last chunk, and
        # partial groups (far-edge x, or a far-edge z / y plane)
        dz = 2 if full_z else 1
        dy = 2 if y1 != y0 else 1
        for ox in range(start, ox_n):
            x0 = 2 * ox
            dx = 2 if x0 + 1 < nx else 1
            n = 0
            for ky in range(dy):
                for kx in range(dx):
                    buf[n] = _at(p0, y0 + ky, x0 + kx, lut)
                    n += 1
                    if dz == 2:
                        buf[n] = _at(p1, y0 + ky, x0 + kx, lut)
                        n += 1
            out[oy, ox] = _vote_n(buf, n, labelblk)


@njit(cache=True, nogil=True)
def _downsample_kernel(vol: NDArray[Any], lut: Any, out: NDArray[Any], labelblk: bool) -> None:
    """Write the 2x2x2 label vote of C-contiguous 3D ``vol`` (labels, or
    palette entries of ``lut``) into C-contiguous ``out`` of shape
    ``ceil(vol.shape / 2)``."""
    nz = vol.shape[0]
    buf = np.empty(8, dtype=out.dtype)
    dec = np.empty((4, 2 * _CHUNK), dtype=out.dtype)
    for oz in range(out.shape[0]):
        z0 = 2 * oz
        z1 = min(z0 + 1, nz - 1)
        _vote_planes(vol[z0], vol[z1], z1 != z0, lut, out[oz], labelblk, buf, dec)


@njit(cache=True, nogil=True)
def _downsample_palette_kernel(
    index: NDArray[Any],
    rank: NDArray[Any],
    by_rank: NDArray[Any],
    out: NDArray[Any],
    labelblk: bool,
) -> None:
    """:func:`_downsample_kernel` of ``by_rank[rank[index]]``, voted on ranks,
    into ``out`` of any layout (e.g. an octant of a parent block).

    ``rank`` maps each palette entry to its label's rank among the sorted
    distinct labels with 0 first (rank 0 is label 0), ``by_rank`` ranks back
    to labels. Ranks order and compare as the labels do, so the vote on them
    is the vote on the labels, in 1-2 bytes per voxel instead of 8.
    """
    nz = index.shape[0]
    plane = np.empty(out.shape[1:], dtype=rank.dtype)
    buf = np.empty(8, dtype=rank.dtype)
    dec = np.empty((4, 2 * _CHUNK), dtype=rank.dtype)
    for oz in range(out.shape[0]):
        z0 = 2 * oz
        z1 = min(z0 + 1, nz - 1)
        _vote_planes(index[z0], index[z1], z1 != z0, rank, plane, labelblk, buf, dec)
        dst = out[oz]
        for oy in range(plane.shape[0]):
            for ox in range(plane.shape[1]):
                dst[oy, ox] = by_rank[plane[oy, ox]]


@njit(cache=True, nogil=True)
def _downsample_image_kernel(vol: NDArray[Any], out: NDArray[Any]) -> None:
    """Write the rounded 2x2x2 mean of C-contiguous 3D ``vol`` into ``out``."""
    nz, ny, nx = vol.shape
    oz_n, oy_n, ox_n = out.shape
    fz = nz // 2
    fy = ny // 2
    fx = nx // 2
    for oz in range(oz_n):
        z0 = 2 * oz
        z1 = min(z0 + 1, nz - 1)
        for oy in range(oy_n):
            y0 = 2 * oy
            y1 = min(y0 + 1, ny - 1)
            orow = out[oz, oy]
            r0 = vol[z0, y0]
            r1 = vol[z0, y1]
            r2 = vol[z1, y0]
            r3 = vol[z1, y1]
            start = 0
            if oz < fz and oy < fy:
                for ox in range(fx):
                    x = 2 * ox
                    s = (
                        np.uint32(r0[x])
                        + np.uint32(r0[x + 1])
                        + np.uint32(r1[x])
                        + np.uint32(r1[x + 1])
                        + np.uint32(r2[x])
                        + np.uint32(r2[x + 1])
                        + np.uint32(r3[x])
                        + np.uint32(r3[x + 1])
                    )
                    orow[ox] = (s + np.uint32(4)) // np.uint32(8)
                start = fx
            dz = 2 if z1 != z0 else 1
            dy = 2 if y1 != y0 else 1
            for ox in range(start, ox_n):
                x0 = 2 * ox
                dx = 2 if x0 + 1 < nx else 1
                s = np.uint32(0)
                n = np.uint32(0)
                for kz in range(dz):
                    for ky in range(dy):
                        for kx in range(dx):
                            s += np.uint32(vol[z0 + kz, y0 + ky, x0 + kx])
                            n += np.uint32(1)
                orow[ox] = (s + n // np.uint32(2)) // n


# --------------------------------------------------------------------------- front ends


def downsampled_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Shape of the 2x2x2 downsampling of a volume of shape ``shape``.

    Parameters
    ----------
    shape : tuple of 3 ints
        ``(Z, Y, X)``.

    Returns
    -------
    tuple of 3 ints
        ``(ceil(Z/2), ceil(Y/2), ceil(X/2))``.
    """
    if len(shape) != 3:
        raise ValueError(f"shape must have 3 axes (z, y, x), got {tuple(shape)!r}")
    z, y, x = (int(s) for s in shape)
    return ((z + 1) // 2, (y + 1) // 2, (x + 1) // 2)


def _check_volume(vol: Any, name: str, dtypes: tuple[np.dtype[Any], ...]) -> NDArray[Any]:
    if not isinstance(vol, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(vol).__name__}")
    if vol.dtype not in dtypes:
        allowed = ", ".join(str(d) for d in dtypes)
        raise TypeError(f"{name} must have dtype in ({allowed}), got {vol.dtype}")
    if vol.ndim != 3:
        raise ValueError(f"{name} must be 3D (z, y, x), got ndim={vol.ndim}")
    if min(vol.shape) == 0:
        raise ValueError(f"{name} must not be empty, got shape {vol.shape}")
    return np.ascontiguousarray(vol)


def _check_out(out: Any, vol: NDArray[Any], labels: NDArray[Any] | None = None) -> None:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    dtype, of = (vol.dtype, "vol") if labels is None else (labels.dtype, "labels")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {dtype} (same as {of}), got {out.dtype}")
    expected = downsampled_shape(vol.shape)
    if out.shape != expected:
        raise ValueError(
            f"out must have shape {expected} for vol of shape {vol.shape}, got {out.shape}"
        )
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if np.shares_memory(out, vol):
        raise ValueError("out must not overlap vol")


def _rule_flag(rule: str) -> bool:
    if rule not in RULES:
        raise ValueError(f"unknown downsampling rule {rule!r}; expected one of {RULES}")
    return rule == "labelblk"


def downsample_labels(vol: NDArray[U], rule: str = "labelmap") -> NDArray[U]:
    """Downsample a label volume 2x2x2 by exact voting.

    Parameters
    ----------
    vol : NDArray[uint8 | uint16 | uint32 | uint64], shape (Z, Y, X)
        Labels; any memory layout (non-contiguous input is copied).
    rule : {"labelmap", "labelblk"}
        ``"labelmap"``: non-zero labels vote, most votes wins, ties go to the
        smaller label, an all-zero group gives 0. ``"labelblk"``: zero votes
        too, ties go to the larger label. At far edges only the voxels inside
        the volume vote.

    Returns
    -------
    NDArray, shape (ceil(Z/2), ceil(Y/2), ceil(X/2)), same dtype as ``vol``
        New C-contiguous array.

    Raises
    ------
    TypeError
        ``vol`` is not an unsigned-integer ndarray.
    ValueError
        ``vol`` is not 3D or is empty, or ``rule`` is unknown.
    """
    labelblk = _rule_flag(rule)
    v = _check_volume(vol, "vol", _LABEL_DTYPES)
    out = np.empty(downsampled_shape(v.shape), dtype=v.dtype)
    _downsample_kernel(v, None, out, labelblk)
    return out


def downsample_labels_into(vol: NDArray[U], out: NDArray[U], rule: str = "labelmap") -> NDArray[U]:
    """Downsample a label volume 2x2x2 into a preallocated array (in place).

    Parameters
    ----------
    vol : NDArray[uint8 | uint16 | uint32 | uint64], shape (Z, Y, X)
        Labels; any memory layout.
    out : NDArray, shape (ceil(Z/2), ceil(Y/2), ceil(X/2)), same dtype as ``vol``
        Destination; may be a non-contiguous view (e.g. an octant of a larger
        block). Must not overlap ``vol``.
    rule : {"labelmap", "labelblk"}
        See :func:`downsample_labels`.

    Returns
    -------
    NDArray
        ``out``, filled.

    Raises
    ------
    TypeError
        Bad dtype of ``vol`` or ``out``.
    ValueError
        Bad shape of ``vol`` or ``out``, read-only ``out`` or unknown ``rule``.
    """
    labelblk = _rule_flag(rule)
    v = _check_volume(vol, "vol", _LABEL_DTYPES)
    _check_out(out, v)
    if out.flags.c_contiguous:
        _downsample_kernel(v, None, out, labelblk)
    else:
        tmp = np.empty(out.shape, dtype=out.dtype)
        _downsample_kernel(v, None, tmp, labelblk)
        out[...] = tmp
    return out


def downsample_palette_into(
    index: NDArray[Any], labels: NDArray[U], out: NDArray[U], rule: str = "labelmap"
) -> NDArray[U]:
    """:func:`downsample_labels_into` of the volume ``labels[index]``, read
    through the palette (the volume is never built).

    Parameters
    ----------
    index : NDArray[uint8 | uint16 | uint32], shape (Z, Y, X)
        Each voxel's entry in ``labels`` (all < ``labels.size``); any layout.
    labels : NDArray[uint8 | uint16 | uint32 | uint64], shape (k,)
        Label of each entry (entries may repeat a label).
    out : NDArray, shape (ceil(Z/2), ceil(Y/2), ceil(X/2)), ``labels``' dtype
        Destination; may be a non-contiguous view.
    rule : {"labelmap", "labelblk"}
        See :func:`downsample_labels`.

    Returns
    -------
    NDArray
        ``out``, filled: exactly ``downsample_labels(labels[index], rule)``.

    Raises
    ------
    TypeError
        Bad dtype of ``index``, ``labels`` or ``out``.
    ValueError
        Bad shapes, an index outside ``labels``, read-only ``out`` or unknown ``rule``.
    """
    labelblk = _rule_flag(rule)
    v = _check_volume(index, "index", INDEX_DTYPES)
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or labels.dtype not in _LABEL_DTYPES:
        raise TypeError("labels must be a 1D unsigned-integer numpy.ndarray")
    _check_out(out, v, labels)
    if int(v.max()) >= labels.size:
        raise ValueError(f"index holds values outside the {labels.size} labels")
    by_rank = np.unique(np.append(labels, labels.dtype.type(0)))
    rank = np.searchsorted(by_rank, labels).astype(index_dtype(by_rank.size - 1))
    _downsample_palette_kernel(v, rank, by_rank, out, labelblk)
    return out


def downsample_image(vol: NDArray[U]) -> NDArray[U]:
    """Downsample a grayscale volume 2x2x2 by the rounded mean.

    Each output voxel is ``(sum + n // 2) // n`` over the ``n`` voxels of its
    group that lie inside the volume (``n = 8`` in the interior, fewer at far
    edges): the mean rounded to nearest, halves rounded up.

    Parameters
    ----------
    vol : NDArray[uint8 | uint16], shape (Z, Y, X)
        Intensities; any memory layout.

    Returns
    -------
    NDArray, shape (ceil(Z/2), ceil(Y/2), ceil(X/2)), same dtype as ``vol``

    Raises
    ------
    TypeError
        ``vol`` is not a uint8 or uint16 ndarray.
    ValueError
        ``vol`` is not 3D or is empty.
    """
    v = _check_volume(vol, "vol", _IMAGE_DTYPES)
    out = np.empty(downsampled_shape(v.shape), dtype=v.dtype)
    _downsample_image_kernel(v, out)
    return out


def downsample_image_into(vol: NDArray[U], out: NDArray[U]) -> NDArray[U]:
    """Downsample a grayscale volume 2x2x2 into a preallocated array (in place).

    Parameters
    ----------
    vol : NDArray[uint8 | uint16], shape (Z, Y, X)
        Intensities; any memory layout.
    out : NDArray, shape (ceil(Z/2), ceil(Y/2), ceil(X/2)), same dtype as ``vol``
        Destination; may be a non-contiguous view. Must not overlap ``vol``.

    Returns
    -------
    NDArray
        ``out``, filled.
    """
    v = _check_volume(vol, "vol", _IMAGE_DTYPES)
    _check_out(out, v)
    if out.flags.c_contiguous:
        _downsample_image_kernel(v, out)
    else:
        tmp = np.empty(out.shape, dtype=out.dtype)
        _downsample_image_kernel(v, tmp)
        out[...] = tmp
    return out
