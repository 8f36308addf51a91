"""Opening the source volumes that ``build`` imports.

A source is written ``FILE.h5:/path/to/dataset``, ``FILE.npy``,
``FILE.h5:/group`` naming a pyramid group (its scale 0 is taken), a Zarr
store (v2 or v3: ``DIR.zarr`` or ``DIR.zarr:/path/in/store``, an array or a
group whose scale 0 is taken, OME-Zarr images and label images included:
:mod:`app.model.storage.zarr_source`), or an N5 dataset (``DIR.n5:/path``, or
a group holding ``s0``: :mod:`app.model.storage.n5`).  Sources are opened
lazily (an h5py dataset, a memory-mapped array, a Zarr array, an N5 reader)
and read in slabs, so a volume larger than memory can be imported.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from app.model.errors import FormatError
from app.model.storage.layout import find_pyramids
from app.model.storage.n5 import N5Dataset, is_n5_dataset
from app.model.storage.zarr_source import is_zarr_store, open_zarr_source

INNER_PATH_AFTER = (".h5:", ".hdf5:", ".zarr:", ".n5:")
"""A source spec names a path inside its file or folder after the first of these."""


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
        If the file or folder is missing or unreadable, the dataset is absent,
        or the volume is not 3D.
    """
    text = str(spec)
    path_text, inner = split_spec(text)
    path = Path(path_text)
    if not path.exists():
        raise FormatError(f"{path}: no such file")
    if path.is_dir():
        source = _open_folder(path, inner, text)
        _check_3d(source, text)
        yield source
        return
    if path.suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise FormatError(f"{path}: not a readable .npy file ({exc})") from exc
        _check_3d(arr, text)
        yield arr
        return
    if not h5py.is_hdf5(path):
        raise FormatError(f"{path}: neither an HDF5 file nor a .npy file (nor a Zarr or N5 folder)")
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


def split_spec(text: str) -> tuple[str, str]:
    """``(file or folder, path inside it)`` of a source spec (see
    :data:`INNER_PATH_AFTER`; the inner path is empty if none is named)."""
    found = [i + len(m) - 1 for m in INNER_PATH_AFTER if (i := text.find(m)) >= 0]
    if not found:
        return text, ""
    at = min(found)
    return text[:at], text[at + 1 :]


def _open_folder(path: Path, inner: str, text: str) -> Any:
    """A Zarr array (or group's scale 0), or an N5 dataset (or group's ``s0``/``0``)."""
    if path.suffix == ".zarr" or is_zarr_store(path):
        return open_zarr_source(path, inner, text)
    if path.suffix == ".n5" or (path / "attributes.json").is_file():
        dataset = path / inner.strip("/")
        for candidate in (dataset, dataset / "s0", dataset / "0"):
            if is_n5_dataset(candidate):
                return N5Dataset(candidate)
        raise FormatError(f"{text}: no N5 dataset there (attributes.json with dimensions)")
    raise FormatError(f"{path}: a folder that is neither a Zarr store nor an N5 container")


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
    if math.prod(arr.shape) == 0:
        raise FormatError(f"{text}: the volume is empty")
    if np.dtype(arr.dtype).kind not in "ui":
        raise FormatError(f"{text}: expected integer voxels, got {arr.dtype}")
