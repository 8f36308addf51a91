"""Zarr stores (v2 or v3) as build sources: an array, or a group's scale 0.

A group is taken at its scale 0: an OME-Zarr multiscale image or label image
(NGFF 0.4 ``multiscales`` in the attributes, 0.5 under ``ome``) by its first
dataset, any other group by an array named ``s0`` or ``0`` (as an HDF5
pyramid group).  NGFF puts the space axes last: leading axes of size 1
(time, channel) are dropped, so a ``(1, 1, z, y, x)`` label image reads as 3D.
zarr-python is imported only when a store is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.model.errors import FormatError

__all__ = ["ZARR_METADATA", "is_zarr_store", "open_zarr_source"]

ZARR_METADATA = ("zarr.json", ".zarray", ".zgroup")
"""Files that make a folder a Zarr array or group (v3, v2)."""
_ERRORS = (OSError, ValueError, KeyError, TypeError, IndexError)


def is_zarr_store(path: Path) -> bool:
    """Whether the folder ``path`` is a Zarr array or group."""
    return any((path / name).is_file() for name in ZARR_METADATA)


def open_zarr_source(path: Path, inner: str, text: str) -> Any:
    """The array at ``inner`` in the Zarr store ``path`` (its scale 0 if a group),
    read-only; ``text`` names it in errors.

    Returns
    -------
    zarr.Array or _SpaceAxes
        Sliced like a NumPy array (slices return NumPy arrays).

    Raises
    ------
    app.model.errors.FormatError
        Nothing readable there, a group without scale 0, or more than three
        axes of size above 1.
    """
    import zarr
    from zarr.storage import LocalStore

    try:
        node = zarr.open(LocalStore(path, read_only=True), mode="r", path=inner.strip("/"))
        if isinstance(node, zarr.Group):
            node = _scale0(node, text)
    except FormatError:
        raise
    except _ERRORS as exc:
        raise FormatError(f"{text}: no readable Zarr array there ({exc})") from None
    lead = node.ndim - 3
    if lead > 0 and all(n == 1 for n in node.shape[:lead]):
        return _SpaceAxes(node, lead)
    return node


def _scale0(group: Any, text: str) -> Any:
    """Scale 0 of an OME-Zarr multiscale group, or its array ``s0`` or ``0``."""
    import zarr

    attrs = group.attrs.asdict()
    ome = attrs.get("ome", attrs)
    multiscales = ome.get("multiscales") if isinstance(ome, dict) else None
    if multiscales:
        return group[multiscales[0]["datasets"][0]["path"]]
    for name in ("s0", "0"):
        if name in group and isinstance(group[name], zarr.Array):
            return group[name]
    raise FormatError(
        f"{text}: is a Zarr group, not a volume (no OME-Zarr multiscales, no array s0 or 0); "
        "name an array as DIR.zarr:/path"
    )


class _SpaceAxes:
    """The last three axes of an array whose leading axes have size 1."""

    def __init__(self, array: Any, lead: int) -> None:
        self._array = array
        self._lead = (0,) * lead
        self.shape: tuple[int, ...] = tuple(array.shape[lead:])
        self.dtype: np.dtype[Any] = np.dtype(array.dtype)

    def __getitem__(self, key: Any) -> Any:
        return self._array[self._lead + (key if isinstance(key, tuple) else (key,))]
