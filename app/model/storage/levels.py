"""The levels of a pyramid: each scale's HDF5 dataset (or another store's array),
shape and block grid."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import h5py
import numpy as np
from numpy.typing import NDArray

from app.model.errors import FormatError
from app.model.geometry import Coord
from app.model.storage.codec import BlockCodec
from app.model.storage.layout import IMAGE_GROUP, LABELS_GROUP

BlockKey = tuple[str, int, int, int, int]
"""(kind, scale, z, y, x) with kind ``"labels"`` or ``"image"``."""


class SlicedVolume(Protocol):
    """A 3D volume read by slicing (e.g. an OME-Zarr level:
    :class:`app.model.storage.ome_zarr_read.ZarrVolume`)."""

    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x)."""

    @property
    def dtype(self) -> np.dtype[Any]:
        """Element type."""

    @property
    def name(self) -> str:
        """Where the volume is, as errors name it."""

    def __getitem__(self, key: tuple[slice, slice, slice]) -> NDArray[Any]:
        """The voxels in a box, as a new array; FormatError if they cannot be read."""


@dataclass(frozen=True)
class Level:
    """One scale of one pyramid (labels or image).

    Attributes
    ----------
    kind : str
        ``"labels"`` or ``"image"``.
    scale : int
        0 is full resolution; scale k has shape ``ceil(shape_{k-1} / 2)``.
    dataset : h5py.Dataset or SlicedVolume
        The HDF5 dataset holding it, or (``codec`` None) a volume of another
        store, read by slicing.
    block_size : tuple of int
        Block (= chunk) shape (z, y, x).
    codec : BlockCodec or None
        Direct chunk codec, or None for HDF5's own slicing path.
    shape, dtype
        The dataset's, read once (asking HDF5 costs a call under h5py's lock).
    """

    kind: str
    scale: int
    dataset: h5py.Dataset | SlicedVolume
    block_size: tuple[int, int, int]
    codec: BlockCodec | None
    shape: tuple[int, int, int]
    dtype: np.dtype[Any]

    @classmethod
    def of(
        cls, kind: str, scale: int, dset: h5py.Dataset, block_size: tuple[int, int, int]
    ) -> Level:
        """The level stored in ``dset``, with a direct chunk codec if its chunks are
        exactly one block (clipped to the volume) and the codec can reproduce them."""
        codec = BlockCodec.for_dataset(dset)
        one_block = tuple(min(b, n) for b, n in zip(block_size, dset.shape, strict=True))
        if codec is not None and codec.chunk_shape != one_block:
            codec = None
        sz, sy, sx = (int(v) for v in dset.shape)
        return cls(kind, scale, dset, block_size, codec, (sz, sy, sx), np.dtype(dset.dtype))

    @classmethod
    def sliced(
        cls, kind: str, scale: int, volume: SlicedVolume, block_size: tuple[int, int, int]
    ) -> Level:
        """The level held by ``volume``, whose blocks are read by slicing it (no codec)."""
        return cls(kind, scale, volume, block_size, None, volume.shape, volume.dtype)

    @property
    def grid(self) -> tuple[int, int, int]:
        """Number of blocks per axis."""
        return tuple(-(-s // b) for s, b in zip(self.shape, self.block_size, strict=True))  # type: ignore[return-value]

    def block_slices(self, coord: Coord) -> tuple[slice, slice, slice]:
        """Voxel slices of block ``coord``, clipped to the volume."""
        return tuple(  # type: ignore[return-value]
            slice(c * b, min((c + 1) * b, s))
            for c, b, s in zip(coord, self.block_size, self.shape, strict=True)
        )

    def check_coord(self, coord: Coord) -> None:
        """Raise IndexError unless ``coord`` is a block of this level."""
        if len(coord) != 3 or any(not 0 <= c < g for c, g in zip(coord, self.grid, strict=True)):
            raise IndexError(
                f"block {tuple(coord)} is outside {self.kind}/s{self.scale} (grid {self.grid})"
            )

    def coords(self) -> Iterator[Coord]:
        """Every block coordinate, in z, y, x order."""
        gz, gy, gx = self.grid
        for z in range(gz):
            for y in range(gy):
                for x in range(gx):
                    yield (z, y, x)


def check_level_shapes(levels: Mapping[str, Sequence[Level]], filename: str) -> None:
    """Raise FormatError unless each scale halves the one below (rounding up) and
    the grayscale, if any, has the labels' shape.

    Parameters
    ----------
    levels : mapping
        ``"labels"`` and ``"image"`` → their levels, scale 0 first.
    filename : str
        The file, named in the error.
    """
    for kind, kind_levels in levels.items():
        for prev, nxt in itertools.pairwise(kind_levels):
            want = tuple(-(-s // 2) for s in prev.shape)
            if nxt.shape != want:
                raise FormatError(
                    f"{filename}: {kind} scale {nxt.scale} has shape {nxt.shape}, "
                    f"expected {want} (half of scale {prev.scale})"
                )
    image, labels = levels[IMAGE_GROUP], levels[LABELS_GROUP]
    if image and image[0].shape != labels[0].shape:
        raise FormatError(
            f"{filename}: grayscale shape {image[0].shape} differs from "
            f"labels shape {labels[0].shape}"
        )
