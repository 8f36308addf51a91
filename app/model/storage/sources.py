"""Opening the source volumes that ``build`` imports.

A source is written ``FILE.h5:/path/to/dataset``, ``FILE.npy``, or
``FILE.h5:/group`` naming a pyramid group (its scale 0 is taken).  Sources are
opened lazily (an h5py dataset or a memory-mapped array) and read in slabs, so
a volume larger than memory can be imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from app.model.errors import FormatError
from app.model.storage.layout import find_pyramids


class VolumeSource(Protocol):
    """The part of the ndarray interface ``build`` uses."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    def __getitem__(self, key: Any) -> Any: ...


@contextmanager
def open_source(spec: str | Path) -> Iterator[VolumeSource]:
    """Open a source volume for reading; yields an array-like of 3 dimensions.

    Raises
    ------
    app.model.errors.FormatError
        If the file is missing or unreadable, the dataset is absent, or the
        volume is not 3D.
    """
    text = str(spec)
    path_text, _, inner = (
        text.partition(":") if ".h5:" in text or ".hdf5:" in text else (text, "", "")
    )
    path = Path(path_text)
    if not path.exists():
        raise FormatError(f"{path}: no such file")
    if path.suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise FormatError(f"{path}: not a readable .npy file ({exc})") from exc
        _check_3d(arr, text)
        yield arr
        return
    if not h5py.is_hdf5(path):
        raise FormatError(f"{path}: neither an HDF5 file nor a .npy file")
    with h5py.File(path, "r", locking=False) as f:
        if inner and inner not in f:
            raise FormatError(f"{path}: no dataset {inner!r}")
        obj = f[inner] if inner else f
        if isinstance(obj, h5py.Group):
            with contextlib.suppress(FormatError):
                obj = _group_scale0(obj)
            if isinstance(obj, h5py.Group):
                raise FormatError(
                    f"{text}: is a group, not a volume; name a dataset as FILE.h5:/path"
                )
        _check_3d(obj, text)
        yield obj


def _group_scale0(group: h5py.Group) -> h5py.Dataset | h5py.Group:
    for name in ("s0", "0"):
        if name in group and isinstance(group[name], h5py.Dataset):
            return group[name]
    if isinstance(group, h5py.File):
        return group[find_pyramids(group).labels[0]]
    return group


def _check_3d(arr: Any, text: str) -> None:
    if len(arr.shape) != 3:
        raise FormatError(f"{text}: expected a 3D volume (z, y, x), got shape {arr.shape}")
    if arr.size == 0:
        raise FormatError(f"{text}: the volume is empty")
    if np.dtype(arr.dtype).kind not in "ui":
        raise FormatError(f"{text}: expected integer voxels, got {arr.dtype}")
