"""Plain NumPy/Python reference implementations of every kernel.

Used by the tests (exact equality) and by the benchmarks. They favour clarity
over speed: they follow the specification literally and share no code with the
Numba kernels. None of them modifies its inputs.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "canonical_rles_ref",
    "count_equal_ref",
    "count_in_ref",
    "downsample_image_ref",
    "downsample_labels_ref",
    "element_positions_json_ref",
    "encode_rles_ref",
    "label_counts_ref",
    "map_block_ref",
    "mask_to_rles_ref",
    "parse_rles_ref",
    "relabel_ref",
    "remap_ref",
    "rles_by_block_ref",
    "rles_cover_box_ref",
    "rles_to_mask_ref",
    "rles_voxel_count_ref",
    "split_index_ref",
    "vote_ref",
]


def _ints(values: ArrayLike) -> list[int]:
    """Python ints of a 1D array or sequence (never through float64)."""
    if isinstance(values, np.ndarray):
        return [int(v) for v in values.ravel().tolist()]
    return [int(v) for v in values]  # type: ignore[arg-type, union-attr]


# --------------------------------------------------------------------------- downsampling


def vote_ref(values: list[int], rule: str = "labelmap") -> int:
    """Winner of one group of label values under ``rule`` (see SPEC §2).

    Parameters
    ----------
    values : list of int
        The 1 to 8 labels of the group that lie inside the volume.
    rule : {"labelmap", "labelblk"}

    Returns
    -------
    int
    """
    counts = Counter(values)
    if rule == "labelmap":
        counts.pop(0, None)
        if not counts:
            return 0
        most = max(counts.values())
        return min(label for label, c in counts.items() if c == most)
    if rule == "labelblk":
        most = max(counts.values())
        return max(label for label, c in counts.items() if c == most)
    raise ValueError(f"unknown rule {rule!r}")


def downsample_labels_ref(vol: NDArray[Any], rule: str = "labelmap") -> NDArray[Any]:
    """2x2x2 label downsampling, one group at a time.

    Parameters
    ----------
    vol : NDArray[unsigned int], shape (Z, Y, X)
    rule : {"labelmap", "labelblk"}

    Returns
    -------
    NDArray, shape (ceil(Z/2), ceil(Y/2), ceil(X/2)), dtype of ``vol``
    """
    nz, ny, nx = vol.shape
    out = np.zeros(((nz + 1) // 2, (ny + 1) // 2, (nx + 1) // 2), dtype=vol.dtype)
    for oz in range(out.shape[0]):
        for oy in range(out.shape[1]):
            for ox in range(out.shape[2]):
                group = vol[2 * oz : 2 * oz + 2, 2 * oy : 2 * oy + 2, 2 * ox : 2 * ox + 2]
                out[oz, oy, ox] = vote_ref([int(v) for v in group.ravel()], rule)
    return out


def downsample_image_ref(vol: NDArray[Any]) -> NDArray[Any]:
    """2x2x2 mean of a grayscale volume, ``(sum + n // 2) // n`` per group.

    ``n`` is the number of voxels of the group inside the volume.

    Parameters
    ----------
    vol : NDArray[uint8 | uint16], shape (Z, Y, X)

    Returns
    -------
    NDArray, shape (ceil(Z/2), ceil(Y/2), ceil(X/2)), dtype of ``vol``
    """
    nz, ny, nx = vol.shape
    oshape = ((nz + 1) // 2, (ny + 1) // 2, (nx + 1) // 2)
    total = np.zeros(oshape, dtype=np.int64)
    n = np.zeros(oshape, dtype=np.int64)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                part = vol[dz::2, dy::2, dx::2].astype(np.int64)
                sz, sy, sx = part.shape
                total[:sz, :sy, :sx] += part
                n[:sz, :sy, :sx] += 1
    return ((total + n // 2) // n).astype(vol.dtype)


# --------------------------------------------------------------------------- relabelling


def relabel_ref(block: NDArray[Any], labels: ArrayLike, target: int) -> tuple[NDArray[Any], int]:
    """Copy of ``block`` with voxels in ``labels`` set to ``target``, and the
    number of voxels whose value changed."""
    wanted = set(_ints(labels))
    flat = [int(v) for v in block.ravel().tolist()]
    new = [target if v in wanted else v for v in flat]
    changed = sum(1 for a, b in zip(flat, new, strict=True) if a != b)
    return np.array(new, dtype=block.dtype).reshape(block.shape), changed


def remap_ref(block: NDArray[Any], keys: ArrayLike, values: ArrayLike) -> tuple[NDArray[Any], int]:
    """Copy of ``block`` with ``keys[i]`` replaced by ``values[i]``, and the
    number of voxels whose value changed."""
    mapping = dict(zip(_ints(keys), _ints(values), strict=True))
    flat = [int(v) for v in block.ravel().tolist()]
    new = [mapping.get(v, v) for v in flat]
    changed = sum(1 for a, b in zip(flat, new, strict=True) if a != b)
    return np.array(new, dtype=block.dtype).reshape(block.shape), changed


def relabel_indexed_ref(
    block: NDArray[Any], labels: ArrayLike, target: int
) -> tuple[NDArray[Any], NDArray[np.int64], int]:
    """Reference of :func:`app.kernels.relabel.relabel_indexed`: the relabelled
    copy, the 1-based index of each voxel's label in ``labels`` (0 if absent),
    and the number of voxels changed."""
    position = {v: k + 1 for k, v in enumerate(_ints(labels))}
    flat = [int(v) for v in block.ravel().tolist()]
    index = [position.get(v, 0) for v in flat]
    new = [target if k else v for v, k in zip(flat, index, strict=True)]
    return (
        np.array(new, dtype=block.dtype).reshape(block.shape),
        np.array(index, dtype=np.int64).reshape(block.shape),
        sum(1 for k in index if k),
    )


def palettize_ref(block: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.int64], NDArray[np.int64]]:
    """Reference of :func:`app.kernels.palette.palettize`: distinct values in
    order of first appearance (C order), each voxel's entry, and the voxels per
    entry."""
    entries: dict[int, int] = {}
    index = [entries.setdefault(int(v), len(entries)) for v in block.ravel().tolist()]
    counts = [0] * len(entries)
    for k in index:
        counts[k] += 1
    return (
        np.array(list(entries), dtype=block.dtype),
        np.array(index, dtype=np.int64).reshape(block.shape),
        np.array(counts, dtype=np.int64),
    )


def split_index_ref(
    index: NDArray[Any], hit: NDArray[np.bool_], spans: NDArray[Any], offset_zyx: Any
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Reference of :func:`app.kernels.palette.split_index`: ``index`` (as
    int64) with the voxels inside ``spans`` whose entry is ``hit`` set to entry
    ``len(hit)``, and the voxels moved from each entry."""
    inside = rles_to_mask_ref(spans, offset_zyx, index.shape)
    flat = [int(v) for v in index.ravel().tolist()]
    moves = [bool(m) and bool(hit[e]) for e, m in zip(flat, inside.ravel().tolist(), strict=True)]
    moved = [0] * hit.size
    for e, m in zip(flat, moves, strict=True):
        moved[e] += m
    out = [hit.size if m else e for e, m in zip(flat, moves, strict=True)]
    return (
        np.array(out, dtype=np.int64).reshape(index.shape),
        np.array(moved, dtype=np.int64),
    )


# --------------------------------------------------------------------------- counting


def label_counts_ref(block: NDArray[Any]) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """``np.unique(block, return_counts=True)`` as (uint64 labels, int64 counts)."""
    u, c = np.unique(block, return_counts=True)
    return u.astype(np.uint64), c.astype(np.int64)


def count_equal_ref(block: NDArray[Any], label: int) -> int:
    """Number of voxels equal to ``label``."""
    return sum(1 for v in block.ravel().tolist() if int(v) == int(label))


def count_in_ref(block: NDArray[Any], labels: ArrayLike) -> NDArray[np.int64]:
    """Number of voxels equal to each of ``labels``, in the order given."""
    counts = Counter(int(v) for v in block.ravel().tolist())
    return np.array([counts.get(v, 0) for v in _ints(labels)], dtype=np.int64)


# --------------------------------------------------------------------------- RLE


def parse_rles_ref(data: bytes, headered: bool = True) -> NDArray[np.int32]:
    """Decode DVID RLE bytes with ``struct`` (no validation beyond sizes)."""
    if headered:
        n = struct.unpack_from("<I", data, 8)[0]
        body = data[12 : 12 + 16 * n]
    else:
        body = data
    rows = [struct.unpack_from("<4i", body, 16 * i) for i in range(len(body) // 16)]
    return np.array(rows, dtype=np.int32).reshape(-1, 4)


def encode_rles_ref(spans: NDArray[Any], headered: bool = True) -> bytes:
    """Encode spans with ``struct``."""
    rows = [tuple(int(v) for v in row) for row in np.asarray(spans).reshape(-1, 4)]
    body = b"".join(struct.pack("<4i", *row) for row in rows)
    if not headered:
        return body
    voxels = sum(row[3] for row in rows) % 2**32
    return bytes([0, 3, 0, 0]) + struct.pack("<II", voxels, len(rows)) + body


def rles_to_mask_ref(
    spans: NDArray[Any], offset_zyx: tuple[int, int, int], shape_zyx: tuple[int, int, int]
) -> NDArray[np.bool_]:
    """Rasterise spans voxel by voxel, keeping those inside the box."""
    mask = np.zeros(shape_zyx, dtype=np.bool_)
    oz, oy, ox = offset_zyx
    for x, y, z, length in np.asarray(spans).reshape(-1, 4).tolist():
        for xx in range(x, x + length):
            lz, ly, lx = z - oz, y - oy, xx - ox
            if 0 <= lz < shape_zyx[0] and 0 <= ly < shape_zyx[1] and 0 <= lx < shape_zyx[2]:
                mask[lz, ly, lx] = True
    return mask


def rles_cover_box_ref(
    spans: NDArray[Any], offset_zyx: tuple[int, int, int], shape_zyx: tuple[int, int, int]
) -> bool:
    """Whether the spans, rasterised voxel by voxel, fill the box."""
    return bool(rles_to_mask_ref(spans, offset_zyx, shape_zyx).all())


def map_block_ref(
    block: NDArray[Any],
    svs: NDArray[np.uint64],
    bodies: NDArray[np.uint64],
    overlay: tuple[NDArray[np.uint64], NDArray[np.uint64]] | None = None,
) -> NDArray[np.uint64]:
    """Each supervoxel's body by ``np.searchsorted``: the overlay table's (its
    non-zero keys), else the mapping's (unmapped ones: themselves)."""
    flat = np.asarray(block).astype(np.uint64)
    out = _searched(flat, flat, svs, bodies)
    if overlay is not None:
        keys, values = overlay
        used = keys != 0
        order = np.argsort(keys[used])
        out = _searched(flat, out, keys[used][order], values[used][order])
    return out


def _searched(
    keys: NDArray[np.uint64], default: NDArray[np.uint64],
    svs: NDArray[np.uint64], bodies: NDArray[np.uint64],
) -> NDArray[np.uint64]:
    """``bodies`` where ``keys`` are in ``svs``, else ``default``."""
    if svs.size == 0:
        return default.copy()
    pos = np.minimum(np.searchsorted(svs, keys), svs.size - 1)
    return np.where(svs[pos] == keys, bodies[pos], default).astype(np.uint64)


def mask_to_rles_ref(
    mask: NDArray[np.bool_], offset_zyx: tuple[int, int, int] = (0, 0, 0)
) -> NDArray[np.int32]:
    """Maximal x-runs of ``mask``, ordered by z, y, x, in global coordinates."""
    oz, oy, ox = offset_zyx
    rows: list[tuple[int, int, int, int]] = []
    for z in range(mask.shape[0]):
        for y in range(mask.shape[1]):
            line = mask[z, y].tolist()
            x = 0
            while x < len(line):
                if line[x]:
                    start = x
                    while x < len(line) and line[x]:
                        x += 1
                    rows.append((start + ox, y + oy, z + oz, x - start))
                else:
                    x += 1
    return np.array(rows, dtype=np.int32).reshape(-1, 4)


def rles_by_block_ref(
    spans: NDArray[Any], block_size_zyx: tuple[int, int, int]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Every voxel's block, per span: the sorted blocks, bucket starts and spans
    per bucket (in input order) of :func:`app.kernels.rles_by_block`."""
    bz, by, bx = block_size_zyx
    buckets: dict[tuple[int, int, int], list[list[int]]] = {}
    for x, y, z, length in np.asarray(spans).reshape(-1, 4).tolist():
        for block in sorted({(z // bz, y // by, xx // bx) for xx in range(x, x + length)}):
            buckets.setdefault(block, []).append([x, y, z, length])
    coords = sorted(buckets)
    grouped = [span for c in coords for span in buckets[c]]
    starts = np.cumsum([0] + [len(buckets[c]) for c in coords])
    return (
        np.array(coords, np.int64).reshape(-1, 3),
        starts.astype(np.int64),
        np.array(grouped, np.int64).reshape(-1, 4),
    )


def rles_voxel_count_ref(spans: NDArray[Any]) -> int:
    """Sum of the span lengths."""
    return sum(int(row[3]) for row in np.asarray(spans).reshape(-1, 4).tolist())


def canonical_rles_ref(spans: NDArray[Any]) -> NDArray[np.int32]:
    """The set of voxels of the spans, as maximal x-runs sorted by z, y, x."""
    voxels = sorted(
        (z, y, xx)
        for x, y, z, length in np.asarray(spans).reshape(-1, 4).tolist()
        for xx in range(x, x + length)
    )
    rows: list[list[int]] = []
    for z, y, x in voxels:
        if rows and rows[-1][2] == z and rows[-1][1] == y and rows[-1][0] + rows[-1][3] >= x:
            rows[-1][3] = max(rows[-1][3], x - rows[-1][0] + 1)
        else:
            rows.append([x, y, z, 1])
    return np.array(rows, dtype=np.int32).reshape(-1, 4)


# --------------------------------------------------------------------------- element text


def element_positions_json_ref(labels: ArrayLike, kinds: ArrayLike, pos: ArrayLike,
                               kind_names: tuple[str, ...]) -> str:
    """Go's JSON of ``[]ElementPos``: one ``{"Label","Kind","Pos"}`` object per
    element, ``null`` for none (Python's ``json`` module, compact)."""
    items = [{"Label": label, "Kind": kind_names[kind], "Pos": p}
             for label, kind, p in zip(_ints(labels), _ints(kinds),
                                       np.asarray(pos).reshape(-1, 3).tolist(), strict=True)]
    return json.dumps(items or None, separators=(",", ":"))
