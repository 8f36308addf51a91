"""Creating an OME-Zarr store (NGFF 0.5, Zarr v3, sharded) for a label pyramid.

:func:`building_ome_zarr` creates every array and the metadata under a
partial name beside the output, yields, and renames it into place, so that
``OUT.zarr`` is never seen half-written.  Whoever fills the arrays opens them
by path (:meth:`OmeZarrPyramid.open_array`), in this process or another.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, GzipCodec
from zarr.storage import LocalStore

from app.model.bulk.partials import (
    hold_partial,
    partial_path,
    remove_stale_partials,
    replace_folder,
)
from app.model.error_text import write_failure
from app.model.errors import FormatError, SegmendError
from app.model.omezarr.metadata import (
    AXES,
    LABEL_IMAGE,
    LABEL_NAME,
    LABELS_GROUP,
    is_segmend_export,
    label_image_attributes,
    labels_attributes,
    root_attributes,
)
from app.model.storage.layout import COMPRESSIONS, check_voxel_size
from app.model.storage.store import IMAGE, LABELS

__all__ = ["LevelsSpec", "OmeZarrPyramid", "building_ome_zarr", "check_replaceable"]

DEFAULT_SHARD_BLOCKS = 4
"""Shard edge in blocks (per axis) when none is given: 64 blocks a shard."""


@dataclass(frozen=True)
class LevelsSpec:
    """The arrays of one pyramid (labels or grayscale).

    Attributes
    ----------
    shapes : tuple of (int, int, int)
        (z, y, x) per scale, scale 0 first; each ``ceil(previous / 2)``.
    dtype : str
        The element type (``"uint64"``, ``"uint8"``, ...).
    chunk : (int, int, int)
        The block size (z, y, x); a scale's chunks are ``min(chunk, shape)``.
    """

    shapes: tuple[tuple[int, int, int], ...]
    dtype: str
    chunk: tuple[int, int, int]


@dataclass(frozen=True)
class OmeZarrPyramid:
    """Where the arrays of an OME-Zarr being built are (picklable: plain paths).

    Attributes
    ----------
    root : Path
        The store's folder (the partial one while building).
    label_paths : tuple of str
        Array path inside the store per label scale (``labels/segmentation/0`` ...).
    image_paths : tuple of str
        Array path per grayscale scale (``0`` ...); empty without grayscale.
    """

    root: Path
    label_paths: tuple[str, ...]
    image_paths: tuple[str, ...]

    def open_array(self, kind: str, scale: int, mode: str = "r+") -> zarr.Array:
        """Scale ``scale`` of ``kind`` (``"labels"`` or ``"image"``), opened by
        path (a Dask worker process may call this on an unpickled copy).

        Raises
        ------
        ValueError
            On an unknown kind; IndexError on a scale absent.
        """
        if kind == LABELS:
            paths = self.label_paths
        elif kind == IMAGE:
            paths = self.image_paths
        else:
            raise ValueError(f"kind must be {LABELS!r} or {IMAGE!r}, got {kind!r}")
        if not 0 <= scale < len(paths):
            raise IndexError(f"{kind} has {len(paths)} scales in {self.root}, not scale {scale}")
        store = LocalStore(self.root, read_only=mode == "r")
        return zarr.open_array(store, path=paths[scale], mode=mode, zarr_format=3)

    def record(self, **values: Any) -> None:
        """Add ``values`` to the root's ``segmend`` attribute (e.g. ``max_label``
        once a build knows it)."""
        group = zarr.open_group(LocalStore(self.root), mode="r+", zarr_format=3)
        mark = dict(group.attrs.asdict()["segmend"])  # type: ignore[arg-type]
        group.attrs["segmend"] = {**mark, **values}


def zarr_compressors(compression: str) -> tuple[Any, ...] | None:
    """The Zarr v3 codecs (inside each shard) of a dataset compression name
    (:data:`~app.model.storage.layout.COMPRESSIONS`), those the HDF5 pyramid
    uses: Blosc LZ4 or Zstd without shuffle, gzip level 1; None for ``none``.

    Raises
    ------
    ValueError
        On an unknown name.
    """
    if compression == "blosc-lz4":
        return (BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle"),)
    if compression == "blosc-zstd":
        return (BloscCodec(cname="zstd", clevel=3, shuffle="noshuffle"),)
    if compression == "gzip":
        return (GzipCodec(level=1),)
    if compression == "none":
        return None
    raise ValueError(
        f"unknown compression {compression!r}; choose one of {', '.join(COMPRESSIONS)}"
    )


def check_replaceable(out: str | Path) -> None:
    """Refuse an existing ``out`` (through a symlink: what it names) that is not
    an OME-Zarr written by segmend.

    Raises
    ------
    app.model.errors.FormatError
        Naming ``out``.
    """
    real = Path(os.path.realpath(out))
    if not real.exists():
        return
    try:
        attributes = json.loads((real / "zarr.json").read_text()).get("attributes")
    except (OSError, ValueError, AttributeError):
        attributes = None
    if not is_segmend_export(attributes):
        raise FormatError(
            f"{out} exists and is not an OME-Zarr written by segmend; refusing to replace it"
        )


@contextmanager
def building_ome_zarr(
    out: Path,
    *,
    labels: LevelsSpec,
    image: LevelsSpec | None,
    voxel_size_nm: tuple[float, float, float],
    compression: str,
    rule: str,
    shard_blocks: Sequence[int] | None = None,
    created_by: str = "segmend",
) -> Iterator[OmeZarrPyramid]:
    """Create every array (Zarr v3, sharded, fill value 0) and the NGFF 0.5
    metadata under a temporary name beside ``out``; yield; then put it at ``out``.

    The temporary name is a partial folder (:mod:`app.model.bulk.partials`):
    a dead build's is removed by the next one, a live one is never taken.  On
    normal exit ``out`` is replaced by it (renames); on any exception it is
    removed and ``out`` is left as it was.

    Layout: see :mod:`app.model.omezarr.metadata`.  Without grayscale the
    root group is an image whose multiscales names the label arrays
    (``labels/segmentation/k``), and ``labels/segmentation`` is their label
    image: ome-zarr-models validates it as an ``Image`` with its labels, and
    napari-ome-zarr shows it (an image layer and a labels layer).  Two other
    layouts were refused: napari-ome-zarr reads a root label image by opening
    the folder two levels up as a Zarr group in write mode (creating one
    there), and a root holding only ``labels/`` is no NGFF image (nothing shows).
    Each scale k has a ``scale`` of ``voxel_size_nm * 2**k`` and the half-voxel
    ``translation`` 2× downsampling implies, ``voxel_size_nm * (2**k - 1) / 2``.

    Parameters
    ----------
    out : Path
        The OME-Zarr folder (``OUT.zarr``); through a symlink, the folder it names.
    labels, image : LevelsSpec
        The label pyramid, and the grayscale one (None: none) with as many
        scales and the same scale-0 shape.
    voxel_size_nm : (float, float, float)
        Scale 0's voxel size (z, y, x).
    compression : str
        A dataset compression name (:func:`zarr_compressors`).
    rule : str
        The downres rule the levels follow (recorded, for ``verify``).
    shard_blocks : sequence of int, optional
        ``shard_blocks[k]``: the shard edge of scale k in blocks, the same for
        the three axes (default :data:`DEFAULT_SHARD_BLOCKS`), cut to the
        scale's block grid.  Write every shard as a whole, by one writer.
    created_by : str
        Recorded in the root's ``segmend`` attribute.

    Yields
    ------
    OmeZarrPyramid
        The arrays to fill.

    Raises
    ------
    ValueError
        On a bad spec, compression or voxel size (before anything is created).
    app.model.errors.FormatError
        ``out`` exists and is not an OME-Zarr written by segmend (before
        anything is created, and again before replacing it).
    app.model.errors.SegmendError
        The store cannot be created or renamed (a full disk, a missing folder).
    """
    voxel = check_voxel_size(voxel_size_nm)
    codecs = zarr_compressors(compression)
    edges = _shard_edges(labels, image, shard_blocks)
    real = Path(os.path.realpath(out))
    check_replaceable(out)
    remove_stale_partials(real)
    tmp = partial_path(real)
    held: int | None = None
    try:
        try:
            held = hold_partial(tmp, folder=True)
            pyramid = _create(tmp, labels, image, voxel, codecs, edges,
                              dict(created_by=created_by, downres_rule=rule,
                                   compression=compression))
        except OSError as exc:
            raise SegmendError(f"cannot write {out}: {write_failure(exc, tmp)}") from exc
        yield pyramid
        check_replaceable(out)
        try:
            replace_folder(tmp, real)
        except OSError as exc:
            raise SegmendError(f"cannot write {out}: {write_failure(exc, tmp)}") from exc
    except BaseException:
        if held is not None:  # (else the folder may be another build's)
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if held is not None:
            os.close(held)


def _shard_edges(
    labels: LevelsSpec, image: LevelsSpec | None, shard_blocks: Sequence[int] | None
) -> tuple[int, ...]:
    """Shard edge in blocks per scale; ValueError on a bad spec."""
    specs = [labels] if image is None else [labels, image]
    for spec in specs:
        if not spec.shapes or any(
            len(s) != 3 or min(s) < 1 for s in (*spec.shapes, spec.chunk)
        ):
            raise ValueError(f"levels need shapes and a chunk of three positive sizes: {spec}")
        try:
            np.dtype(spec.dtype)
        except TypeError:
            raise ValueError(f"unknown dtype {spec.dtype!r}") from None
    if image is not None and (
        len(image.shapes) != len(labels.shapes) or image.shapes[0] != labels.shapes[0]
    ):
        raise ValueError(
            f"grayscale scales {image.shapes} must match the label scales {labels.shapes}"
        )
    n = len(labels.shapes)
    edges = tuple(shard_blocks) if shard_blocks is not None else (DEFAULT_SHARD_BLOCKS,) * n
    if len(edges) < n or any(int(e) < 1 for e in edges):
        raise ValueError(f"shard_blocks needs {n} sizes of at least 1 block, got {edges}")
    return tuple(int(e) for e in edges[:n])


def _create(
    root: Path,
    labels: LevelsSpec,
    image: LevelsSpec | None,
    voxel: tuple[float, float, float],
    codecs: tuple[Any, ...] | None,
    edges: tuple[int, ...],
    mark: dict[str, str],
) -> OmeZarrPyramid:
    """Write the groups and empty arrays of the store at ``root``."""
    store = LocalStore(root)
    label_paths = tuple(f"{LABEL_IMAGE}/{k}" for k in range(len(labels.shapes)))
    image_paths = tuple(str(k) for k in range(len(image.shapes))) if image else ()
    name, root_paths = ("image", image_paths) if image else (LABEL_NAME, label_paths)
    attributes = root_attributes(name=name, paths=root_paths, voxel_size_nm=voxel, **mark)
    zarr.create_group(store, zarr_format=3, attributes=attributes)
    zarr.create_group(store, path=LABELS_GROUP, zarr_format=3, attributes=labels_attributes())
    zarr.create_group(
        store,
        path=LABEL_IMAGE,
        zarr_format=3,
        attributes=label_image_attributes(len(labels.shapes), voxel),
    )
    for spec, paths in ((labels, label_paths), (image, image_paths)):
        if spec is None:
            continue
        for shape, path, edge in zip(spec.shapes, paths, edges, strict=True):
            chunk = tuple(min(c, s) for c, s in zip(spec.chunk, shape, strict=True))
            shard = tuple(
                c * min(edge, math.ceil(s / c)) for c, s in zip(chunk, shape, strict=True)
            )
            zarr.create_array(
                store,
                name=path,
                shape=shape,
                dtype=spec.dtype,
                chunks=chunk,
                shards=shard,
                compressors=codecs,
                fill_value=0,
                dimension_names=AXES,
                zarr_format=3,
            )
    return OmeZarrPyramid(root, label_paths, image_paths)
