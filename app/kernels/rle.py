"""DVID RLE (run-length encoded sparse volume) spans.

Binary format, little-endian (interoperable with DVID):

* headered: 12-byte header ``[0x00, 3, 0, 0, uint32 voxel_count, uint32 n_spans]``
  (``voxel_count`` is ignored on read) followed by the spans;
* headerless: the spans only.

A span is four int32 ``(x, y, z, length)``: ``length`` voxels along x starting
at ``(x, y, z)``, in scale-0 voxel coordinates. In memory, spans are an
``(n, 4)`` integer array with columns ``(x, y, z, length)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "canonical_rles",
    "check_rles_in_bounds",
    "encode_rles",
    "mask_to_rles",
    "parse_rles",
    "rles_by_block",
    "rles_to_mask",
    "rles_voxel_count",
]

_HEADER_BYTES = 12
_SPAN_BYTES = 16
_SPAN_DTYPE = np.dtype("<i4")
_INT32_MAX = 2**31 - 1


# --------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True)
def _rles_to_mask_kernel(
    spans: NDArray[np.int64], oz: int, oy: int, ox: int, mask: NDArray[np.bool_]
) -> None:
    """Set the voxels of ``spans`` (int64 (n, 4)) inside the box to True.

    The box starts at global ``(oz, oy, ox)`` and has ``mask``'s shape.
    """
    nz, ny, nx = mask.shape
    for i in range(spans.shape[0]):
        z = spans[i, 2] - oz
        y = spans[i, 1] - oy
        if z < 0 or z >= nz or y < 0 or y >= ny:
            continue
        x0 = max(spans[i, 0] - ox, 0)
        x1 = min(spans[i, 0] + spans[i, 3] - ox, nx)
        for x in range(x0, x1):
            mask[z, y, x] = True


@njit(cache=True, nogil=True)
def _cover_sorted_kernel(
    spans: NDArray[np.int64], oz: int, oy: int, ox: int, nz: int, ny: int, nx: int
) -> int:
    """Whether ``spans`` (int64 (n, 4)) cover the box of shape ``(nz, ny, nx)``
    at global ``(oz, oy, ox)``, in one sweep if their parts inside the box come
    in (z, y, x) order: 1 (covered) or 0 (not), or -1 if they do not."""
    row, reach = -1, nx  # the row being swept, and how far along x it is covered
    last_start, covered = -1, True
    for i in range(spans.shape[0]):
        z = spans[i, 2] - oz
        y = spans[i, 1] - oy
        x0 = max(spans[i, 0] - ox, 0)
        x1 = min(spans[i, 0] + spans[i, 3] - ox, nx)
        if z < 0 or z >= nz or y < 0 or y >= ny or x1 <= x0:
            continue
        r = z * ny + y
        if r < row or (r == row and x0 < last_start):
            return -1
        if r != row:
            covered = covered and reach >= nx and r == row + 1
            row, reach = r, 0
        covered = covered and x0 <= reach
        reach = max(reach, x1)
        last_start = x0
    return 1 if covered and row == nz * ny - 1 and reach >= nx else 0


_EVERY_BYTE = np.uint64(0x0101010101010101)
"""Eight True bools read as one uint64 (and the multiplier that sums eight bytes)."""
_LOW_SEVEN = np.uint64(0x7F7F7F7F7F7F7F7F)
_NO_BYTE = np.uint64(0)
_BYTE_BITS = np.uint64(8)
_TOP_BYTE = np.uint64(56)
_SEVEN = np.uint64(7)


@njit(cache=True, nogil=True, inline="always")
def _as_bits(w: np.uint64) -> np.uint64:
    """Each byte of ``w`` as 0 or 1 (bool arrays may hold bytes other than 1)."""
    return (((w & _LOW_SEVEN) + _LOW_SEVEN | w) >> _SEVEN) & _EVERY_BYTE


@njit(cache=True, nogil=True)
def _count_runs_kernel(words: NDArray[np.uint64], rows: int) -> int:
    """The x-runs of a bool mask of ``rows`` rows read as uint64 ``words``
    (eight voxels each, each row whole words, little-endian: the first voxel is
    the low byte): a run starts at a True byte after a False one, and eight
    bytes are looked at at once."""
    per_row = words.size // rows
    n = 0
    for r in range(rows):
        before = _NO_BYTE  # the previous word's last byte, moved to the first
        for i in range(r * per_row, (r + 1) * per_row):
            w = _as_bits(words[i])
            starts = w & ~((w << _BYTE_BITS) | before)
            n += int((starts * _EVERY_BYTE) >> _TOP_BYTE)
            before = w >> _TOP_BYTE
    return n


@njit(cache=True, nogil=True)
def _write_runs_kernel(
    words: NDArray[np.uint64],
    rows: int,
    ny: int,
    oz: int,
    oy: int,
    ox: int,
    out: NDArray[np.int32],
) -> None:
    """Write the x-runs of a bool mask of ``rows`` rows (``ny`` per z) read as
    uint64 ``words`` (as :func:`_count_runs_kernel` reads them) into ``out``
    (one row per run) as spans ``(x + ox, y + oy, z + oz, length)``.  Eight
    voxels that go on with the current run or gap are passed over at once."""
    per_row = words.size // rows
    width = 8 * per_row
    k = 0
    for r in range(rows):
        z = r // ny
        y = r - z * ny
        inside, start = False, 0
        for i in range(per_row):
            w = _as_bits(words[r * per_row + i])
            if w == (_EVERY_BYTE if inside else _NO_BYTE):
                continue
            for j in range(8):
                v = ((w >> np.uint64(8 * j)) & np.uint64(1)) != _NO_BYTE
                if v != inside:
                    x = 8 * i + j
                    if inside:
                        out[k, 0] = start + ox
                        out[k, 1] = y + oy
                        out[k, 2] = z + oz
                        out[k, 3] = x - start
                        k += 1
                    else:
                        start = x
                    inside = v
        if inside:
            out[k, 0] = start + ox
            out[k, 1] = y + oy
            out[k, 2] = z + oz
            out[k, 3] = width - start
            k += 1


@njit(cache=True, nogil=True)
def _by_block_kernel(
    spans: NDArray[np.int64], bz: int, by: int, bx: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Group int64 (n, 4) ``spans`` (values within int32) by the blocks they
    touch: block coordinates (m, 3) sorted, bucket starts (m + 1,), and the spans
    (p, 4) in bucket order, in input order within a bucket (a span in several
    blocks is in each).  A counting sort over the blocks of the region's bounding
    box when that box is small next to the pieces, else stable sorts by x, y
    then z."""
    n = spans.shape[0]
    lo = np.full(3, np.iinfo(np.int64).max, np.int64)
    hi = np.full(3, np.iinfo(np.int64).min, np.int64)
    pieces = 0
    for i in range(n):
        cz, cy = spans[i, 2] // bz, spans[i, 1] // by
        cx0, cx1 = spans[i, 0] // bx, (spans[i, 0] + spans[i, 3] - 1) // bx
        pieces += cx1 - cx0 + 1
        lo[0], hi[0] = min(lo[0], cz), max(hi[0], cz)
        lo[1], hi[1] = min(lo[1], cy), max(hi[1], cy)
        lo[2], hi[2] = min(lo[2], cx0), max(hi[2], cx1)
    wz, wy, wx = hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1  # each < 2**33
    limit = 4 * pieces + 4096
    dense = wz <= limit and wy <= limit // wz and wx <= limit // (wz * wy)
    owner = np.empty(pieces, np.int64)  # the span of each piece
    piece_x = np.empty(pieces, np.int64)  # its block's x
    keys = np.empty(pieces, np.int64)  # ordered as the pieces' blocks
    k = 0
    for i in range(n):
        row = 0  # the key of the span's block at x = 0
        if dense:
            row = ((spans[i, 2] // bz - lo[0]) * wy + spans[i, 1] // by - lo[1]) * wx - lo[2]
        for cx in range(spans[i, 0] // bx, (spans[i, 0] + spans[i, 3] - 1) // bx + 1):
            owner[k], piece_x[k] = i, cx
            if dense:
                keys[k] = row + cx
            k += 1
    if dense:
        counts = np.zeros(wz * wy * wx + 1, np.int64)
        for j in range(pieces):
            counts[keys[j] + 1] += 1
        for c in range(wz * wy * wx):
            counts[c + 1] += counts[c]
        order = np.empty(pieces, np.int64)
        for j in range(pieces):
            order[counts[keys[j]]] = j
            counts[keys[j]] += 1
    else:  # far apart: sort, and rank the blocks
        order = np.argsort(piece_x, kind="mergesort")
        for along, size in ((1, by), (2, bz)):
            axis = spans[owner[order], along] // size
            order = order[np.argsort(axis, kind="mergesort")]
        rank = -1
        for j in range(pieces):
            here, before = order[j], order[j - 1]
            if j == 0 or piece_x[here] != piece_x[before] or (
                spans[owner[here], 1] // by != spans[owner[before], 1] // by
            ) or spans[owner[here], 2] // bz != spans[owner[before], 2] // bz:
                rank += 1
            keys[here] = rank
    starts = np.empty(pieces + 1, np.int64)
    coords = np.empty((min(pieces, wz * wy * wx) if dense else pieces, 3), np.int64)
    grouped = np.empty((pieces, 4), np.int64)
    m = 0
    for j in range(pieces):
        here = order[j]
        i = owner[here]
        if j == 0 or keys[here] != keys[order[j - 1]]:
            starts[m] = j
            coords[m, 0], coords[m, 1], coords[m, 2] = spans[i, 2] // bz, spans[i, 1] // by, (
                piece_x[here]
            )
            m += 1
        for c in range(4):
            grouped[j, c] = spans[i, c]
    starts[m] = pieces
    return coords[:m].copy(), starts[: m + 1].copy(), grouped


@njit(cache=True, nogil=True)
def _merge_runs_kernel(spans: NDArray[np.int64]) -> NDArray[np.int64]:
    """Merge the overlapping or touching runs of int64 (n, 4) ``spans`` sorted by
    (z, y, x): one span per maximal run of each row."""
    n = spans.shape[0]
    out = np.empty((n, 4), dtype=np.int64)
    k = -1
    end = 0
    for i in range(n):
        x, y, z, length = spans[i, 0], spans[i, 1], spans[i, 2], spans[i, 3]
        if k >= 0 and out[k, 2] == z and out[k, 1] == y and x <= end:
            if x + length > end:
                end = x + length
                out[k, 3] = end - out[k, 0]
            continue
        k += 1
        out[k, 0], out[k, 1], out[k, 2], out[k, 3] = x, y, z, length
        end = x + length
    return out[: k + 1]


# --------------------------------------------------------------------------- helpers


def _check_spans(spans: Any, name: str = "spans") -> NDArray[np.int64]:
    """Validate an (n, 4) integer span array; return it as C-contiguous int64."""
    if not isinstance(spans, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(spans).__name__}")
    if spans.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {spans.dtype}")
    if spans.ndim != 2 or spans.shape[1] != 4:
        raise ValueError(f"{name} must have shape (n, 4) (x, y, z, length), got {spans.shape}")
    s = np.ascontiguousarray(spans, dtype=np.int64)
    if s.shape[0] and bool((s[:, 3] <= 0).any()):
        i = int(np.flatnonzero(s[:, 3] <= 0)[0])
        raise ValueError(f"{name}[{i}] has length {int(s[i, 3])} <= 0")
    return s


def _check_triple(value: Any, name: str, *, positive: bool) -> tuple[int, int, int]:
    try:
        t = tuple(int(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be 3 integers (z, y, x), got {value!r}") from exc
    if len(t) != 3:
        raise ValueError(f"{name} must be 3 integers (z, y, x), got {value!r}")
    if positive and min(t) <= 0:
        raise ValueError(f"{name} must be positive, got {t}")
    return (t[0], t[1], t[2])


# --------------------------------------------------------------------------- front ends


def parse_rles(data: bytes | bytearray | memoryview, headered: bool = True) -> NDArray[np.int32]:
    """Decode DVID RLE bytes into spans.

    Parameters
    ----------
    data : bytes-like
        Encoded spans.
    headered : bool
        True for the 12-byte-header form, False for spans only.

    Returns
    -------
    NDArray[int32], shape (n, 4)
        Columns ``(x, y, z, length)``.

    Raises
    ------
    ValueError
        Buffer too short for the header, bad header bytes, payload length not
        ``16 * n_spans`` (headered) or not a multiple of 16 (headerless), a
        length <= 0, or a negative coordinate.
    """
    buf = memoryview(data).cast("B")
    if headered:
        if len(buf) < _HEADER_BYTES:
            raise ValueError(
                f"RLE buffer too short for the {_HEADER_BYTES}-byte header: {len(buf)} bytes"
            )
        if buf[0] != 0 or buf[1] != 3:
            raise ValueError(
                f"bad RLE header: expected bytes 0x00 0x03 (3 dimensions), "
                f"got 0x{buf[0]:02x} 0x{buf[1]:02x}"
            )
        n_spans = int(np.frombuffer(buf[8:12], dtype="<u4")[0])
        payload = buf[_HEADER_BYTES:]
        if len(payload) != _SPAN_BYTES * n_spans:
            raise ValueError(
                f"RLE payload is {len(payload)} bytes, expected 16 * n_spans = "
                f"{_SPAN_BYTES * n_spans} for n_spans = {n_spans}"
            )
    else:
        payload = buf
        if len(payload) % _SPAN_BYTES:
            raise ValueError(
                f"headerless RLE length {len(payload)} is not a multiple of {_SPAN_BYTES} bytes"
            )
    spans = np.frombuffer(payload, dtype=_SPAN_DTYPE).reshape(-1, 4).astype(np.int32)
    if spans.shape[0]:
        bad = spans[:, 3] <= 0
        if bool(bad.any()):
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"RLE span {i} has length {int(spans[i, 3])} <= 0")
        neg = (spans[:, :3] < 0).any(axis=1)
        if bool(neg.any()):
            i = int(np.flatnonzero(neg)[0])
            x, y, z = (int(v) for v in spans[i, :3])
            raise ValueError(f"RLE span {i} has a negative coordinate (x={x}, y={y}, z={z})")
    return spans


def encode_rles(spans: NDArray[np.integer[Any]], headered: bool = True) -> bytes:
    """Encode spans in DVID's RLE binary format.

    Parameters
    ----------
    spans : NDArray[integer], shape (n, 4)
        Columns ``(x, y, z, length)``; every value must fit int32, lengths > 0.
    headered : bool
        Prepend the 12-byte header (voxel count = sum of lengths, modulo 2**32
        as in DVID's uint32 field; span count).

    Returns
    -------
    bytes
    """
    s = _check_spans(spans)
    if s.size and (int(s.min()) < -(2**31) or int(s.max()) > _INT32_MAX):
        raise ValueError("spans: values must fit int32")
    body = s.astype(_SPAN_DTYPE).tobytes()
    if not headered:
        return body
    if s.shape[0] > 2**32 - 1:
        raise ValueError(f"too many spans for the RLE header: {s.shape[0]}")
    voxels = rles_voxel_count(s) % 2**32
    header = bytes([0, 3, 0, 0]) + np.array([voxels, s.shape[0]], dtype="<u4").tobytes()
    return header + body


def check_rles_in_bounds(spans: NDArray[np.integer[Any]], shape_zyx: ArrayLike) -> None:
    """Raise if any span leaves the volume ``[0, shape)``.

    Parameters
    ----------
    spans : NDArray[integer], shape (n, 4)
        Columns ``(x, y, z, length)``.
    shape_zyx : 3 ints
        Volume shape ``(Z, Y, X)``.

    Raises
    ------
    ValueError
        Naming the first span (index and values) not inside the volume.
    """
    s = _check_spans(spans)
    z, y, x = _check_triple(shape_zyx, "shape_zyx", positive=False)
    if s.shape[0] == 0:
        return
    bad = (
        (s[:, 0] < 0)
        | (s[:, 1] < 0)
        | (s[:, 2] < 0)
        | (s[:, 0] + s[:, 3] > x)
        | (s[:, 1] >= y)
        | (s[:, 2] >= z)
    )
    if bool(bad.any()):
        i = int(np.flatnonzero(bad)[0])
        sx, sy, sz, sl = (int(v) for v in s[i])
        raise ValueError(
            f"RLE span {i} (x={sx}, y={sy}, z={sz}, length={sl}) is outside the volume "
            f"of shape (z, y, x) = {(z, y, x)}"
        )


def rles_to_mask(
    spans: NDArray[np.integer[Any]], offset_zyx: ArrayLike, shape_zyx: ArrayLike
) -> NDArray[np.bool_]:
    """Rasterise the spans inside the box ``[offset, offset + shape)``.

    Spans are clipped to the box; spans outside it are ignored.

    Parameters
    ----------
    spans : NDArray[integer], shape (n, 4)
        Columns ``(x, y, z, length)``, global coordinates.
    offset_zyx : 3 ints
        Global coordinate of the box's first voxel.
    shape_zyx : 3 positive ints
        Box shape ``(Z, Y, X)``.

    Returns
    -------
    NDArray[bool], shape ``shape_zyx``
    """
    s = _check_spans(spans)
    oz, oy, ox = _check_triple(offset_zyx, "offset_zyx", positive=False)
    shape = _check_triple(shape_zyx, "shape_zyx", positive=True)
    mask = np.zeros(shape, dtype=np.bool_)
    if s.shape[0]:
        _rles_to_mask_kernel(s, oz, oy, ox, mask)
    return mask


def rles_cover_box(
    spans: NDArray[np.integer[Any]], offset_zyx: ArrayLike, shape_zyx: ArrayLike
) -> bool:
    """Whether the spans cover every voxel of the box ``[offset, offset + shape)``.

    Parameters
    ----------
    spans : NDArray[integer], shape (n, 4)
        Columns ``(x, y, z, length)``, global coordinates; any order, may overlap.
    offset_zyx : 3 ints
        Global coordinate of the box's first voxel.
    shape_zyx : 3 positive ints
        Box shape ``(Z, Y, X)``.

    Returns
    -------
    bool
        Exactly ``rles_to_mask(spans, offset_zyx, shape_zyx).all()``: found in
        one sweep over spans in (z, y, x) order (as canonical RLEs are), else
        by rasterising them.
    """
    s = _check_spans(spans)
    oz, oy, ox = _check_triple(offset_zyx, "offset_zyx", positive=False)
    nz, ny, nx = _check_triple(shape_zyx, "shape_zyx", positive=True)
    swept = _cover_sorted_kernel(s, oz, oy, ox, nz, ny, nx)
    if swept >= 0:
        return swept == 1
    return bool(rles_to_mask(s, (oz, oy, ox), (nz, ny, nx)).all())


def mask_to_rles(mask: NDArray[np.bool_], offset_zyx: ArrayLike = (0, 0, 0)) -> NDArray[np.int32]:
    """Encode a mask as maximal runs along x.

    Parameters
    ----------
    mask : NDArray[bool], shape (Z, Y, X)
        Any layout.
    offset_zyx : 3 ints
        Global coordinate of ``mask[0, 0, 0]``; added to the span coordinates.

    Returns
    -------
    NDArray[int32], shape (n, 4)
        Columns ``(x, y, z, length)``, ordered by z, then y, then x.

    Raises
    ------
    ValueError
        Coordinates do not fit int32.
    """
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a numpy.ndarray, got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must have dtype bool, got {mask.dtype}")
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3D (z, y, x), got ndim={mask.ndim}")
    oz, oy, ox = _check_triple(offset_zyx, "offset_zyx", positive=False)
    for o, n, axis in (
        (oz, mask.shape[0], "z"),
        (oy, mask.shape[1], "y"),
        (ox, mask.shape[2], "x"),
    ):
        if o < -(2**31) or o + n > _INT32_MAX:
            raise ValueError(f"offset_zyx: {axis} coordinates do not fit int32")
    if mask.size == 0:
        return np.zeros((0, 4), dtype=np.int32)
    nz, ny, nx = mask.shape
    flat = np.ascontiguousarray(mask).reshape(-1)
    if nx % 8 or flat.ctypes.data % 8:
        rows = np.zeros((nz, ny, nx + (-nx) % 8), np.bool_)  # whole, aligned words per row
        rows[:, :, :nx] = mask
        flat = rows.reshape(-1)
    words = flat.view(np.uint64)
    out = np.empty((_count_runs_kernel(words, nz * ny), 4), np.int32)  # (the values fit: checked)
    _write_runs_kernel(words, nz * ny, ny, oz, oy, ox, out)
    return out


def canonical_rles(spans: NDArray[np.integer[Any]]) -> NDArray[np.int32]:
    """The same voxels as canonical RLE: sorted by z, y, x, one span per maximal run.

    Parameters
    ----------
    spans : NDArray[integer], shape (n, 4)
        Columns ``(x, y, z, length)``, in any order; spans may overlap or touch.

    Returns
    -------
    NDArray[int32], shape (m, 4)
        ``m <= n`` spans, no two of which overlap or touch along x.

    Raises
    ------
    ValueError
        A length <= 0, or a merged run that does not fit int32.
    """
    s = _check_spans(spans)
    if s.shape[0] == 0:
        return np.zeros((0, 4), dtype=np.int32)
    order = np.lexsort((s[:, 0], s[:, 1], s[:, 2]))
    out = _merge_runs_kernel(np.ascontiguousarray(s[order]))
    if out.size and (out.min() < -(2**31) or out.max() > _INT32_MAX):
        raise ValueError("spans: a coordinate or a merged run length does not fit int32")
    return out.astype(np.int32)


def rles_by_block(
    spans: NDArray[np.integer[Any]], block_size_zyx: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The spans grouped by the blocks they touch.

    Parameters
    ----------
    spans : NDArray[integer], shape (n, 4)
        Columns ``(x, y, z, length)``.
    block_size_zyx : 3 positive ints
        Block shape ``(BZ, BY, BX)``.

    Returns
    -------
    coords : NDArray[int64], shape (m, 3)
        The touched blocks ``(z, y, x)`` (voxel // block size, floor division),
        sorted lexicographically, without repeats.  A span crossing block
        boundaries along x touches several blocks.
    starts : NDArray[int64], shape (m + 1,)
        Block ``coords[j]`` is touched by the spans ``grouped[starts[j]:starts[j + 1]]``.
    grouped : NDArray[int64], shape (p, 4)
        The spans (not clipped) per block, in input order within each block;
        ``p`` is the number of (span, block) pairs.

    Raises
    ------
    ValueError
        A length <= 0, or a value that does not fit int32.
    """
    s = _check_spans(spans)
    bz, by, bx = _check_triple(block_size_zyx, "block_size_zyx", positive=True)
    if s.shape[0] == 0:
        return np.zeros((0, 3), np.int64), np.zeros(1, np.int64), np.zeros((0, 4), np.int64)
    if int(s.min()) < -(2**31) or int(s.max()) > _INT32_MAX:
        raise ValueError("spans: a value does not fit int32 (DVID's RLE values are int32)")
    return _by_block_kernel(s, bz, by, bx)


def rles_voxel_count(spans: NDArray[np.integer[Any]]) -> int:
    """Total number of voxels of the spans (sum of lengths).

    Parameters
    ----------
    spans : NDArray[integer], shape (n, 4)
        Columns ``(x, y, z, length)``.

    Returns
    -------
    int
    """
    s = _check_spans(spans)
    return int(s[:, 3].sum())
