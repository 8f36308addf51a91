"""The 3D volumes of any HDF5 file: listed, and read lazily block by block.

What the napari reader and the import dialog need of a file that is not (or
not only) a segmend pyramid, without holding it open: every function opens
the file, reads, and closes it again; a :class:`VolumeArray` opens it once per
read, reads whole blocks with the pyramids' block reader
(:func:`app.model.storage.block_io.read_stored`) and keeps them in a bounded
:class:`~app.model.storage.cache.BlockCache`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from app.model.errors import FormatError
from app.model.geometry import Coord, assemble_region, index_box, normalise_index
from app.model.storage.arrays import ArrayView
from app.model.storage.block_io import read_stored
from app.model.storage.cache import BlockCache
from app.model.storage.layout import DEFAULT_BLOCK_SIZE, find_pyramids, is_image_dtype, labels_first
from app.model.storage.levels import Level
from app.model.storage.pyramid_file import open_h5

VOLUME_CACHE_BYTES = 64 << 20
"""Bytes of decoded blocks a :class:`VolumeArray` keeps."""


@dataclass(frozen=True)
class VolumeInfo:
    """One 3D dataset of an HDF5 file."""

    name: str
    """Its absolute path inside the file, e.g. ``/seg/labels``."""
    shape: tuple[int, int, int]
    dtype: np.dtype[Any]
    block_size: tuple[int, int, int]
    """Its chunk shape (the default block size if it is not chunked)."""

    def describe(self) -> str:
        """``"250x250x250 uint64"``."""
        return f"{'x'.join(map(str, self.shape))} {self.dtype}"


def is_hdf5_file(path: str | Path) -> bool:
    """True if ``path`` is a readable HDF5 file (False, not an error, otherwise)."""
    try:
        return Path(path).is_file() and bool(h5py.is_hdf5(path))
    except OSError:
        return False


def holds_pyramid(path: str | Path) -> bool:
    """True if the HDF5 file holds a pyramid (segmend's, or another tool's).

    Raises
    ------
    app.model.errors.FormatError
        If the file cannot be opened.
    """
    with open_h5(path, "r") as f:
        try:
            find_pyramids(f)
        except FormatError:
            return False
    return True


def list_volumes(path: str | Path) -> list[VolumeInfo]:
    """Every 3D dataset of an HDF5 file, in HDF5's visiting order.

    Raises
    ------
    app.model.errors.FormatError
        If the file cannot be opened.
    """
    found: list[VolumeInfo] = []
    with open_h5(path, "r") as f:

        def visit(_name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset) and obj.ndim == 3:
                found.append(_info(obj))

        f.visititems(visit)
    return found


def label_volumes(volumes: list[VolumeInfo]) -> list[VolumeInfo]:
    """The label volumes among ``volumes``, best first (see
    :func:`app.model.storage.layout.labels_first`)."""
    return labels_first(volumes, lambda v: v.name, lambda v: v.dtype)


def image_volumes(volumes: list[VolumeInfo], labels: VolumeInfo | None = None
                  ) -> list[VolumeInfo]:
    """The volumes that can be grayscale (uint8 or uint16), in order, but the
    one chosen as ``labels``."""
    return [v for v in volumes if is_image_dtype(v.dtype) and v != labels]


class VolumeArray(ArrayView):
    """A read-only, NumPy-style view of one 3D dataset of an HDF5 file.

    Indexing reads the blocks (the dataset's chunks) that the index touches,
    through a bounded block cache; the file is open only during a read.
    Supports integers, slices (non-negative steps) and Ellipsis.

    Parameters
    ----------
    path : str or Path
        The HDF5 file.
    info : VolumeInfo
        The dataset (see :func:`list_volumes`).
    """

    scale = 0
    """A plain volume is one level."""

    def __init__(self, path: str | Path, info: VolumeInfo) -> None:
        self.path = Path(path)
        self.info = info
        self.kind = info.name
        """The dataset's HDF5 path: its name among a file's volumes."""
        self._cache: BlockCache[NDArray[Any]] = BlockCache(VOLUME_CACHE_BYTES)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel shape (z, y, x)."""
        return self.info.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """Element type."""
        return self.info.dtype

    def __repr__(self) -> str:
        return (f"VolumeArray({self.path.name}:{self.info.name}, shape={self.shape}, "
                f"dtype={self.dtype})")

    def _read_all(self) -> NDArray[Any]:
        return self[...]

    def __getitem__(self, key: Any) -> NDArray[Any]:
        start, stop, picks = index_box(normalise_index(key, self.shape))
        if any(e <= a for a, e in zip(start, stop, strict=True)):  # nothing to read
            return np.zeros([max(0, e - a) for a, e in zip(start, stop, strict=True)],
                            self.dtype)[picks]
        with open_h5(self.path, "r") as f:
            level = self._level(f)
            out, _missing = assemble_region(start, stop, self.info.block_size, self.dtype,
                                            lambda coord: self._block(level, coord))
        return out[picks]

    def cached_block(self, coord: Coord) -> NDArray[Any] | None:
        """Block ``coord`` if the cache holds it, else None (never reads the file)."""
        return self._cache.get(coord)

    def read_block(self, coord: Coord) -> NDArray[Any]:
        """Block ``coord`` (clipped to the volume), read into the cache if missing."""
        block = self._cache.get(coord)
        if block is None:
            with open_h5(self.path, "r") as f:
                block = self._block(self._level(f), coord)
        return block

    def _level(self, f: h5py.File) -> Level:
        return Level.of(self.info.name, 0, f[self.info.name], self.info.block_size)

    def _block(self, level: Level, coord: Coord) -> NDArray[Any]:
        """Block ``coord`` (clipped to the volume), from the cache or the open file."""
        block = self._cache.get(coord)
        if block is None:
            block = read_stored(level, coord)
            self._cache.put(coord, block)
        return block


class VolumeSource:
    """The blocks of some plain volumes of one file, by volume name: what a
    background block loader reads (the same calls as a dataset's, one scale).

    Parameters
    ----------
    arrays : iterable of VolumeArray
        The volumes (their ``kind`` is their HDF5 path).
    """

    def __init__(self, arrays: Iterable[VolumeArray]) -> None:
        self.arrays = {a.kind: a for a in arrays}

    def cached_block(self, kind: str, scale: int, coord: Coord) -> NDArray[Any] | None:
        """Block ``coord`` of volume ``kind`` if in memory, else None (``scale`` is 0)."""
        return self.arrays[kind].cached_block(coord)

    def read_block(self, kind: str, scale: int, coord: Coord) -> NDArray[Any]:
        """Block ``coord`` of volume ``kind``, read into memory if missing."""
        return self.arrays[kind].read_block(coord)


def _info(dataset: h5py.Dataset) -> VolumeInfo:
    shape = tuple(int(s) for s in dataset.shape)
    chunks = dataset.chunks or DEFAULT_BLOCK_SIZE
    return VolumeInfo(str(dataset.name), shape, np.dtype(dataset.dtype),  # type: ignore[arg-type]
                      tuple(int(c) for c in chunks))  # type: ignore[arg-type]


__all__ = ["VolumeArray", "VolumeInfo", "VolumeSource", "holds_pyramid", "image_volumes",
           "is_hdf5_file", "label_volumes", "list_volumes"]
