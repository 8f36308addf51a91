"""Split regions: DVID RLE spans (or a painted mask), bucketed by s0 block."""

from __future__ import annotations

import itertools
from concurrent.futures import Executor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels import check_rles_in_bounds, mask_to_rles, parse_rles, rles_by_block
from app.model.errors import InvalidMutationError
from app.model.geometry import Coord

_NO_SPANS = np.zeros((0, 4), np.int64)
_NO_SPANS.flags.writeable = False

_PARALLEL_MASK_VOXELS = 1 << 22
"""Masks of this many voxels or more are encoded in slabs on a pool."""
_MASK_SLABS = 4
"""The slabs (along z) a large mask is encoded in."""


class SplitRegion:
    """A set of s0 voxels given as runs along x.

    Parameters
    ----------
    spans : ndarray of int, shape (n, 4)
        Rows ``(x, y, z, length)`` in s0 voxel coordinates (DVID's RLE order).
    """

    def __init__(self, spans: NDArray[np.integer[Any]]) -> None:
        spans = np.asarray(spans)
        if spans.ndim != 2 or spans.shape[1] != 4:
            raise InvalidMutationError(
                f"split spans must have shape (n, 4) as (x, y, z, length), got {spans.shape}"
            )
        self.spans = _as_int64(spans)
        self._buckets: dict[Coord, NDArray[np.int64]] | None = None
        self._bucket_size: tuple[int, int, int] | None = None

    @classmethod
    def from_rle_bytes(cls, data: bytes) -> SplitRegion:
        """Parse DVID's binary RLEs (with header); InvalidMutationError on malformed input."""
        try:
            return cls(parse_rles(data))
        except ValueError as exc:
            raise InvalidMutationError(f"malformed RLEs: {exc}") from exc

    @classmethod
    def from_mask(
        cls,
        mask: NDArray[np.bool_],
        offset: tuple[int, int, int] = (0, 0, 0),
        pool: Executor | None = None,
    ) -> SplitRegion:
        """The True voxels of a boolean mask whose first voxel sits at s0 ``offset``
        (z, y, x); with a ``pool``, slabs of the mask are encoded on it at once."""
        mask = np.asarray(mask)
        if mask.ndim != 3 or mask.dtype != np.bool_:
            raise InvalidMutationError(
                f"a split mask must be a 3D boolean array, got {mask.dtype} with {mask.ndim} dims"
            )
        if any(int(o) < 0 for o in offset):
            raise InvalidMutationError(f"mask offset {tuple(offset)} is negative")
        mask = np.ascontiguousarray(mask)
        if pool is None or mask.shape[0] < 2 or mask.size < _PARALLEL_MASK_VOXELS:
            return cls(mask_to_rles(mask, offset))
        oz, oy, ox = (int(o) for o in offset)
        cuts = np.linspace(0, mask.shape[0], _MASK_SLABS + 1).astype(int)
        slabs = [
            pool.submit(mask_to_rles, mask[z0:z1], (oz + z0, oy, ox))
            for z0, z1 in itertools.pairwise(cuts.tolist())
            if z1 > z0
        ]
        return cls(np.concatenate([slab.result() for slab in slabs]))

    @property
    def voxel_count(self) -> int:
        """Voxels covered (spans are assumed not to overlap)."""
        return int(self.spans[:, 3].sum())

    def check_bounds(self, shape: tuple[int, int, int]) -> None:
        """Raise InvalidMutationError if empty, malformed or outside a volume of ``shape``."""
        if len(self.spans) == 0:
            raise InvalidMutationError("the split region is empty")
        if (self.spans[:, 3] <= 0).any():
            bad = self.spans[np.argmax(self.spans[:, 3] <= 0)]
            raise InvalidMutationError(f"span {tuple(int(v) for v in bad)} has a length <= 0")
        try:
            check_rles_in_bounds(self.spans, shape)
        except ValueError as exc:
            raise InvalidMutationError(f"split region out of bounds: {exc}") from exc

    def block_coords(self, block_size: tuple[int, int, int]) -> list[Coord]:
        """The s0 blocks the region touches, sorted."""
        return sorted(self._bucketed(block_size))

    def spans_in(self, coord: Coord, block_size: tuple[int, int, int]) -> NDArray[np.int64]:
        """The spans that touch block ``coord`` (``(n, 4)``, not clipped to it)."""
        return self._bucketed(block_size).get(coord, _NO_SPANS)

    def _bucketed(self, block_size: tuple[int, int, int]) -> dict[Coord, NDArray[np.int64]]:
        """The spans per block they touch (a span across blocks along x is in each)."""
        if self._buckets is not None and self._bucket_size == block_size:
            return self._buckets
        coords, starts, grouped = rles_by_block(self.spans, block_size)
        buckets = {
            (int(z), int(y), int(x)): grouped[start:end]
            for (z, y, x), start, end in zip(
                coords.tolist(), starts[:-1].tolist(), starts[1:].tolist(), strict=True
            )
        }
        self._buckets, self._bucket_size = buckets, block_size
        return buckets


_INT64 = np.iinfo(np.int64)


def _as_int64(spans: NDArray[Any]) -> NDArray[np.int64]:
    """``spans`` as int64; InvalidMutationError if they are not integers (never
    truncated) or do not fit."""
    if spans.dtype == np.object_:
        if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in spans.flat):
            raise InvalidMutationError("split spans must be integers")
    elif not np.issubdtype(spans.dtype, np.integer):
        raise InvalidMutationError(f"split spans must be integers, got {spans.dtype}")
    if spans.size:
        low, high = int(spans.min()), int(spans.max())
        for value in (low, high):
            if not _INT64.min <= value <= _INT64.max:
                raise InvalidMutationError(f"split span value {value} is out of the int64 range")
    return spans.astype(np.int64)
