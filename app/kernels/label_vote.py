"""The label voting kernels of 2x2x2 downsampling (see :mod:`app.kernels.downsample`
for the rules and the front ends that check arguments).

Each output voxel is the winner of the non-zero votes (``labelmap``: tie to the
smaller label) or of all votes (``labelblk``: tie to the larger label) of the
2x2x2 group below it; groups cut by an odd edge vote with fewer voxels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

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
def downsample_kernel(vol: NDArray[Any], lut: Any, out: NDArray[Any], labelblk: bool) -> None:
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
def downsample_palette_kernel(
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
