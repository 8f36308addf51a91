"""Shared fixtures: real data from the shipped cube, and pyramids built from it."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.model.build import build_pyramid
from app.model.demo import demo_cube_path


@pytest.fixture(scope="session")
def cube_path() -> Path:
    """The real FIB-SEM cube shipped in resources/."""
    return demo_cube_path()


@pytest.fixture(scope="session")
def real_labels(cube_path: Path) -> NDArray[np.uint64]:
    """An odd-shaped crop (37, 70, 101) of the automated segmentation."""
    with h5py.File(cube_path, "r") as f:
        return f["automated/bodies"][100:137, 40:110, 20:121]


@pytest.fixture(scope="session")
def real_image(cube_path: Path) -> NDArray[np.uint8]:
    """The grayscale matching :func:`real_labels`."""
    with h5py.File(cube_path, "r") as f:
        return f["raw"][100:137, 40:110, 20:121]


@pytest.fixture(scope="session")
def real_sources(
    tmp_path_factory: pytest.TempPathFactory,
    real_labels: NDArray[np.uint64],
    real_image: NDArray[np.uint8],
) -> tuple[str, str]:
    """The crop written as plain HDF5 datasets: (labels spec, image spec)."""
    path = tmp_path_factory.mktemp("sources") / "plain.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("seg", data=real_labels, chunks=(16, 16, 16), compression="gzip")
        f.create_dataset("em", data=real_image)
    return f"{path}:/seg", f"{path}:/em"


@pytest.fixture(params=["labelmap", "labelblk"])
def rule(request: pytest.FixtureRequest) -> str:
    """Both downres rules."""
    return str(request.param)


@pytest.fixture
def small_pyramid(tmp_path: Path, real_sources: tuple[str, str], rule: str) -> Path:
    """The real crop built with 16³ blocks (several levels, partial edge blocks)."""
    labels, image = real_sources
    return build_pyramid(
        labels, tmp_path / "small.h5", image=image, block_size=(16, 16, 16), rule=rule
    )
