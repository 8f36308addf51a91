"""The demo dataset: the real FIB-SEM cube shipped in ``resources/``."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

from app.model.bulk.build import ProgressCallback, build_pyramid
from app.model.storage.store import PyramidStore

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


def demo_is_current(path: str | Path) -> bool:
    """True if ``path`` holds a demo pyramid this segmend can open (native, with grayscale);
    False if it is missing, unreadable or from an older format (build it again)."""
    if not Path(path).exists():
        return False
    try:
        store = PyramidStore.open(path, "r")
    except Exception:
        return False
    try:
        return store.native and store.has_image
    finally:
        store.close()


def ensure_demo(path: str | Path, *, progress: ProgressCallback | None = None) -> Path:
    """The demo pyramid at ``path``, built first unless :func:`demo_is_current`."""
    if not demo_is_current(path):
        build_demo(path, progress=progress)
    return Path(path)
