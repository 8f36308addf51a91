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

from app.model.storage.layout import IMAGE_GROUP, LABELS_GROUP
from app.ui.lazy import BlockLoader, CachedLevel, Highlight, HighlightLevel
from app.ui.selection import SELECTION_COLORS

if TYPE_CHECKING:
    from app.model.dataset import Dataset

ROLE = "segmend_role"
PATH = "segmend_path"


def level_arrays(dataset: Dataset, kind: str, loader: BlockLoader | None) -> list[CachedLevel]:
    """One :class:`CachedLevel` per scale of ``kind`` (labels or image), s0 first."""
    if kind == IMAGE_GROUP:
        arrays = [dataset.image(s) for s in range(dataset.n_image_scales)]
    else:
        arrays = [dataset.labels(s) for s in range(dataset.n_scales)]
    return [CachedLevel(a, dataset.block_size, loader) for a in arrays]


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
                "name": "segmentation",
                "multiscale": True,
                "opacity": 0.45,
                "metadata": {**meta, ROLE: "segmentation"},
            },
            "labels",
        )
    )
    return out


def highlight_colormap() -> CyclicLabelColormap:
    """The colours of the highlight codes: code ``i + 1`` is the ``i``-th selection
    colour, 0 (not selected) is transparent.

    A cyclic colormap over uint8 codes is coloured by a lookup table napari
    builds with NumPy (its direct colormaps compile a Numba dictionary first,
    about a second on the GUI thread).
    """
    return CyclicLabelColormap(colors=["#00000000", *SELECTION_COLORS], background_value=0)


def highlight_levels(dataset: Dataset, loader: BlockLoader | None,
                     highlight: Highlight) -> list[HighlightLevel]:
    """One :class:`HighlightLevel` per labels scale, s0 first."""
    return [HighlightLevel(dataset.labels(s), dataset.block_size, loader, highlight)
            for s in range(dataset.n_scales)]
