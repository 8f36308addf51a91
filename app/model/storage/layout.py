"""The HDF5 layout of a segmend pyramid, and discovery of pyramids written by others.

A segmend file::

    /labels/s0 ... /labels/sN   uint64, chunked, one chunk = one block
    /image/s0  ... /image/sM    optional uint8/uint16 grayscale, same block grid
    /  attrs: format="segmend-pyramid", format_version, block_size, voxel_size_nm,
             downres_rule, repo_uuid, data_uuid, max_label, next_label, created_by

Files written by other tools open read-only too: pyramids named ``s0..sN`` or
``0..N`` in any group.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # h5py is imported where a file is read: the names here load light
    import h5py

FORMAT_NAME = "segmend-pyramid"
FORMAT_VERSION = 1
DEFAULT_BLOCK_SIZE = (64, 64, 64)
MAX_BLOCK_SIZE = 1024
"""The largest block side (a block is one HDF5 chunk, read and written whole)."""
RULES = ("labelmap", "labelblk")
DEFAULT_RULE = "labelmap"
#: Compression names accepted by ``segmend build --compression``.
COMPRESSIONS = ("blosc-lz4", "blosc-zstd", "gzip", "none")
DEFAULT_COMPRESSION = "blosc-lz4"
LABELS_GROUP = "labels"
IMAGE_GROUP = "image"
SUPERVOXELS = "supervoxels"
"""The block kind of a labelmap dataset's raw voxels, its supervoxels (the
kind ``"labels"`` reads its bodies)."""

_LEVEL_NAME = re.compile(r"^s?(\d+)$")
LABEL_NAME_WORDS = ("label", "seg")
"""Words in a volume's HDF5 path that make it the first choice among label volumes."""
T = TypeVar("T")


def is_label_dtype(dtype: Any) -> bool:
    """Whether voxels of ``dtype`` can be labels: integers of 2 bytes or more.

    The one rule for "is this a label volume" (pyramid discovery, the napari
    reader, the import dialog).  uint16 can be either labels or grayscale
    (:func:`is_image_dtype`): :func:`labels_first` ranks wider integers
    first, so a uint16 volume is taken as labels only when nothing wider is.
    """
    import numpy as np

    dt = np.dtype(dtype)
    return dt.kind in "ui" and dt.itemsize >= 2


def is_image_dtype(dtype: Any) -> bool:
    """Whether voxels of ``dtype`` can be a grayscale volume: uint8 or uint16."""
    import numpy as np

    return np.dtype(dtype) in (np.uint8, np.uint16)


def labels_first(
    candidates: Sequence[T], path: Callable[[T], str], dtype: Callable[[T], Any]
) -> list[T]:
    """The label volumes among ``candidates`` (see :func:`is_label_dtype`), best
    first: those whose HDF5 ``path`` names labels (:data:`LABEL_NAME_WORDS`),
    then the wider integers, then in their order."""
    import numpy as np

    def rank(c: T) -> tuple[bool, int]:
        named = any(w in path(c).lower() for w in LABEL_NAME_WORDS)
        return (not named, -np.dtype(dtype(c)).itemsize)

    return sorted((c for c in candidates if is_label_dtype(dtype(c))), key=rank)


def level_shapes(
    shape: tuple[int, int, int], block_size: tuple[int, int, int], levels: int | None = None
) -> list[tuple[int, int, int]]:
    """Shapes of every scale: each is ``ceil(previous / 2)`` per axis.

    Levels continue until every axis fits in one block, or ``levels`` of them.

    Raises
    ------
    ValueError
        If a shape axis or block axis is not positive, or ``levels`` < 1.
    """
    if any(s < 1 for s in shape) or len(shape) != 3:
        raise ValueError(f"volume shape must be three positive sizes, got {shape}")
    if any(b < 2 for b in block_size) or len(block_size) != 3:
        raise ValueError(f"block size must be three sizes >= 2, got {block_size}")
    if levels is not None and levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    shapes = [tuple(shape)]
    while True:
        last = shapes[-1]
        if levels is not None:
            if len(shapes) >= levels:
                break
        elif all(s <= b for s, b in zip(last, block_size, strict=True)):
            break
        shapes.append(tuple(math.ceil(s / 2) for s in last))
    return shapes  # type: ignore[return-value]


def level_count(shape: tuple[int, int, int], block_size: tuple[int, int, int]) -> int:
    """The natural number of scales of a volume: until every axis fits in one block.

    Raises
    ------
    ValueError
        As :func:`level_shapes`.
    """
    return len(level_shapes(shape, block_size))


def check_block_size(block_size: Sequence[int]) -> tuple[int, int, int]:
    """``block_size`` (z, y, x) as three even integers from 2 to :data:`MAX_BLOCK_SIZE`.

    Raises
    ------
    ValueError
        Naming the bad size.
    """
    sizes = tuple(block_size)
    if len(sizes) != 3 or not all(
        isinstance(v, numbers.Integral) and 2 <= v <= MAX_BLOCK_SIZE and not v % 2 for v in sizes
    ):
        raise ValueError(
            f"block size must be three even integers from 2 to {MAX_BLOCK_SIZE}, got {sizes}"
        )
    return (int(sizes[0]), int(sizes[1]), int(sizes[2]))


def check_voxel_size(voxel_size_nm: Sequence[float]) -> tuple[float, float, float]:
    """``voxel_size_nm`` as three floats, each finite and positive.

    Raises
    ------
    ValueError
        Naming the bad size.
    """
    sizes = tuple(float(v) for v in voxel_size_nm)
    if len(sizes) != 3 or not all(math.isfinite(v) and v > 0 for v in sizes):
        raise ValueError(
            f"voxel size must be three finite positive sizes (nm), got {tuple(voxel_size_nm)}"
        )
    return (sizes[0], sizes[1], sizes[2])


@dataclass(frozen=True)
class PyramidGroups:
    """Where the levels of a pyramid live inside an HDF5 file."""

    labels: tuple[str, ...]
    image: tuple[str, ...]
    native: bool


def find_pyramids(f: h5py.File) -> PyramidGroups:
    """Locate the label (and optional image) pyramid in ``f``.

    A native file has ``format="segmend-pyramid"``.  Otherwise the first group
    holding 3D datasets named ``s0..sN`` or ``0..N`` with an integer label dtype
    is taken as labels, and one with uint8/uint16 as grayscale.

    Raises
    ------
    app.model.errors.FormatError
        If no pyramid is found, or a native file has an unknown version.
    """
    import h5py

    from app.model.errors import FormatError

    if f.attrs.get("format") == FORMAT_NAME:
        version = int(f.attrs.get("format_version", 0))
        if version != FORMAT_VERSION:
            raise FormatError(
                f"{f.filename}: segmend format version {version} is not supported "
                f"(this segmend reads version {FORMAT_VERSION})"
            )
        if LABELS_GROUP not in f:
            raise FormatError(f"{f.filename}: segmend pyramid without a /{LABELS_GROUP} group")
        labels = _levels_in(f[LABELS_GROUP])
        image = _levels_in(f[IMAGE_GROUP]) if IMAGE_GROUP in f else ()
        if not labels:
            raise FormatError(f"{f.filename}: /{LABELS_GROUP} holds no levels s0..sN")
        _check_dtypes(f, labels, is_label_dtype, "labels must be integers of 2 bytes or more")
        _check_dtypes(f, image, is_image_dtype, "grayscale must be uint8 or uint16")
        return PyramidGroups(labels, image, native=True)

    groups: list[h5py.Group] = [f]
    f.visititems(lambda _n, o: groups.append(o) if isinstance(o, h5py.Group) else None)
    candidates = [lv for g in groups if (lv := _levels_in(g))]
    labels_c = labels_first(candidates, lambda c: c[0].rsplit("/", 1)[0], lambda c: f[c[0]].dtype)
    image_c = [c for c in candidates if is_image_dtype(f[c[0]].dtype) and c not in labels_c[:1]]
    if not labels_c:
        raise FormatError(
            f"{f.filename}: no label pyramid found (expected a segmend pyramid, or a group with "
            "3D integer datasets named s0..sN or 0..N); a plain volume can be imported "
            "with 'segmend build'"
        )
    return PyramidGroups(labels_c[0], image_c[0] if image_c else (), native=False)


def _check_dtypes(
    f: h5py.File, levels: Sequence[str], fits: Callable[[Any], bool], rule: str
) -> None:
    """FormatError naming the file, the level and its dtype unless every level ``fits``."""
    from app.model.errors import FormatError

    for path in levels:
        dtype = f[path].dtype
        if not fits(dtype):
            raise FormatError(f"{f.filename}: {path} holds {dtype} voxels; {rule}")


def _levels_in(group: h5py.Group) -> tuple[str, ...]:
    """Dataset paths of consecutive levels 0..N inside ``group`` (empty if none)."""
    import h5py

    found: dict[int, str] = {}
    for name, obj in group.items():
        m = _LEVEL_NAME.match(name)
        if m and isinstance(obj, h5py.Dataset) and obj.ndim == 3:
            found[int(m.group(1))] = obj.name
    levels: list[str] = []
    while len(levels) in found:
        levels.append(found[len(levels)])
    return tuple(levels)
