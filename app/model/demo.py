"""The demo dataset: the real FIB-SEM cube shipped in ``resources/``, built into
a pyramid in the user's data directory.

The demo is in labelmap mode: the cube's automated supervoxels with their
agglomeration mapping.  The app (``segmend demo``) and the napari plugin's
sample data share that one pyramid (:func:`default_demo_path`): it is built
once, reused, edits made to it persist, and :func:`build_demo` with
``discard_journal`` makes a fresh copy.  ``segmend demo --voxel`` builds the
voxel-mode demo beside it (``labelmap=False`` here): the cube's automated
bodies.  It keeps the name the only demo had before labelmap mode became the
default (``demo.h5``), so a demo an older segmend built (voxel mode, perhaps
edited) is the voxel one, never taken for the default; and
:func:`demo_is_current` checks the mode of any demo it is given.

Importing this module is cheap (the CLI asks for :func:`default_demo_path`
before it knows whether it will build anything): the builder and the store
load when first used.
"""

from __future__ import annotations

import os
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING

from app.model.errors import FormatError

if TYPE_CHECKING:
    from app.model.bulk.build import ProgressCallback

DEMO_CUBE = "fib-medulla-250.h5"
DEMO_SYNAPSES = "fib-medulla-250-synapses.json"
"""The cube's synthetic synapses (DVID's element JSON; see ``resources/README.md``)."""
SYNAPSE_SET = "synapses"
"""The annotation set the demo's synapses are posted to."""
DEMO_VOXEL_SIZE_NM = (10.0, 10.0, 10.0)
DEMO_ATTRIBUTION = (
    "FIB-SEM Drosophila medulla, janelia-flyem/neuroproof_examples training_sample2 (CC BY)"
)


def default_demo_path(*, labelmap: bool = True) -> Path:
    """Where the demo pyramid lives: ``$XDG_DATA_HOME/segmend/demo-labelmap.h5``
    (``~/.local/share/segmend/demo-labelmap.h5`` without ``XDG_DATA_HOME``);
    ``demo.h5`` there for the voxel-mode one (``labelmap`` false)."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "segmend" / ("demo-labelmap.h5" if labelmap else "demo.h5")


def demo_cube_path() -> Path:
    """Path of the shipped cube (grayscale, automated and ground-truth segmentations)."""
    with as_file(files("app.resources") / DEMO_CUBE) as path:
        return Path(path)


def build_demo(out: str | Path, *, progress: ProgressCallback | None = None,
               discard_journal: bool = False, labelmap: bool = True) -> Path:
    """Build the demo pyramid at ``out`` (and its folder): grayscale + the automated
    segmentation to proofread: its supervoxels and their mapping to bodies
    (labelmap mode), or with ``labelmap`` false its bodies (voxel mode); and
    the cube's synthetic synapses posted to its ``synapses`` set (which makes
    its journal, and builds its label index).

    ``discard_journal``: replace an edited demo, deleting its edits (a fresh copy).

    Raises
    ------
    app.model.errors.WriterLockedError
        If a process has ``out`` open for writing.
    app.model.bulk.output.EditedOutputError
        If ``out`` has edits (a journal) and ``discard_journal`` is false.
    """
    from app.model.bulk.build import build_pyramid
    from app.model.dataset import open_dataset

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    cube = demo_cube_path()
    path = build_pyramid(
        f"{cube}:/automated/{'supervoxels' if labelmap else 'bodies'}",
        out,
        image=f"{cube}:/raw",
        mapping=f"{cube}:/automated/mapping" if labelmap else None,
        voxel_size_nm=DEMO_VOXEL_SIZE_NM,
        progress=progress,
        created_by=f"segmend demo; data: {DEMO_ATTRIBUTION}",
        discard_journal=discard_journal,
    )
    with open_dataset(path, "r+") as ds, as_file(files("app.resources") / DEMO_SYNAPSES) as src:
        ds.annotations.post(SYNAPSE_SET, Path(src).read_bytes())
    return path


def demo_is_current(path: str | Path, *, labelmap: bool | None = True) -> bool:
    """True if ``path`` holds a demo pyramid this segmend can open (native, with
    grayscale, in labelmap mode or not as ``labelmap`` says; either with None);
    False if it is missing, unreadable, from an older format or in the other
    mode (build it again)."""
    from app.model.storage.store import PyramidStore

    if not Path(path).exists():
        return False
    try:
        store = PyramidStore.open(path, "r")
    except Exception:
        return False
    try:
        if not (store.native and store.has_image):
            return False
        return labelmap is None or store.mode == ("labelmap" if labelmap else "voxel")
    except FormatError:  # (an unknown mode)
        return False
    finally:
        store.close()


def ensure_demo(path: str | Path, *, progress: ProgressCallback | None = None,
                labelmap: bool = True) -> Path:
    """The demo pyramid at ``path`` (labelmap mode unless ``labelmap`` is false),
    built first unless :func:`demo_is_current`."""
    if not demo_is_current(path, labelmap=labelmap):
        build_demo(path, progress=progress, labelmap=labelmap)
    return Path(path)
