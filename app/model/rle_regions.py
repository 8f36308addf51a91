"""Split regions as DVID RLEs: from a box or a mask, checked against a volume,
written to a file in the binary form ``segmend split --rles`` reads
(:func:`app.kernels.rle.encode_rles`, headered)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels.rle import canonical_rles, encode_rles, mask_to_rles
from app.model.bulk.partials import partial_path
from app.model.errors import SegmendError

__all__ = ["Box", "box_spans", "load_mask", "mask_spans", "write_rle_file"]

Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
"""A box of s0 voxels ``((z0, z1), (y0, y1), (x0, x1))``, ends excluded."""


def box_spans(box: Box, shape: tuple[int, int, int]) -> NDArray[np.int32]:
    """The voxels of ``box`` as canonical spans.

    Parameters
    ----------
    box : Box
        ``((z0, z1), (y0, y1), (x0, x1))``, each ``0 <= start < end <= size``.
    shape : (int, int, int)
        The volume's s0 shape (z, y, x).

    Returns
    -------
    NDArray[int32], shape (n, 4)
        ``(x, y, z, length)`` rows, one per (z, y) row of the box, sorted by z, y.

    Raises
    ------
    SegmendError
        An empty box, or one not inside the volume.
    """
    for axis, (start, end), size in zip("zyx", box, shape, strict=True):
        if not 0 <= start < end <= size:
            raise SegmendError(
                f"box {_box_text(box)} is not inside the volume of shape (z, y, x) = "
                f"{tuple(shape)}: {axis} must run within 0:{size} and not be empty"
            )
    (z0, z1), (y0, y1), (x0, x1) = box
    zz, yy = np.meshgrid(np.arange(z0, z1), np.arange(y0, y1), indexing="ij")
    n = zz.size
    spans = np.column_stack(
        [np.full(n, x0), yy.ravel(), zz.ravel(), np.full(n, x1 - x0)]
    ).astype(np.int64)
    return canonical_rles(spans)


def _box_text(box: Box) -> str:
    return ",".join(f"{a}:{b}" for a, b in box)


def load_mask(path: str | Path) -> NDArray[np.bool_]:
    """A mask saved with :func:`numpy.save`: a 3D boolean (or integer: nonzero is
    inside) array (z, y, x); SegmendError naming the file otherwise."""
    try:
        mask = np.load(path, allow_pickle=False)
    except OSError as exc:
        raise SegmendError(f"cannot read mask {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise SegmendError(f"{path} is not a .npy array: {exc}") from exc
    if not isinstance(mask, np.ndarray):
        raise SegmendError(f"{path} holds several arrays (.npz); give one mask as .npy")
    if mask.ndim != 3:
        raise SegmendError(f"mask {path} must be 3D (z, y, x), got {mask.ndim} dimensions")
    if mask.dtype != np.bool_ and mask.dtype.kind not in "iu":
        raise SegmendError(f"mask {path} must be boolean or integer, got {mask.dtype}")
    mask = mask.astype(np.bool_, copy=False)
    if not mask.any():
        raise SegmendError(f"mask {path} is empty (no True voxel)")
    return mask


def mask_spans(
    mask: NDArray[Any], offset: tuple[int, int, int], shape: tuple[int, int, int]
) -> NDArray[np.int32]:
    """The True voxels of ``mask`` (bool, z y x), its first voxel at s0 ``offset``,
    as canonical spans ``(x, y, z, length)`` (int32, (n, 4)).

    Raises
    ------
    SegmendError
        A mask that is not 3D, holds no True voxel, or is not inside the volume
        of ``shape`` (z, y, x) at ``offset``.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise SegmendError(f"the mask must be 3D (z, y, x), got {mask.ndim} dimensions")
    if not mask.any():
        raise SegmendError("the mask is empty (no True voxel)")
    ends = [o + s for o, s in zip(offset, mask.shape, strict=True)]
    if min(offset) < 0 or any(e > s for e, s in zip(ends, shape, strict=True)):
        raise SegmendError(
            f"a mask of shape {mask.shape} at offset {tuple(offset)} is not inside the volume "
            f"of shape (z, y, x) = {tuple(shape)}"
        )
    spans = mask_to_rles(np.ascontiguousarray(mask, dtype=np.bool_), offset)
    return canonical_rles(spans)


def write_rle_file(path: str | Path, spans: NDArray[np.integer[Any]]) -> int:
    """Write ``spans`` (n, 4) as DVID binary RLEs with their header; returns the
    bytes written.  Written under a temporary name beside ``path`` and renamed:
    ``path`` is whole or untouched."""
    data = encode_rles(spans, headered=True)
    tmp = partial_path(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, os.path.realpath(path))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SegmendError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return len(data)
