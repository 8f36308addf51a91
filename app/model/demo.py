"""The demo dataset: the real FIB-SEM cube shipped in ``resources/``."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

from app.model.build import ProgressCallback, build_pyramid

DEMO_CUBE = "fib-medulla-250.h5"
DEMO_VOXEL_SIZE_NM = (10.0, 10.0, 10.0)
DEMO_ATTRIBUTION = (
    "FIB-SEM Drosophila medulla, janelia-flyem/neuroproof_examples training_sample2 (CC BY)"
)


def demo_cube_path() -> Path:
    """Path of the shipped cube (grayscale, automated and ground-truth segmentations)."""
    with as_file(files("app.resources") / DEMO_CUBE) as path:
        return Path(path)


def build_demo(out: str | Path, *, progress: ProgressCallback | None = None) -> Path:
    """Build the demo pyramid: grayscale + the automated segmentation to proofread."""
    cube = demo_cube_path()
    return build_pyramid(
        f"{cube}:/automated/bodies",
        out,
        image=f"{cube}:/raw",
        voxel_size_nm=DEMO_VOXEL_SIZE_NM,
        progress=progress,
        created_by=f"segmend demo; data: {DEMO_ATTRIBUTION}",
    )
