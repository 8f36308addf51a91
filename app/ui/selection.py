"""The selected bodies, and picking them with the mouse.

:class:`Selection` is an ordered set of body ids (the first one is the merge
target).  :class:`ClickPicker` turns clicks in the viewer into selections: a
click selects the body under the cursor, a shift-click adds it (or removes it
if already selected).  An alt-click picks the supervoxel under the cursor (a
labelmap dataset's) and leaves the selection alone: the cleave tool and the
status line use it.  The label under a click is read from s0 on the worker
pool, never on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QObject, Signal

from app.model.storage.layout import SUPERVOXELS
from app.ui.controller import Session

if TYPE_CHECKING:
    from app.model.dataset import Dataset

SELECTION_COLORS = (
    "#ffd700", "#00e5ff", "#ff40ff", "#7cff00", "#ff8c00", "#4d7cff",
    "#ff3b3b", "#00ffa2", "#c58cff", "#fff176",
)
"""Highlight colours of the selected bodies, by position in the selection."""


def selection_color(index: int) -> str:
    """The highlight colour of the ``index``-th selected body."""
    return SELECTION_COLORS[index % len(SELECTION_COLORS)]


class Selection(QObject):
    """An ordered set of selected body ids.  GUI thread only."""

    changed = Signal(object)
    """The selected ids, in order (first = merge target); emitted on the GUI thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids: list[int] = []

    @property
    def ids(self) -> list[int]:
        """The selected ids, in order."""
        return list(self._ids)

    @property
    def first(self) -> int | None:
        """The first selected id (the merge target), or None."""
        return self._ids[0] if self._ids else None

    def __contains__(self, label: object) -> bool:
        return label in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def set(self, labels: Iterable[int]) -> None:
        """Replace the selection (0 and repeats are dropped)."""
        ids: list[int] = []
        for v in labels:
            v = int(v)
            if v and v not in ids:
                ids.append(v)
        if ids != self._ids:
            self._ids = ids
            self.changed.emit(self.ids)

    def add(self, label: int) -> None:
        """Add a body at the end."""
        self.set([*self._ids, int(label)])

    def toggle(self, label: int) -> None:
        """Add a body, or remove it if already selected."""
        label = int(label)
        if label in self._ids:
            self.remove([label])
        else:
            self.add(label)

    def remove(self, labels: Iterable[int]) -> None:
        """Remove bodies."""
        drop = {int(v) for v in labels}
        self.set([v for v in self._ids if v not in drop])

    def replace(self, old: int, new: int) -> None:
        """Replace one id by another at the same place."""
        self.set([int(new) if v == old else v for v in self._ids])

    def clear(self) -> None:
        """Select nothing."""
        self.set([])


DRAG_PIXELS = 4.0
"""A press and release further apart than this (canvas pixels) is a drag, not a click."""


def _has(event: Any, modifier: str) -> bool:
    """True if the napari mouse event was made holding ``modifier`` (``"Shift"``, ``"Alt"``)."""
    try:
        return modifier in event.modifiers
    except TypeError:
        return False


def label_at(ds: Dataset, voxel: tuple[int, int, int]) -> int:
    """The label (a body, in labelmap mode) at an s0 voxel; reads the file (a pool thread)."""
    z, y, x = voxel
    return int(ds.labels(0)[z:z + 1, y:y + 1, x:x + 1][0, 0, 0])


def locate_body(ds: Dataset, label: int) -> tuple[int, int, int]:
    """The s0 voxel of body ``label`` nearest its centre in its densest block; reads
    the file (a pool thread).  ValueError if it has no voxels."""
    blocks = ds.label_blocks(label)
    if not blocks:
        raise ValueError(f"body {label} has no voxels")
    coord = max(blocks, key=lambda c: blocks[c])
    bs = ds.block_size
    lo = [c * b for c, b in zip(coord, bs, strict=True)]
    block = ds.labels(0)[tuple(slice(a, a + b) for a, b in zip(lo, bs, strict=True))]
    where = np.argwhere(block == np.uint64(label))
    centre = where.mean(axis=0)
    nearest = where[np.argmin(((where - centre) ** 2).sum(axis=1))]
    return tuple(int(a + v) for a, v in zip(lo, nearest, strict=True))  # type: ignore[return-value]


def supervoxel_at(ds: Dataset, voxel: tuple[int, int, int]) -> tuple[int, int]:
    """The supervoxel at an s0 voxel of a labelmap dataset and its body (0, 0:
    background); reads the file (a pool thread)."""
    sv = int(ds.supervoxels(0)[voxel])
    return sv, (int(ds.mapping([sv])[0]) if sv else 0)


def voxel_at(position: Iterable[float], shape: tuple[int, int, int]) -> tuple[int, int, int] | None:
    """The s0 voxel (z, y, x) at a world position (napari voxel centres are integers)."""
    pos = [float(v) for v in position][-3:]
    if len(pos) != 3:
        return None
    zyx = tuple(int(np.floor(v + 0.5)) for v in pos)
    if any(not 0 <= c < n for c, n in zip(zyx, shape, strict=True)):
        return None
    return zyx  # type: ignore[return-value]


class ClickPicker(QObject):
    """Selects bodies by clicking in a napari viewer.

    Installs a mouse callback on the viewer: a click (press and release
    without dragging) on a body selects it; with Shift it is added to the
    selection (or removed if already there); with Alt it picks the
    supervoxel there (:attr:`supervoxel_picked`; in voxel mode
    :attr:`supervoxel_refused`).  Clicks are ignored while the active layer is
    in a painting mode (the split canvas).

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer.
    session : Session
        The session whose dataset is read.
    selection : Selection
        What clicks change.
    """

    picked = Signal(int, bool)
    """``(label, added)``: a click resolved to a body (0 = background); GUI thread."""
    clicked = Signal(tuple)
    """The s0 voxel (z, y, x) of the last click; GUI thread."""
    supervoxel_picked = Signal(int, int)
    """``(supervoxel, body)`` under an alt-click (0, 0: background); GUI thread."""
    supervoxel_refused = Signal(str)
    """Why an alt-click picked no supervoxel (a voxel-mode dataset...); GUI thread."""

    def __init__(self, viewer: Any, session: Session, selection: Selection,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.session = session
        self.selection = selection
        self.last_voxel: tuple[int, int, int] | None = None
        self.enabled = True
        viewer.mouse_drag_callbacks.append(self._on_mouse)

    def detach(self) -> None:
        """Remove the mouse callback."""
        if self._on_mouse in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._on_mouse)

    def _on_mouse(self, viewer: Any, event: Any) -> Generator[None, None, None]:
        """napari mouse-drag callback: select on click, ignore drags (panning)."""
        if not self.enabled or self.session.dataset is None or self._painting(viewer):
            return
        press = tuple(float(v) for v in event.position)
        press_px = np.asarray(getattr(event, "pos", (0, 0)), dtype=float)
        shift, alt = _has(event, "Shift"), _has(event, "Alt")
        picked_3d = self._value_3d(event) if int(viewer.dims.ndisplay) == 3 else None
        dragged = False
        yield
        while event.type == "mouse_move":
            moved = np.asarray(getattr(event, "pos", (0, 0)), dtype=float) - press_px
            dragged = dragged or float(np.hypot(*moved[:2])) > DRAG_PIXELS
            yield
        if not dragged:
            self.click(press, shift=shift, alt=alt, hit_3d=picked_3d)

    def _painting(self, viewer: Any) -> bool:
        active = viewer.layers.selection.active
        mode = str(getattr(active, "mode", "pan_zoom"))
        return mode not in ("pan_zoom", "transform")

    def _value_3d(self, event: Any) -> tuple[int, str] | None:
        """The label a 3D ray hits in the segmentation's displayed (lowest) level, if
        any, and its kind (``"labels"`` or ``"supervoxels"``: what the layer shows)."""
        for layer in self.viewer.layers:
            if layer.metadata.get("segmend_role") != "segmentation":
                continue
            value = layer.get_value(
                event.position, view_direction=event.view_direction,
                dims_displayed=event.dims_displayed, world=True,
            )
            if isinstance(value, tuple):
                value = value[1]
            kind = str(getattr(layer.data[0], "kind", "labels"))
            return (int(value) if value is not None else 0), kind
        return None

    def click(self, position: Iterable[float], *, shift: bool = False, alt: bool = False,
              hit_3d: tuple[int, str] | None = None) -> None:
        """Act on a click at a world position (the same path a mouse click takes).

        Parameters
        ----------
        position : sequence of float
            World (= s0 voxel) coordinates (z, y, x).
        shift : bool
            Add to (or remove from) the selection instead of replacing it.
        alt : bool
            Pick the supervoxel there instead (the selection stays).
        hit_3d : (int, str), optional
            The label a 3D ray hit and its kind (``"labels"``, ``"supervoxels"``);
            used instead of the s0 voxel.
        """
        dataset = self.session.dataset
        if dataset is None:
            return
        if alt and not dataset.labelmap:
            self.supervoxel_refused.emit(
                f"alt-click picks supervoxels: {dataset.path.name} is in voxel mode (no "
                "supervoxels, every label is a body)")
            return
        voxel = voxel_at(position, dataset.shape)
        if voxel is not None:
            self.last_voxel = voxel
            self.clicked.emit(voxel)
        if hit_3d is not None:
            self._pick_3d(*hit_3d, shift=shift, alt=alt)
        elif voxel is not None and alt:
            self.session.read(lambda ds: supervoxel_at(ds, voxel), self._picked_supervoxel,
                              name="pick supervoxel")
        elif voxel is not None:
            self.session.read(lambda ds: label_at(ds, voxel),
                              lambda label: self._apply(label, shift), name="pick body")

    def _pick_3d(self, label: int, kind: str, *, shift: bool, alt: bool) -> None:
        """Act on what a 3D ray hit: a body, or a supervoxel (mapped on the pool)."""
        if kind != SUPERVOXELS:
            if alt:
                self.supervoxel_refused.emit(
                    "in 3D, alt-click picks supervoxels in the supervoxel view only")
            else:
                self._apply(label, shift)
            return
        if alt:
            self.session.read(lambda ds: (label, int(ds.mapping([label])[0]) if label else 0),
                              self._picked_supervoxel, name="pick supervoxel")
        else:
            self.session.read(lambda ds: int(ds.mapping([label])[0]) if label else 0,
                              lambda body: self._apply(body, shift), name="pick body")

    def _picked_supervoxel(self, result: tuple[int, int]) -> None:
        self.supervoxel_picked.emit(*result)

    def _apply(self, label: int, shift: bool) -> None:
        if shift:
            if label:
                self.selection.toggle(label)
        elif label:
            self.selection.set([label])
        else:
            self.selection.clear()
        self.picked.emit(int(label), shift)
