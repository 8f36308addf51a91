"""A pyramid's HDF5 file: writing an empty one, opening one."""

from __future__ import annotations

import io
import uuid as uuidlib
from pathlib import Path

import h5py
import numpy as np

from app.model.errors import FormatError
from app.model.storage.codec import dataset_filter_kwargs
from app.model.storage.layout import (
    FORMAT_NAME,
    FORMAT_VERSION,
    IMAGE_GROUP,
    LABELS_GROUP,
    RULES,
    check_voxel_size,
    is_label_dtype,
    level_shapes,
)
from app.model.storage.safefile import CommittedView


def write_empty_pyramid(
    path: str | Path,
    shape: tuple[int, int, int],
    *,
    block_size: tuple[int, int, int],
    rule: str,
    levels: int | None,
    compression: str,
    label_dtype: str,
    image_dtype: str | None,
    voxel_size_nm: tuple[float, float, float],
    created_by: str,
) -> None:
    """Write an empty pyramid file at ``path`` (overwriting it): the root attributes
    (fresh repository and data UUIDs, counters at their start) and every level,
    chunked one block per chunk, filled with 0.

    Raises
    ------
    ValueError
        On an unknown rule or compression, a label or image dtype that cannot
        be one, a bad shape or a voxel size that is not finite and positive.
    """
    if rule not in RULES:
        raise ValueError(f"unknown downres rule {rule!r}; choose one of {', '.join(RULES)}")
    if not is_label_dtype(label_dtype):
        raise ValueError(f"labels must be integers of 2 bytes or more, got {label_dtype}")
    if image_dtype not in (None, "uint8", "uint16"):
        raise ValueError(f"grayscale must be uint8 or uint16, got {image_dtype}")
    voxel_size_nm = check_voxel_size(voxel_size_nm)
    shapes = level_shapes(shape, block_size, levels)
    filters = dataset_filter_kwargs(compression)
    with h5py.File(path, "w", locking=False) as h5:  # (a build holds its own lock on it)
        h5.attrs.update(
            format=FORMAT_NAME,
            format_version=FORMAT_VERSION,
            block_size=np.array(block_size, dtype=np.int64),
            voxel_size_nm=np.array(voxel_size_nm, dtype=np.float64),
            downres_rule=rule,
            repo_uuid=uuidlib.uuid4().hex,
            data_uuid=uuidlib.uuid4().hex,
            max_label=0,
            next_label=1,
            next_mutation_id=1,
            checkpoint_mutation_id=0,
            created_by=created_by,
            compression=compression,
        )
        kinds = [(LABELS_GROUP, label_dtype)]
        if image_dtype:
            kinds.append((IMAGE_GROUP, image_dtype))
        for kind, dtype in kinds:
            group = h5.create_group(kind)
            for i, s in enumerate(shapes):
                chunks = tuple(min(b, n) for b, n in zip(block_size, s, strict=True))
                group.create_dataset(
                    f"s{i}", shape=s, dtype=dtype, chunks=chunks, fillvalue=0, **filters
                )


def open_h5(path: str | Path, mode: str) -> h5py.File:
    """Open an HDF5 file, turning every failure into a FormatError naming the file.

    segmend opens without HDF5's own file lock: readers must be allowed while
    a writer works (segmend enforces one writer itself, with its own lock).
    """
    p = Path(path)
    check_hdf5(p)
    try:
        return h5py.File(p, mode, locking=False)
    except OSError as exc:
        raise FormatError(f"{p}: cannot open HDF5 file ({exc})") from exc


def open_h5_own_handle(
    path: str | Path, rollback: Path | None = None
) -> tuple[h5py.File, io.RawIOBase]:
    """Open an HDF5 file read-only through a file object of its own (h5py's
    ``fileobj`` driver); returns the file and the object, to close after it.
    Given its ``rollback`` file, and while that exists, it is read as of its
    last completed commit (:class:`~app.model.storage.safefile.CommittedView`).

    HDF5 shares an open file, and its metadata in memory, among all the opens
    of one file in a process by the same driver: only a handle of its own is
    read afresh when it is reopened (a reader beside a writer, after a commit).

    Raises
    ------
    app.model.errors.FormatError
        As :func:`open_h5`.
    """
    p = Path(path)
    check_hdf5(p)
    try:
        raw: io.RawIOBase = (
            CommittedView(p, rollback) if rollback is not None and rollback.exists()
            else _NamedFile(p, "rb")
        )
    except OSError as exc:
        raise FormatError(f"{p}: cannot open HDF5 file ({exc})") from exc
    try:
        return h5py.File(raw, "r"), raw
    except OSError as exc:
        raw.close()
        raise FormatError(f"{p}: cannot open HDF5 file ({exc})") from exc
    except BaseException:
        raw.close()
        raise


class _NamedFile(io.FileIO):
    """A raw file named by its path (h5py names a file object by its ``repr``)."""

    def __repr__(self) -> str:
        return str(self.name)


def check_hdf5(path: Path) -> None:
    """Raise FormatError unless ``path`` is an existing HDF5 file."""
    if not path.exists():
        raise FormatError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise FormatError(f"{path}: not an HDF5 file")
