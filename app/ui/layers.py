"""The napari layers of a dataset: grayscale, segmentation, selected bodies.

All three are multiscale and read lazily per block through
:class:`app.ui.lazy.CachedLevel` (never a whole level, never on the GUI
thread).  After an edit the model stages the new blocks in its cache and says
which blocks changed; the layers showing that level refresh at once (s0 first,
lower levels as the cascade finishes them).

The "selected bodies" layer is made on the first selection.  It shows small
highlight codes (:class:`app.ui.lazy.HighlightLevel`) through a fixed
colormap, so a new selection costs one re-slice, whatever its size.  A tool
may add *overlays* (the cleave preview): labels layers above the others,
refreshed with them, shown instead of the selected bodies.

In labelmap mode the segmentation shows bodies, or supervoxels after
:meth:`DatasetLayers.set_labels_kind`; its name says which.

Which of the three layers are visible is decided here only
(:meth:`DatasetLayers._apply_visibility`): the selected bodies when there is a
selection, the segmentation unless only the selection is shown, none of them
while a 3D view over them (the body surfaces) hides them
(:meth:`DatasetLayers.set_volumes_hidden`).

In a 2D view the blocks in view are those under the canvas (not the whole
region napari sliced); they are handed to the engine nearest the view centre
first.  The level shown is napari's choice unless the blocks it needs would
not fit in the model's block cache (a large volume seen whole): then a coarser
level is locked until the view needs fewer blocks, so the view never evicts
what it is showing.

What each layer holds: :mod:`app.ui.layer_data`; which blocks a view shows:
:mod:`app.ui.view_blocks`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import QObject, QTimer, Signal, Slot

from app.model.geometry import Coord
from app.model.storage.layout import IMAGE_GROUP, LABELS_GROUP, SUPERVOXELS
from app.ui.compat import camera, canvas_model, canvas_size
from app.ui.controller import Session
from app.ui.layer_data import (
    PATH,
    ROLE,
    highlight_colormap,
    highlight_levels,
    labels_arrays,
    layer_data,
    segmentation_name,
)
from app.ui.lazy import BlockLoader, Highlight
from app.ui.selection import SELECTION_COLORS, Selection
from app.ui.view_blocks import blocks_in_view, first_view_blocks, level_within

if TYPE_CHECKING:
    from app.model.dataset import Dataset

REFRESH_MS = 50
"""Least time between two repaints: the first change redraws at once, later
ones are gathered (software OpenGL repaints cost 100 ms and more)."""
LEVEL_BUDGET = 0.7
"""Share of the model's block cache that the blocks in view may take (all layers
together); beyond it a coarser level is shown."""
Visible = tuple[int, tuple[Coord, ...]]


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
        The selected bodies, drawn on the ``selected bodies`` layer (made on
        the first selection).
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
        self.overlays: list[Labels] = []
        """Layers a tool added with :meth:`add_overlay` (the cleave preview)."""
        self.labels_kind = LABELS_GROUP
        """What the segmentation shows: bodies (``"labels"``) or ``"supervoxels"``."""
        self.highlight = Highlight(len(SELECTION_COLORS))
        self.show_selected_only = False
        self.volumes_hidden = False
        """True while a 3D view over the layers hides all three (:meth:`set_volumes_hidden`)."""
        self._grayscale_shown = True
        self.refreshes = 0
        self.locked_level: int | None = None
        """The level this object locked the layers at (too many blocks at napari's), or None."""
        self._load_failed = False
        self._visible: Visible | None = None
        self._dirty: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._refresh_now)
        self._last_refresh = 0.0
        self._watching = False
        session.opened.connect(self.show)
        session.closed.connect(self.clear)
        session.blocks_changed.connect(self._on_blocks_changed)
        selection.changed.connect(self._on_selection)

    # -------------------------------------------------------------- layers
    @Slot(object)
    def show(self, dataset: Dataset) -> None:
        """Add (or adopt, if the napari reader made them) the dataset's layers.

        The blocks of the first view start loading before the layers are made,
        so that the first frame of the layers can already show them.
        """
        self.clear()
        self._load_failed = False
        self.loader = BlockLoader(dataset, self.session.runner, self)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        self.loader.idle.connect(self._maybe_settled)
        self._prefetch_first_view(dataset, self.loader)
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
        if self.segmentation is not None:
            self.viewer.layers.selection.active = self.segmentation
        if self.viewer.dims.ndim == 3:
            self.viewer.dims.axis_labels = ("z", "y", "x")
        self._watch(True)
        self.highlight.set(self.selection.ids)
        if len(self.selection):
            self._make_selected_layer(dataset)
        self._apply_visibility()
        self._on_view()

    def _prefetch_first_view(self, dataset: Dataset, loader: BlockLoader) -> None:
        """Ask the loader for the blocks of the view napari opens on an empty 2D viewer.

        That view fits the whole (y, x) plane in the canvas at the middle z
        plane, sliced at the level :func:`first_view_blocks` names.  Nothing
        is asked if the viewer already shows layers (the view stays where it
        is) or if those blocks would exceed :data:`LEVEL_BUDGET` of the block
        cache (the level guard then picks a coarser level).
        """
        size = canvas_size(self.viewer)
        if self.viewer.layers or size is None or int(self.viewer.dims.ndisplay) != 2:
            return
        shapes = [dataset.labels(s).shape for s in range(dataset.n_scales)]
        if len(shapes[0]) != 3:
            return
        level, coords = first_view_blocks(shapes, dataset.block_size, size)
        budget = LEVEL_BUDGET * dataset.cache_capacity()
        if len(coords) * self._block_bytes(dataset, level) > budget:
            return
        loader.request(LABELS_GROUP, level, coords)
        if level < dataset.n_image_scales:
            loader.request(IMAGE_GROUP, level, coords)

    def _make_selected_layer(self, dataset: Dataset) -> Labels:
        """Add the "selected bodies" layer above the segmentation (the active layer stays)."""
        layer = Labels(
            highlight_levels(dataset, self.loader, self.highlight),
            multiscale=True,
            name="selected bodies",
            opacity=0.85,
            colormap=highlight_colormap(),
            visible=not self.volumes_hidden,
            metadata={PATH: str(dataset.path), ROLE: "selection"},
        )
        self._insert_above(self.segmentation, layer)
        self.selected = layer
        return layer

    def _insert_above(self, below: Labels | None, layer: Labels) -> None:
        """Insert ``layer`` just above ``below`` (on top if absent), at the locked level;
        the active layer stays."""
        if self.locked_level is not None:
            layer.locked_data_level = min(self.locked_level, len(layer.level_shapes) - 1)
        layers = self.viewer.layers
        active = layers.selection.active
        index = layers.index(below) + 1 if below in layers else len(layers)
        layers.insert(index, layer)
        layers.selection.active = active

    def add_overlay(self, levels: list[Any], **kwargs: Any) -> Labels:
        """Add a multiscale labels layer above the dataset's (``kwargs``: napari's),
        refreshed as theirs are; while there is one, the selected bodies are hidden.

        ``levels`` read through :attr:`loader` (e.g.
        :func:`~app.ui.layer_data.highlight_levels`).  Removed by
        :meth:`remove_overlay` or with the dataset's layers.
        """
        layer = Labels(levels, multiscale=True, visible=not self.volumes_hidden, **kwargs)
        below = self.overlays[-1] if self.overlays else self.selected or self.segmentation
        self._insert_above(below, layer)
        self.overlays.append(layer)
        self._apply_visibility()
        return layer

    def remove_overlay(self, layer: Labels | None) -> None:
        """Remove an overlay (nothing if it is not one)."""
        if layer not in self.overlays:
            return
        self.overlays.remove(layer)
        if layer in self.viewer.layers:
            self.viewer.layers.remove(layer)
        self._apply_visibility()

    def refresh_overlay(self, layer: Labels | None) -> None:
        """Re-slice an overlay (what it shows changed) at the next repaint."""
        if layer is not None and layer in self.overlays:
            self._dirty.add(layer.name)
            self._schedule()

    def set_labels_kind(self, kind: str) -> None:
        """Show bodies (``"labels"``) or supervoxels (``"supervoxels"``, labelmap mode)
        in the segmentation layer; renamed to say which."""
        dataset, seg = self.session.dataset, self.segmentation
        if kind == self.labels_kind or dataset is None or seg is None:
            return
        if kind == SUPERVOXELS and not dataset.labelmap:
            raise ValueError(f"{dataset.path.name} is in voxel mode: it has no supervoxels")
        self.labels_kind = kind
        for level, array in zip(seg.data, labels_arrays(dataset, kind), strict=True):
            level.retarget(array, kind)
        seg.name = segmentation_name(dataset, kind)
        self.refresh()

    def _watch(self, on: bool) -> None:
        """Follow (or stop following) the camera, the dims and the segmentation's slices."""
        if on == self._watching:
            return
        self._watching = on
        cam, dims = camera(self.viewer), self.viewer.dims
        events = [cam.events.zoom, cam.events.center, dims.events.ndisplay, dims.events.point]
        canvas = canvas_model(self.viewer)
        if canvas is not None:
            events.append(canvas.events.size)
        if self.segmentation is not None:
            events.append(self.segmentation.events.set_data)
        for event in events:
            if on:
                event.connect(self._on_view)
            else:
                event.disconnect(self._on_view)

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
        self._watch(False)
        self._visible = None
        self.locked_level = None
        self.labels_kind = LABELS_GROUP
        for layer in self.overlays:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.overlays = []
        for role in ("selected", "segmentation", "grayscale"):
            layer = getattr(self, role)
            if layer is not None and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
            setattr(self, role, None)
        self._dirty.clear()
        self._timer.stop()

    @property
    def labels_layers(self) -> list[Labels]:
        """The layers showing labels (segmentation, selected bodies, overlays)."""
        return [layer for layer in (self.segmentation, self.selected, *self.overlays)
                if layer is not None]

    @property
    def layers(self) -> list[Image | Labels]:
        """Every layer shown (grayscale, segmentation, selected bodies)."""
        return [layer for layer in (self.grayscale, *self.labels_layers) if layer is not None]

    # ------------------------------------------------------------ selection
    @Slot(object)
    def _on_selection(self, ids: list[int]) -> None:
        self.highlight.set(ids)
        dataset = self.session.dataset
        if self.selected is None:
            if ids and dataset is not None and self.segmentation is not None:
                self._make_selected_layer(dataset)
        elif ids and self.selected.visible:
            self._dirty.add(self.selected.name)
            self._schedule()
        self._apply_visibility()  # (a hidden layer shown again is re-sliced by napari)

    def set_show_selected_only(self, on: bool) -> None:
        """Hide every body but the selected ones."""
        self.show_selected_only = bool(on)
        self._apply_visibility()

    def set_volumes_hidden(self, hidden: bool) -> None:
        """Hide the three layers (a 3D view over them: rendered, they would hide it),
        or show them again by their own rules; the grayscale as it was before."""
        hidden = bool(hidden)
        if hidden == self.volumes_hidden:
            return
        if hidden:
            self._grayscale_shown = self.grayscale is None or bool(self.grayscale.visible)
        self.volumes_hidden = hidden
        if not hidden and self.grayscale is not None:
            _set_visible(self.grayscale, self._grayscale_shown)
        self._apply_visibility()

    def _apply_visibility(self) -> None:
        """Show or hide the layers: the one place their visibility is decided (an
        overlay, e.g. the cleave preview, shows the selected body instead of the
        selected bodies' layer)."""
        hidden, selected = self.volumes_hidden, bool(len(self.selection))
        if self.grayscale is not None and hidden:
            _set_visible(self.grayscale, False)
        if self.segmentation is not None:
            _set_visible(self.segmentation,
                         not hidden and not (self.show_selected_only and selected))
        if self.selected is not None:
            _set_visible(self.selected, not hidden and selected and not self.overlays)
        for layer in self.overlays:
            _set_visible(layer, not hidden)

    # ----------------------------------------------------------------- view
    def visible_blocks(self) -> Visible | None:
        """The scale shown and its blocks in view, nearest the view centre first
        (:func:`~app.ui.view_blocks.blocks_in_view`)."""
        dataset, seg = self.session.dataset, self.segmentation
        if dataset is None or seg is None:
            return None
        return blocks_in_view(self.viewer, seg, dataset.block_size)

    def _on_view(self, _event: object = None) -> None:
        """The view moved (or was re-sliced): check the level, tell the model what is in view."""
        self._guard_level()
        self._report_visible()

    def _report_visible(self) -> None:
        """Tell the model which blocks are in view (centre first): edits compute those first."""
        dataset = self.session.dataset
        visible = self.visible_blocks()
        if dataset is None or visible is None or visible == self._visible:
            return
        self._visible = visible
        dataset.set_visible(*visible)

    def view_level(self) -> int | None:
        """The level to lock the layers at, or None to leave the choice to napari.

        None unless, in a 2D view, the blocks napari's level needs under the
        canvas (one plane of blocks per layer) exceed :data:`LEVEL_BUDGET` of
        the block cache; then the finest coarser level whose whole plane fits
        (:func:`~app.ui.view_blocks.level_within`).
        """
        dataset, seg = self.session.dataset, self.segmentation
        if dataset is None or seg is None:
            return None
        budget = LEVEL_BUDGET * dataset.cache_capacity()
        return level_within(self.viewer, seg, dataset.block_size,
                            lambda level: budget / self._block_bytes(dataset, level))

    @staticmethod
    def _block_bytes(dataset: Dataset, level: int) -> int:
        """Decoded bytes of one block of every layer shown at ``level``."""
        voxels = int(np.prod(dataset.block_size))
        total = voxels * np.dtype(dataset.labels(0).dtype).itemsize
        if dataset.image_dtype is not None and level < dataset.n_image_scales:
            total += voxels * dataset.image_dtype.itemsize
        return total

    def _guard_level(self) -> None:
        """Lock the layers at :meth:`view_level` (or unlock them); a user's lock is kept."""
        want = self.view_level()
        if want == self.locked_level:
            return
        previous, self.locked_level = self.locked_level, want
        for layer in self.layers:
            if layer.locked_data_level not in (None, previous):
                continue
            layer.locked_data_level = (
                None if want is None else min(want, len(layer.level_shapes) - 1))

    # ------------------------------------------------------------- refresh
    @Slot(int, object)
    def _on_blocks_changed(self, scale: int, coords: list[Any]) -> None:
        """Repaint the labels layers showing ``scale`` if a changed block is in view
        (a repaint for blocks out of view would only hold back the next one)."""
        visible = self._visible
        in_view = visible is None or (
            visible[0] == scale and not {tuple(c) for c in coords}.isdisjoint(visible[1])
        )
        if not in_view:
            return
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
        layers = [self.grayscale] if kind == IMAGE_GROUP else self.labels_layers
        for layer in layers:
            if layer is not None:
                self._dirty.add(layer.name)
        self._schedule()

    def refresh(self) -> None:
        """Refresh every layer now (re-slices from the cache; no I/O)."""
        for layer in self.layers:
            self._dirty.add(layer.name)
        self._refresh_now()

    @Slot()
    def _refresh_now(self) -> None:
        self._last_refresh = time.perf_counter()
        dirty, self._dirty = self._dirty, set()
        for layer in self.layers:
            if layer.name in dirty and layer in self.viewer.layers:
                layer.refresh(extent=False)  # (the data's extent never changes)
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
