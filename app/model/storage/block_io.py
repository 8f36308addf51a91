"""Block I/O on one level: whole compressed chunks in and out of the HDF5 file.

Blocks move through HDF5 as whole compressed chunks (``read_direct_chunk`` /
``write_direct_chunk``), and are encoded and decoded by :mod:`app.model.storage.codec`
outside h5py's global lock, so several threads really decode in parallel.
Levels whose chunking or filters the codec cannot reproduce (files from other
tools) fall back to HDF5's own slicing path; levels of other stores (OME-Zarr)
are read by slicing them too.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from app.model.errors import FormatError
from app.model.geometry import Coord
from app.model.storage.levels import Level


def read_stored(level: Level, coord: Coord, scratch: NDArray[Any] | None = None) -> NDArray[Any]:
    """Block ``coord`` as the file holds it (clipped shape, the level's dtype).

    Decoded into ``scratch`` (a full chunk) if given; the fill value if the
    block was never written.

    Raises
    ------
    app.model.errors.FormatError
        If HDF5 cannot read the block or its payload is corrupt.
    """
    slices = level.block_slices(coord)
    if level.codec is None:
        try:
            return np.ascontiguousarray(level.dataset[slices])
        except OSError as exc:
            raise FormatError(_unreadable(level, coord, exc)) from exc
    try:
        payload = _read_chunk(level, coord)
    except _SkippedFilters:  # let HDF5 decode the odd chunk itself
        return np.ascontiguousarray(level.dataset[slices])
    except OSError as exc:
        raise FormatError(_unreadable(level, coord, exc)) from exc
    if payload is None:  # never written: the fill value
        return np.full(
            tuple(s.stop - s.start for s in slices), _hdf5(level).fillvalue, level.dtype
        )
    return decode(level, coord, payload, scratch)


def decode(
    level: Level, coord: Coord, payload: bytes, scratch: NDArray[Any] | None = None
) -> NDArray[Any]:
    """Decode an encoded chunk of a block to its clipped shape (a view of
    ``scratch``, a full chunk, if given).

    Raises
    ------
    app.model.errors.FormatError
        If the level is not stored block-wise, or the payload is corrupt.
    """
    name = f"{level.kind}/s{level.scale}"
    if level.codec is None:
        raise FormatError(f"{name} of {_filename(level)} is not stored block-wise")
    sl = level.block_slices(coord)
    try:
        full = level.codec.decode(payload, scratch)
    except Exception as exc:  # codec libraries raise assorted types on corrupt input
        raise FormatError(f"{_filename(level)}: {name} block {coord} is corrupt ({exc})") from exc
    return full[tuple(slice(0, s.stop - s.start) for s in sl)]


def encode(level: Level, coord: Coord, block: NDArray[Any]) -> bytes:
    """Compress ``block`` (clipped shape) as the full chunk the file stores.

    Raises
    ------
    ValueError
        If the block's shape or dtype does not match the level.
    app.model.errors.FormatError
        If the level is not stored block-wise.
    """
    name = f"{level.kind}/s{level.scale}"
    want = tuple(s.stop - s.start for s in level.block_slices(coord))
    if block.shape != want or block.dtype != level.dtype:
        raise ValueError(
            f"{name} block {coord} must be {level.dtype} of shape {want}, "
            f"got {block.dtype} of shape {block.shape}"
        )
    if level.codec is None:
        raise FormatError(f"{name} of {_filename(level)} cannot be written block-wise")
    return level.codec.encode_clipped(block)


def write_payload(level: Level, coord: Coord, payload: bytes) -> None:
    """Write an encoded chunk straight into the HDF5 file."""
    offset = tuple(c * b for c, b in zip(coord, level.block_size, strict=True))
    _hdf5(level).id.write_direct_chunk(offset, payload)


def _read_chunk(level: Level, coord: Coord) -> bytes | None:
    """The stored bytes of one chunk, or None if it was never written.

    Raises
    ------
    _SkippedFilters
        If HDF5 stored the chunk without some of its filters (a writer may skip
        an optional filter, e.g. Blosc on incompressible data).
    """
    offset = tuple(c * b for c, b in zip(coord, level.block_size, strict=True))
    dataset = _hdf5(level)
    if dataset.id.get_chunk_info_by_coord(offset).byte_offset is None:
        return None
    mask, payload = dataset.id.read_direct_chunk(offset)
    if mask:
        raise _SkippedFilters
    return bytes(payload)


class _SkippedFilters(Exception):
    """A chunk was stored with some of the dataset's filters skipped."""


def _hdf5(level: Level) -> h5py.Dataset:
    """The HDF5 dataset of a level stored block-wise (one with a codec)."""
    assert isinstance(level.dataset, h5py.Dataset)
    return level.dataset


def _filename(level: Level) -> str:
    """The file holding ``level`` (the volume, if not HDF5), as its errors name it."""
    dataset = level.dataset
    return str(dataset.file.filename) if isinstance(dataset, h5py.Dataset) else dataset.name


def _unreadable(level: Level, coord: Coord, exc: OSError) -> str:
    return f"{_filename(level)}: cannot read {level.kind}/s{level.scale} block {coord} ({exc})"
