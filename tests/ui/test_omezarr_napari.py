"""An export opened by napari-ome-zarr in napari: an image layer and a labels layer,
every scale, the data equal to the HDF5 pyramid's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.model.bulk.build import build_pyramid
from app.model.omezarr.export import export_ome_zarr

pytestmark = pytest.mark.gui


def levels(path: Path, kind: str) -> list[NDArray[Any]]:
    with h5py.File(path, "r") as f:
        return [f[f"{kind}/s{k}"][...] for k in range(len(f[kind]))]


def assert_layer(layer: Any, want: list[NDArray[Any]]) -> None:
    """A multiscale layer with ``want``'s scales, equal to them, in nanometres."""
    assert layer.multiscale and len(layer.data) == len(want)
    for k, (got, expected) in enumerate(zip(layer.data, want, strict=True)):
        assert np.array_equal(np.asarray(got), expected), f"{layer.name} scale {k}"
    assert list(layer.scale) == [30.0, 8.0, 8.0]
    assert [str(u) for u in layer.units] == ["nanometer"] * 3


def test_napari_ome_zarr_opens_the_image_and_the_labels(
    make_napari_viewer: Callable[..., Any], tmp_path: Path, real_sources: tuple[str, str]
) -> None:
    labels, image = real_sources
    built = build_pyramid(labels, tmp_path / "p.h5", image=image, block_size=(16, 16, 16),
                          voxel_size_nm=(30.0, 8.0, 8.0))
    out = export_ome_zarr(built, tmp_path / "p.zarr")
    viewer = make_napari_viewer()
    layers = viewer.open(str(out), plugin="napari-ome-zarr")
    assert [type(layer).__name__ for layer in layers] == ["Image", "Labels"]
    assert_layer(layers[0], levels(built, "image"))
    assert_layer(layers[1], levels(built, "labels"))
    assert len(levels(built, "labels")) == 4


def test_without_grayscale_napari_shows_the_labels_and_writes_nothing(
    make_napari_viewer: Callable[..., Any], tmp_path: Path, real_labels: NDArray[np.uint64]
) -> None:
    """The root image names the label arrays; napari-ome-zarr reads it without
    creating a Zarr group two folders up (which it does for a root label image)."""
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    np.save(folder / "l.npy", real_labels)
    built = build_pyramid(folder / "l.npy", folder / "l.h5", block_size=(16, 16, 16),
                          voxel_size_nm=(30.0, 8.0, 8.0))
    out = export_ome_zarr(built, folder / "l.zarr")
    before = sorted(tmp_path.rglob("*"))
    viewer = make_napari_viewer()
    layers = viewer.open(str(out), plugin="napari-ome-zarr")
    assert [type(layer).__name__ for layer in layers] == ["Image", "Labels"]
    assert_layer(layers[1], levels(built, "labels"))
    assert sorted(tmp_path.rglob("*")) == before
