"""napari plugin entry points (see ``app/napari.yaml``): reader, sample data.

The dock widget is :class:`app.ui.proofreading.ProofreadingWidget` itself --
the same class the segmend app docks.

- :func:`get_reader` opens segmend pyramids (and pyramids of other tools,
  OME-Zarr stores among them, read-only) as multiscale grayscale +
  segmentation layers, and plain HDF5 label volumes as a (lazy, read-only)
  labels layer.  A pyramid opened here is proofread by the widget, which
  adopts its layers.  The layers' blocks are read on a worker pool
  (:mod:`app.ui.reader_loads`), plain volumes through
  :mod:`app.model.storage.volumes`, which opens the file only while it reads;
  the GUI thread reads only the file's layout when napari calls the reader.
- :func:`demo_sample` opens the demo pyramid the app uses
  (:func:`app.model.demo.default_demo_path`, in the user's data folder; labelmap
  mode), built from the shipped real cube the first time; edits made to it persist.
  :func:`fresh_demo_sample` builds it again first, discarding those edits.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.model.errors import FormatError
from app.model.storage.ome_zarr_read import holds_ome_zarr_pyramid, is_zarr_path
from app.model.storage.volumes import (
    VolumeArray,
    VolumeSource,
    holds_pyramid,
    image_volumes,
    is_hdf5_file,
    label_volumes,
    list_volumes,
)
from app.ui import registry
from app.ui.layer_data import PATH, ROLE, layer_data
from app.ui.reader_loads import ReaderLoads

LayerData = tuple[Any, dict[str, Any], str]
SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """napari reader hook: a reader for segmend pyramids, OME-Zarr stores holding
    a label pyramid, and label HDF5 files; or None."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    if is_zarr_path(p):
        return read_path if holds_ome_zarr_pyramid(p) else None
    if p.suffix.lower() not in SUFFIXES or not is_hdf5_file(p):
        return None
    return read_path


def read_path(path: str | list[str]) -> list[LayerData]:
    """Layers for one HDF5 file, a pyramid (multiscale) or plain 3D volumes, or
    for an OME-Zarr store's pyramid (read-only).

    Raises
    ------
    app.model.errors.FormatError
        If the file holds neither a pyramid nor a 3D integer volume, or the
        store no OME-Zarr label pyramid.
    """
    if isinstance(path, list):
        path = path[0]
    if is_zarr_path(path) or holds_pyramid(path):
        dataset = registry.open_shared(path)
        return layer_data(dataset, ReaderLoads(dataset).loader)
    return read_plain(path)


def read_plain(path: str) -> list[LayerData]:
    """A plain label volume (and a grayscale one if any) as read-only lazy layers.

    Raises
    ------
    app.model.errors.FormatError
        If the file cannot be read or holds no 3D label volume.
    """
    volumes = list_volumes(path)
    labels = label_volumes(volumes)
    if not labels:
        raise FormatError(f"{path}: no 3D label volume found")
    images = image_volumes(volumes, labels[0])
    shown = [*images[:1], labels[0]]
    arrays = [VolumeArray(path, info) for info in shown]
    loads = ReaderLoads(VolumeSource(arrays))
    out: list[LayerData] = []
    for info, array in zip(shown, arrays, strict=True):
        is_labels = info is labels[0]
        kwargs: dict[str, Any] = {
            "name": f"{Path(path).stem} {'labels' if is_labels else 'grayscale'}",
            "metadata": {"segmend_source": str(path), "segmend_dataset": info.name},
        }
        if not is_labels:
            kwargs["contrast_limits"] = (0, int(np.iinfo(info.dtype).max))
        out.append((loads.level(array, info.block_size), kwargs,
                    "labels" if is_labels else "image"))
    return out


def demo_sample() -> list[LayerData]:
    """napari sample data: the demo pyramid (built from the shipped FIB-SEM cube
    unless an up-to-date one is there), the one ``segmend demo`` opens."""
    from app.model.demo import default_demo_path, ensure_demo

    return read_path(str(ensure_demo(default_demo_path())))


def fresh_demo_sample() -> list[LayerData]:
    """napari sample data: the demo pyramid built again, its edits discarded.

    Raises
    ------
    app.model.errors.WriterLockedError
        If a process (this one too) has the demo open for writing.
    """
    from app.model.demo import build_demo, default_demo_path

    return read_path(str(build_demo(default_demo_path(), discard_journal=True)))


__all__ = ["PATH", "ROLE", "demo_sample", "fresh_demo_sample", "get_reader", "read_path",
           "read_plain"]
