"""The napari layers of a dataset: grayscale, segmentation, selected bodies.

All three are multiscale and read lazily per block through
:class:`app.ui.lazy.CachedLevel` (never a whole level, never on the GUI
thread).  After an edit the model stages the new blocks in its cache and says
which blocks changed; the layers showing that level refresh at once (s0 first,
lower levels as the cascade finishes them).

Roles are kept in ``layer.metadata["segmend_role"]`` (``"grayscale"``,
``"segmentation"``, ``"selection"``) with ``metadata["segmend_path"]``, so the
napari reader's layers can be adopted by the proofreading widget.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from napari.layers import Image, Labels
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtCore import QObject, QTimer, Signal, Slot

from app.model.dataset import Dataset
from app.model.store import IMAGE, LABELS
from app.ui.controller import Session
from app.ui.lazy import BlockLoader, CachedLevel
from app.ui.selection import Selection, selection_color

ROLE = "segmend_role"
PATH = "segmend_path"
REFRESH_MS = 50
"""Least time between two repaints: the first change redraws at once, later
ones are gathered (software OpenGL repaints cost 100 ms and more)."""


def level_arrays(dataset: Dataset, kind: str, loader: BlockLoader | None) -> list[CachedLevel]:
    """One :class:`CachedLevel` per scale of ``kind`` (labels or image), s0 first."""
    if kind == IMAGE:
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
                level_arrays(dataset, IMAGE, loader),
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
            level_arrays(dataset, LABELS, loader),
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


def selection_colormap(ids: list[int]) -> DirectLabelColormap:
    """Only the selected ids coloured (by position), everything else transparent."""
    colors: dict[int | None, Any] = {None: (0.0, 0.0, 0.0, 0.0), 0: (0.0, 0.0, 0.0, 0.0)}
    for i, label in enumerate(ids):
        colors[int(label)] = selection_color(i)
    return DirectLabelColormap(color_dict=colors)


def _set_visible(layer: Any, visible: bool) -> None:
    """Change a layer's visibility only if it differs (napari re-slices on every set)."""
    if bool(layer.visible) != visible:
        layer.visible = visible


class DatasetLayers(QObject):
    """Shows the session's dataset in a napari viewer and keeps it current.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the layers go.
    session : Session
        Whose dataset is shown; layers are added on ``opened`` and removed on
        ``closed``.
    selection : Selection
        The selected bodies, drawn on the ``selected bodies`` layer.
    """

    settled = Signal()
    """Every visible block is loaded and drawn; emitted on the GUI thread."""

    def __init__(
        self, viewer: Any, session: Session, selection: Selection, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.session = session
        self.selection = selection
        self.loader: BlockLoader | None = None
        self.grayscale: Image | None = None
        self.segmentation: Labels | None = None
        self.selected: Labels | None = None
        self.show_selected_only = False
        self.refreshes = 0
        self._load_failed = False
        self._visible: tuple[int, frozenset[tuple[int, int, int]]] | None = None
        self._dirty: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._refresh_now)
        self._last_refresh = 0.0
        session.opened.connect(self.show)
        session.closed.connect(self.clear)
        session.blocks_changed.connect(self._on_blocks_changed)
        selection.changed.connect(self._on_selection)

    # -------------------------------------------------------------- layers
    @Slot(object)
    def show(self, dataset: Dataset) -> None:
        """Add (or adopt, if the napari reader made them) the dataset's layers."""
        self.clear()
        self._load_failed = False
        self.loader = BlockLoader(dataset, self.session.runner, self)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        self.loader.idle.connect(self._maybe_settled)
        adopted = {
            layer.metadata.get(ROLE): layer
            for layer in self.viewer.layers
            if layer.metadata.get(PATH) == str(dataset.path)
        }
        for data, kwargs, kind in layer_data(dataset, self.loader):
            role = kwargs["metadata"][ROLE]
            layer = adopted.get(role)
            if layer is not None:
                layer.data = data
            elif kind == "image":
                layer = self.viewer.add_image(data, **kwargs)
            else:
                layer = self.viewer.add_labels(data, **kwargs)
            setattr(self, role, layer)
        labels = level_arrays(dataset, LABELS, self.loader)
        self.selected = adopted.get("selection") or self.viewer.add_labels(
            labels,
            multiscale=True,
            name="selected bodies",
            opacity=0.85,
            colormap=selection_colormap(self.selection.ids),
            metadata={PATH: str(dataset.path), ROLE: "selection"},
        )
        self.selected.visible = bool(len(self.selection))
        if self.segmentation is not None:
            self.viewer.layers.selection.active = self.segmentation
        if self.viewer.dims.ndim == 3:
            self.viewer.dims.axis_labels = ("z", "y", "x")
        if self.segmentation is not None:
            self.segmentation.events.set_data.connect(self._report_visible)
        self._apply_visibility()
        self._report_visible()

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        """Show the first unreadable block of a dataset (not one box per block)."""
        if not self._load_failed:
            self._load_failed = True
            self.session.reporter.error(message + " (shown as background)")

    @Slot()
    def clear(self) -> None:
        """Remove the layers (the dataset was closed)."""
        if self.loader is not None:
            self.loader.close()
            self.loader = None
        if self.segmentation is not None:
            self.segmentation.events.set_data.disconnect(self._report_visible)
        self._visible = None
        for role in ("selected", "segmentation", "grayscale"):
            layer = getattr(self, role)
            if layer is not None and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
            setattr(self, role, None)
        self._dirty.clear()
        self._timer.stop()

    @property
    def labels_layers(self) -> list[Labels]:
        """The layers showing labels (segmentation, selected bodies)."""
        return [layer for layer in (self.segmentation, self.selected) if layer is not None]

    # ------------------------------------------------------------ selection
    @Slot(object)
    def _on_selection(self, ids: list[int]) -> None:
        if self.selected is None:
            return
        self.selected.colormap = selection_colormap(ids)
        _set_visible(self.selected, bool(ids))
        self._apply_visibility()

    def set_show_selected_only(self, on: bool) -> None:
        """Hide every body but the selected ones."""
        self.show_selected_only = bool(on)
        self._apply_visibility()

    def _apply_visibility(self) -> None:
        if self.segmentation is not None:
            _set_visible(self.segmentation, not (self.show_selected_only and len(self.selection)))

    def visible_blocks(self) -> tuple[int, frozenset[tuple[int, int, int]]] | None:
        """The scale shown and the blocks of it in view (from napari's corner pixels)."""
        dataset, seg = self.session.dataset, self.segmentation
        if dataset is None or seg is None:
            return None
        level = int(seg.data_level)
        corners = np.asarray(seg.corner_pixels, dtype=float)
        if corners.shape != (2, 3):
            return None
        shape = np.asarray(seg.level_shapes[level])
        lo, hi = corners[0].copy(), corners[1].copy()
        point = np.asarray(self.viewer.dims.point, dtype=float)[-3:]
        factors = np.asarray(seg.downsample_factors[level], dtype=float)
        for d in self.viewer.dims.not_displayed:
            lo[d] = hi[d] = np.round(point[d] / factors[d])
        lo = np.clip(lo, 0, shape - 1).astype(int)
        hi = np.clip(hi, 0, shape - 1).astype(int)
        bs = dataset.block_size
        ranges = [range(int(a) // b, int(e) // b + 1) for a, e, b in zip(lo, hi, bs, strict=True)]
        coords = frozenset((z, y, x) for z in ranges[0] for y in ranges[1] for x in ranges[2])
        return level, coords

    def _report_visible(self, _event: object = None) -> None:
        """Tell the model which blocks are in view: edits compute those first."""
        dataset = self.session.dataset
        visible = self.visible_blocks()
        if dataset is None or visible is None or visible == self._visible:
            return
        self._visible = visible
        dataset.set_visible(*visible)

    # ------------------------------------------------------------- refresh
    @Slot(int, object)
    def _on_blocks_changed(self, scale: int, _coords: list[Any]) -> None:
        for layer in self.labels_layers:
            if int(getattr(layer, "data_level", 0)) == scale:
                self._dirty.add(layer.name)
        if self._dirty:
            self._schedule()

    def _schedule(self) -> None:
        """Repaint as soon as allowed: at once, or REFRESH_MS after the last one."""
        if self._timer.isActive():
            return
        since = (time.perf_counter() - self._last_refresh) * 1000
        self._timer.start(max(0, int(REFRESH_MS - since)))

    @Slot(str, int)
    def _on_loaded(self, kind: str, scale: int) -> None:
        layers = [self.grayscale] if kind == IMAGE else self.labels_layers
        for layer in layers:
            if layer is not None:
                self._dirty.add(layer.name)
        self._schedule()

    def refresh(self) -> None:
        """Refresh every layer now (re-slices from the cache; no I/O)."""
        for layer in (self.grayscale, *self.labels_layers):
            if layer is not None:
                self._dirty.add(layer.name)
        self._refresh_now()

    @Slot()
    def _refresh_now(self) -> None:
        self._last_refresh = time.perf_counter()
        dirty, self._dirty = self._dirty, set()
        for layer in (self.grayscale, *self.labels_layers):
            if layer is not None and layer.name in dirty and layer in self.viewer.layers:
                layer.refresh()
                self.refreshes += 1
        self._maybe_settled()

    def _maybe_settled(self) -> None:
        if self.is_settled():
            self.settled.emit()

    def is_settled(self) -> bool:
        """True when no block read or refresh is pending for the current view."""
        return (
            (self.loader is None or not self.loader.busy)
            and not self._timer.isActive()
            and not self._dirty
        )
