"""OME-Zarr pyramids (NGFF 0.4 and 0.5, Zarr v2 and v3, sharded or not), found and
read-only.

An OME-Zarr image keeps its ``multiscales`` in its group's attributes (under
``"ome"`` from NGFF 0.5) and its label images in ``labels/<name>`` (listed by
the ``labels`` group's ``labels`` attribute); a label image's multiscales come
with ``image-label`` metadata.  segmend shows one as a foreign pyramid,
read-only: the labels of its first label image (or of the root, when the root
is itself a label image), and the root image as grayscale when it is uint8 or
uint16.  Levels are read by slicing the zarr arrays (zarr-python, imported only
when a store is opened); nothing is ever written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
from numpy.typing import NDArray

from app.model.errors import FormatError
from app.model.storage.layout import (
    DEFAULT_BLOCK_SIZE,
    check_block_size,
    check_voxel_size,
    is_image_dtype,
    is_label_dtype,
)

if TYPE_CHECKING:
    import zarr

ZARR_SUFFIX = ".zarr"
_ZARR_METADATA = ("zarr.json", ".zgroup", ".zattrs")
_SI_PREFIX_EXPONENTS = {
    "yocto": -24, "zepto": -21, "atto": -18, "femto": -15, "pico": -12, "nano": -9,
    "micro": -6, "milli": -3, "centi": -2, "deci": -1, "": 0, "deca": 1, "hecto": 2,
    "kilo": 3, "mega": 6, "giga": 9, "tera": 12, "peta": 15, "exa": 18, "zetta": 21,
    "yotta": 24,
}
NM_PER_UNIT = {
    **{f"{p}meter": 10.0 ** (e + 9) for p, e in _SI_PREFIX_EXPONENTS.items()},
    "angstrom": 0.1,
}
"""Nanometres per length unit of the NGFF axes (metric lengths and the ångström);
a scale in another unit, or in none, is taken as nanometres."""


def is_zarr_path(path: str | Path) -> bool:
    """Whether ``path`` names a Zarr store: a ``.zarr`` path, or a folder holding
    Zarr metadata (``zarr.json``, ``.zgroup`` or ``.zattrs``)."""
    p = Path(path)
    return p.suffix.lower() == ZARR_SUFFIX or (
        p.is_dir() and any((p / name).is_file() for name in _ZARR_METADATA)
    )


class ZarrVolume:
    """The z, y, x volume of a zarr array, read by slicing.

    The array's axes before its last three (NGFF's time and channel) have
    length 1: index 0 of each is read.

    Attributes
    ----------
    shape : tuple of int
        (z, y, x).
    dtype : numpy.dtype
    chunks : tuple of int
        The (inner, in a shard) chunk shape, (z, y, x).
    name : str
        Where the array is (``STORE/path``), as errors name it.
    """

    def __init__(self, array: zarr.Array[Any], name: str) -> None:
        self._array = array
        self._lead: tuple[int, ...] = (0,) * (array.ndim - 3)
        self.shape: tuple[int, int, int] = _zyx(array.shape)
        self.dtype: np.dtype[Any] = np.dtype(array.dtype)
        self.chunks: tuple[int, int, int] = _zyx(array.chunks)
        self.name = name

    def __getitem__(self, key: tuple[slice, slice, slice]) -> NDArray[Any]:
        """The voxels in the box ``key`` (three slices), as a new array.

        Raises
        ------
        app.model.errors.FormatError
            If a chunk cannot be read or decoded.
        """
        try:
            return np.asarray(self._array[self._lead + key])
        except Exception as exc:  # zarr and its codecs raise assorted types on bad chunks
            box = ", ".join(f"{s.start}:{s.stop}" for s in key)
            raise FormatError(f"{self.name}: cannot read voxels [{box}] ({exc})") from exc


@dataclass(frozen=True)
class OmeZarrPyramid:
    """What segmend shows of an OME-Zarr store.

    Attributes
    ----------
    path : Path
        The store (a folder).
    labels, image : tuple of ZarrVolume
        The label and grayscale levels, scale 0 first (``image`` empty without
        grayscale), in the multiscales' dataset order.
    block_size : tuple of int
        The labels' scale-0 chunk shape (the inner chunk of a shard), or the
        default block size when it cannot be one (odd, or too large).
    voxel_size_nm : tuple of float
        The labels' scale-0 voxel size (z, y, x), in nanometres.
    attrs : mapping
        The root group's attributes.
    """

    path: Path
    labels: tuple[ZarrVolume, ...]
    image: tuple[ZarrVolume, ...]
    block_size: tuple[int, int, int]
    voxel_size_nm: tuple[float, float, float]
    attrs: Mapping[str, Any]


def open_ome_zarr(path: str | Path) -> OmeZarrPyramid:
    """The label (and grayscale) pyramid of the OME-Zarr store at ``path``, read-only.

    Raises
    ------
    app.model.errors.FormatError
        Naming the path, if it is missing, not a Zarr group, or not an OME-Zarr
        image holding a 3D integer label pyramid.
    """
    import zarr

    p = Path(path)
    if not p.exists():
        raise FormatError(f"{p}: no such file or folder")
    try:
        root = zarr.open_group(p, mode="r")
    except (OSError, zarr.errors.BaseZarrError, ValueError) as exc:
        raise FormatError(f"{p}: not a Zarr group ({exc})") from None
    root_meta = _ome(root)
    if "image-label" in root_meta and "multiscales" in root_meta:
        label_group, image_group = root, None
    else:
        label_group, image_group = _first_label_image(p, root), root
    labels = _levels(p, label_group)
    if labels is None:
        raise FormatError(
            f"{p}: label image {_where(label_group)} holds no 3D multiscales (three "
            "spatial axes last, any others of length 1)"
        )
    if not is_label_dtype(labels[0].dtype):
        raise FormatError(
            f"{p}: label image {_where(label_group)} holds {labels[0].dtype} voxels; "
            "labels must be integers of 2 bytes or more"
        )
    image = _levels(p, image_group) if image_group is not None else None
    if image is not None and not is_image_dtype(image[0].dtype):
        image = None  # a multi-channel or float image: not a grayscale segmend shows
    try:
        block_size = check_block_size(labels[0].chunks)
    except ValueError:
        block_size = DEFAULT_BLOCK_SIZE
    return OmeZarrPyramid(
        p, labels, image or (), block_size, _voxel_size_nm(p, label_group), dict(root.attrs)
    )


def holds_ome_zarr_pyramid(path: str | Path) -> bool:
    """True if ``path`` is an OME-Zarr store segmend can show (False, not an error,
    otherwise)."""
    try:
        open_ome_zarr(path)
    except FormatError:
        return False
    return True


def refuse_editing(path: str | Path) -> NoReturn:
    """Raise why the Zarr store at ``path`` cannot be opened for editing.

    Raises
    ------
    app.model.errors.FormatError
        As :func:`open_ome_zarr` if it is not an OME-Zarr label pyramid;
        else saying it is read-only and how to make an editable pyramid of it.
    """
    open_ome_zarr(path)
    raise FormatError(
        f"{path}: an OME-Zarr pyramid is read-only in segmend (edits are journaled and "
        f"checkpointed into HDF5 pyramids); rebuild it into an HDF5 pyramid with "
        f"'segmend build {path} OUT.h5' to edit it"
    )


def _ome(group: zarr.Group) -> dict[str, Any]:
    """A group's NGFF metadata: its attributes' ``"ome"`` (NGFF 0.5) or the
    attributes themselves (0.4)."""
    attrs = dict(group.attrs)
    meta = attrs.get("ome", attrs)
    return meta if isinstance(meta, dict) else {}


def _where(group: zarr.Group) -> str:
    """The group's path in its store, as errors name it."""
    return f"/{group.path}" if group.path else "(the root)"


def _first_label_image(path: Path, root: zarr.Group) -> zarr.Group:
    """The group of the first label image listed in ``root/labels``.

    Raises
    ------
    app.model.errors.FormatError
        If there is none.
    """
    import zarr

    names: Any = None
    labels = _child(root, "labels")
    if isinstance(labels, zarr.Group):
        names = _ome(labels).get("labels")
    if not isinstance(names, list) or not names:
        raise FormatError(
            f"{path}: no label image (an OME-Zarr image with a 'labels' group listing its "
            "label images, or a label image with 'image-label' metadata)"
        )
    group = _child(root, f"labels/{names[0]}")
    if not isinstance(group, zarr.Group):
        raise FormatError(f"{path}: label image /labels/{names[0]} is missing")
    return group


def _child(group: zarr.Group, name: str) -> zarr.Group | zarr.Array[Any] | None:
    try:
        return group[name]
    except KeyError:
        return None


def _multiscale(group: zarr.Group) -> dict[str, Any] | None:
    """The group's first multiscales entry, or None."""
    multiscales = _ome(group).get("multiscales")
    if isinstance(multiscales, list) and multiscales and isinstance(multiscales[0], dict):
        return multiscales[0]
    return None


def _levels(path: Path, group: zarr.Group) -> tuple[ZarrVolume, ...] | None:
    """The levels of the group's multiscales, in its datasets' order; None if it
    has no multiscales, or they are not 3D (spatial axes last, any others of length 1).

    Raises
    ------
    app.model.errors.FormatError
        If a dataset it lists is missing.
    """
    import zarr

    ms = _multiscale(group)
    if ms is None or not _spatial_last(ms.get("axes")):
        return None
    levels = []
    for entry in ms.get("datasets") or []:
        sub = str(entry.get("path")) if isinstance(entry, dict) else ""
        name = f"{group.path}/{sub}".lstrip("/")
        array = _child(group, sub) if sub else None
        if not isinstance(array, zarr.Array):
            raise FormatError(f"{path}: multiscales dataset /{name} is missing")
        if array.ndim != len(ms["axes"]) or any(n != 1 for n in array.shape[:-3]):
            return None
        levels.append(ZarrVolume(array, f"{path}/{name}"))
    return tuple(levels) or None


def _spatial_last(axes: Any) -> bool:
    """True if ``axes`` (NGFF axis dicts) end with exactly three spatial axes (of
    type ``space``, or without a type and named z, y or x)."""
    if not isinstance(axes, list) or len(axes) < 3 or not all(isinstance(a, dict) for a in axes):
        return False
    spatial = [a.get("type", "space" if a.get("name") in ("z", "y", "x") else None) == "space"
               for a in axes]
    return spatial[-3:] == [True] * 3 and not any(spatial[:-3])


def _voxel_size_nm(path: Path, group: zarr.Group) -> tuple[float, float, float]:
    """The voxel size (z, y, x, nm) of the group's scale 0: the scale of its
    dataset's ``coordinateTransformations`` times that of the multiscales' own,
    in the axes' units.

    Raises
    ------
    app.model.errors.FormatError
        If the scale is not finite and positive.
    """
    ms = _multiscale(group)
    assert ms is not None  # (its levels were found)
    axes = ms["axes"]
    units = [NM_PER_UNIT.get(str(a.get("unit", "")), 1.0) for a in axes[-3:]]
    scale = np.ones(len(axes))
    try:
        for transforms in (ms["datasets"][0].get("coordinateTransformations"),
                           ms.get("coordinateTransformations")):
            for t in transforms or []:
                if isinstance(t, dict) and t.get("type") == "scale":
                    scale *= np.asarray(t["scale"], dtype=np.float64)
        return check_voxel_size([s * u for s, u in zip(scale[-3:], units, strict=True)])
    except (ValueError, TypeError, KeyError) as exc:
        raise FormatError(f"{path}: bad scale in {_where(group)} ({exc})") from None


def _zyx(values: Sequence[int]) -> tuple[int, int, int]:
    """The last three of ``values`` as ints."""
    z, y, x = (int(v) for v in values[-3:])
    return (z, y, x)


__all__ = [
    "NM_PER_UNIT",
    "OmeZarrPyramid",
    "ZarrVolume",
    "holds_ome_zarr_pyramid",
    "is_zarr_path",
    "open_ome_zarr",
    "refuse_editing",
]
