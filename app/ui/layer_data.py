"""What a dataset's napari layers hold: lazily read levels, their napari
``LayerData`` tuples, and the highlight levels of the selected bodies.

Roles are kept in ``layer.metadata["segmend_role"]`` (``"grayscale"``,
``"segmentation"``, ``"selection"``) with ``metadata["segmend_path"]``, so the
napari reader's layers can be adopted by the proofreading widget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils.colormaps import CyclicLabelColormap

from app.model.storage.layout import IMAGE_GROUP, LABELS_GROUP, SUPERVOXELS
from app.ui.lazy import BlockLoader, CachedLevel, Highlight, HighlightLevel
from app.ui.selection import SELECTION_COLORS

if TYPE_CHECKING:
    from app.model.dataset import Dataset
    from app.model.storage.arrays import LevelArray

ROLE = "segmend_role"
PATH = "segmend_path"


def level_arrays(dataset: Dataset, kind: str, loader: BlockLoader | None) -> list[CachedLevel]:
    """One :class:`CachedLevel` per scale of ``kind`` (labels, supervoxels or image), s0 first.

    Labels are bodies in labelmap mode; supervoxels are the voxels' own ids
    (read as blocks of kind ``"supervoxels"``, so that a level never mixes them
    with bodies).
    """
    if kind == IMAGE_GROUP:
        arrays = [dataset.image(s) for s in range(dataset.n_image_scales)]
    else:
        arrays = labels_arrays(dataset, kind)
    return [CachedLevel(a, dataset.block_size, loader, kind=kind) for a in arrays]


def labels_arrays(dataset: Dataset, kind: str = LABELS_GROUP) -> list[LevelArray]:
    """The model's labels levels (bodies) or, with ``kind`` ``"supervoxels"``, its
    supervoxel levels, s0 first."""
    levels = dataset.supervoxels if kind == SUPERVOXELS else dataset.labels
    return [levels(s) for s in range(dataset.n_scales)]


def segmentation_name(dataset: Dataset, kind: str = LABELS_GROUP) -> str:
    """The segmentation layer's name: which view it shows, in labelmap mode."""
    if not dataset.labelmap:
        return "segmentation"
    return f"segmentation: {'supervoxels' if kind == SUPERVOXELS else 'bodies'}"


def image_contrast(dataset: Dataset) -> tuple[float, float]:
    """Contrast limits from the grayscale dtype (no data is read)."""
    dtype = dataset.image_dtype
    return (
        (0.0, float(np.iinfo(dtype).max))
        if dtype is not None and dtype.kind in "ui"
        else (0.0, 1.0)
    )


LayerData = tuple[Any, dict[str, Any], str]


def layer_data(dataset: Dataset, loader: BlockLoader | None) -> list[LayerData]:
    """napari ``LayerData`` tuples (grayscale if any, segmentation) for a dataset."""
    meta = {PATH: str(dataset.path)}
    out: list[LayerData] = []
    if dataset.has_image:
        out.append(
            (
                level_arrays(dataset, IMAGE_GROUP, loader),
                {
                    "name": "grayscale",
                    "multiscale": True,
                    "contrast_limits": image_contrast(dataset),
                    "metadata": {**meta, ROLE: "grayscale"},
                },
                "image",
            )
        )
    out.append(
        (
            level_arrays(dataset, LABELS_GROUP, loader),
            {
                "name": segmentation_name(dataset),
                "multiscale": True,
                "opacity": 0.45,
                "metadata": {**meta, ROLE: "segmentation"},
            },
            "labels",
        )
    )
    return out


def highlight_colormap(colors: tuple[str, ...] = SELECTION_COLORS) -> CyclicLabelColormap:
    """The colours of the highlight codes: code ``i + 1`` is ``colors[i]`` (by
    default the ``i``-th selection colour), 0 (not highlighted) is transparent.

    A cyclic colormap over uint8 codes is coloured by a lookup table napari
    builds with NumPy (its direct colormaps compile a Numba dictionary first,
    about a second on the GUI thread).
    """
    return CyclicLabelColormap(colors=["#00000000", *colors], background_value=0)


def highlight_levels(dataset: Dataset, loader: BlockLoader | None, highlight: Highlight,
                     kind: str = LABELS_GROUP) -> list[HighlightLevel]:
    """One :class:`HighlightLevel` per scale of ``kind`` (labels or supervoxels), s0 first."""
    return [HighlightLevel(a, dataset.block_size, loader, highlight, kind=kind)
            for a in labels_arrays(dataset, kind)]
