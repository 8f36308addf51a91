"""Splitting a body: paint the region on a canvas, preview, commit.

napari cannot paint on multiscale labels, so the region to split off is
painted on a separate single-scale ``Labels`` layer, the *split canvas*
(uint8), covering a bounded region of interest around the body (its blocks'
bounding box, capped at :data:`MAX_ROI` voxels per axis around the current
view point) and placed with the layer's ``translate``.  napari's own brush
paints it: on the current plane (``n_edit_dimensions = 2``) or as a 3D ball
(``n_edit_dimensions = 3``).

- *preview* reads the body's voxels in the ROI on the worker pool and shows
  which of them would be split off (the ``split preview`` layer);
- *commit* calls ``Dataset.split(target, mask=canvas > 0, offset=roi_origin)``
  (cropped to the painted voxels) on the pool; on success the canvas goes,
  on failure it stays, untouched, with the model's message;
- *split-coarse* splits off the body's s0 blocks touched by the paint, or
  the block under the cursor when nothing is painted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils.colormaps import DirectLabelColormap
from numpy.typing import NDArray
from qtpy.QtCore import QObject, Signal

from app.model.geometry import Coord
from app.ui.controller import Session
from app.ui.edit_note import EditNote
from app.ui.layer_data import ROLE
from app.ui.texts import count

if TYPE_CHECKING:
    from app.model.dataset import Dataset

MAX_ROI = 256
"""Largest extent of the split canvas along any axis (voxels)."""
CANVAS_NAME = "split canvas"
PREVIEW_NAME = "split preview"
PAINT_VALUE = 1
PREVIEW_COLOR = "#ff2020"
"""Colour of the voxels a painted split would split off."""


def can_edit(session: Session, context: str) -> bool:
    """True if the session has a dataset open for editing; else reports why (one line)."""
    dataset = session.dataset
    if dataset is None:
        session.reporter.error("no dataset is open", context=context)
        return False
    if not session.writable:
        session.reporter.error(f"{dataset.path.name} is open read-only", context=context)
        return False
    return True


def add_parts_layer(viewer: Any, parts: NDArray[np.uint8], origin: Coord,
                    colors: Mapping[int, str], *, name: str, role: str) -> Any:
    """Show a preview of labelled parts as a ``Labels`` layer placed at ``origin``.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the layer goes.
    parts : ndarray of uint8, shape (dz, dy, dx)
        0 = nothing (transparent), k = part k.
    origin : tuple of int
        s0 voxel (z, y, x) of ``parts[0, 0, 0]`` (the layer's ``translate``).
    colors : mapping of int to str
        The colour of each part value (values not listed are transparent).
    name, role : str
        Layer name, and its ``segmend_role`` (what :func:`remove_role` removes).
    """
    color_dict: dict[Any, Any] = {None: (0, 0, 0, 0), 0: (0, 0, 0, 0), **colors}
    return viewer.add_labels(parts, name=name, translate=origin, opacity=0.9,
                             colormap=DirectLabelColormap(color_dict=color_dict),
                             metadata={ROLE: role})


def remove_role(viewer: Any, role: str) -> None:
    """Remove every layer whose ``segmend_role`` is ``role``."""
    for layer in [la for la in viewer.layers if la.metadata.get(ROLE) == role]:
        viewer.layers.remove(layer)


@dataclass(frozen=True)
class Roi:
    """A box of s0 voxels: ``origin`` (z, y, x) and ``shape``."""

    origin: Coord
    shape: Coord

    @property
    def stop(self) -> Coord:
        """One past the last voxel."""
        return (self.origin[0] + self.shape[0], self.origin[1] + self.shape[1],
                self.origin[2] + self.shape[2])

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """s0 slices of the box."""
        return tuple(slice(a, b) for a, b in zip(self.origin, self.stop, strict=True))  # type: ignore[return-value]


def roi_for_blocks(
    blocks: dict[Coord, int] | list[Coord],
    block_size: Coord,
    volume: Coord,
    *,
    around: tuple[float, float, float] | None = None,
    cap: int = MAX_ROI,
) -> Roi:
    """The bounding box of s0 blocks, capped at ``cap`` per axis around a point.

    Parameters
    ----------
    blocks : dict or list of (z, y, x)
        Block coordinates (a dict's keys; its values, voxel counts, pick the
        centre when ``around`` is not given).
    block_size, volume : tuple of int
        Block shape and s0 volume shape.
    around : tuple of float, optional
        Where to centre a capped axis (e.g. the current view point).
    cap : int
        Largest extent per axis.
    """
    coords = np.array(list(blocks), dtype=np.int64).reshape(-1, 3)
    if not len(coords):
        raise ValueError("the body has no blocks")
    bs = np.array(block_size, dtype=np.int64)
    vol = np.array(volume, dtype=np.int64)
    lo = coords.min(axis=0) * bs
    hi = np.minimum((coords.max(axis=0) + 1) * bs, vol)
    if around is None:
        if isinstance(blocks, dict):
            best = max(blocks, key=lambda c: blocks[c])
        else:
            best = tuple(coords[len(coords) // 2])
        centre = (np.array(best) + 0.5) * bs
    else:
        centre = np.array(around, dtype=float)
    origin = lo.copy()
    size = hi - lo
    for ax in range(3):
        if size[ax] > cap:
            start = round(float(centre[ax]) - cap / 2)
            origin[ax] = min(max(start, lo[ax]), hi[ax] - cap)
            size[ax] = cap
    return Roi(tuple(int(v) for v in origin), tuple(int(v) for v in size))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Preview:
    """What a split would do."""

    target: int
    split_off: int
    remaining: int
    mask: NDArray[np.uint8]


class SplitToolBase(QObject):
    """What the tools that split a body share: the viewer and session, a preview
    layer (of :attr:`preview_role`), the note that follows the committed split
    through undo and redo, and the layers dropped when the session closes.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the tool's layers go.
    session : Session
        Runs the reads and the splits.
    """

    started = Signal(int)
    """The tool's layers for this body are ready; GUI thread."""
    discarded = Signal()
    """The tool's layers were removed without splitting; GUI thread."""
    message = Signal(str)
    """A one-line status; GUI thread."""

    preview_role: str = ""
    """The ``ROLE`` of the tool's preview layers."""

    def __init__(self, viewer: Any, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.session = session
        self.preview_layer: Any = None
        self._pending_commit = False
        self.note = EditNote(session, self)
        self.note.changed.connect(self.message)
        session.closed.connect(self._drop_layers)
        session.edit_finished.connect(self._on_edit_finished)
        session.edit_failed.connect(self._on_edit_failed)

    def _on_edit_finished(self, action: str, result: Any) -> None:
        """An edit of the session's succeeded (its kind's result)."""
        raise NotImplementedError

    def _on_edit_failed(self, action: str, message: str) -> None:
        """An edit of the session's was refused (its one-line message)."""
        raise NotImplementedError

    def _drop_layers(self) -> None:
        """Remove the tool's layers."""
        raise NotImplementedError

    def _say(self, text: str) -> None:
        """Show a status text (one not about a committed split)."""
        self.note.forget()
        self.message.emit(text)

    def _drop_preview(self) -> None:
        """Remove every preview layer of this tool (a late one too)."""
        remove_role(self.viewer, self.preview_role)
        self.preview_layer = None


class SplitTool(SplitToolBase):
    """The split canvas of one body, and its preview / commit / split-coarse actions
    (parameters: see :class:`SplitToolBase`)."""

    previewed = Signal(object)
    """A :class:`Preview`; GUI thread."""
    committed = Signal(object)
    """The :class:`~app.model.dataset.SplitResult` of a committed split; GUI thread."""

    preview_role = "split-preview"

    def __init__(self, viewer: Any, session: Session, parent: QObject | None = None) -> None:
        super().__init__(viewer, session, parent)
        self.target: int | None = None
        self.roi: Roi | None = None
        self.canvas: Any = None
        self.brush_3d = False
        self.brush_size = 10

    # ---------------------------------------------------------------- canvas
    @property
    def active(self) -> bool:
        """True while a canvas is open."""
        return self.canvas is not None

    def start(self, target: int, around: tuple[float, float, float] | None = None) -> None:
        """Open a split canvas around body ``target`` (its blocks are looked up on the pool)."""
        target = int(target)
        if not can_edit(self.session, "split"):
            return
        point = around if around is not None else tuple(
            float(v) for v in self.viewer.dims.point[-3:])

        def find(ds: Dataset) -> Roi:
            blocks = ds.label_blocks(target)
            if not blocks:
                raise ValueError(f"body {target} has no voxels")
            return roi_for_blocks(blocks, ds.block_size, ds.shape, around=point)  # type: ignore[arg-type]

        self.session.read(find, lambda roi: self._open_canvas(target, roi),
                          name=f"split canvas for {target}")

    def _open_canvas(self, target: int, roi: Roi) -> None:
        self._drop_layers()
        self.target, self.roi = target, roi
        self.canvas = self.viewer.add_labels(
            np.zeros(roi.shape, dtype=np.uint8), name=CANVAS_NAME, translate=roi.origin,
            opacity=0.6, metadata={ROLE: "split-canvas", "segmend_target": target},
        )
        self.canvas.brush_size = self.brush_size
        self.canvas.selected_label = PAINT_VALUE
        self.canvas.n_edit_dimensions = 3 if self.brush_3d else 2
        self.viewer.layers.selection.active = self.canvas
        self.canvas.mode = "paint"
        self.started.emit(target)
        self._say(
            f"paint the part of body {target} to split off, then preview or commit "
            f"(canvas {roi.shape[0]}x{roi.shape[1]}x{roi.shape[2]} at {roi.origin})"
        )

    def set_brush_3d(self, on: bool) -> None:
        """Paint on the current plane (False) or with a 3D ball (True)."""
        self.brush_3d = bool(on)
        if self.canvas is not None:
            self.canvas.n_edit_dimensions = 3 if on else 2

    def set_brush_size(self, size: int) -> None:
        """The brush diameter in voxels."""
        self.brush_size = max(1, int(size))
        if self.canvas is not None:
            self.canvas.brush_size = self.brush_size

    def paint_at(self, position: tuple[float, float, float]) -> None:
        """Paint one brush stroke at a world (s0) position -- what a mouse click on
        the canvas in paint mode does (napari's own brush)."""
        if self.canvas is None:
            return
        data_pos = self.canvas.world_to_data(np.asarray(position, dtype=float))
        self.canvas.paint(data_pos, PAINT_VALUE)

    def painted_mask(self) -> tuple[NDArray[np.bool_], Coord] | None:
        """The painted voxels cropped to their bounding box, and its s0 origin (None if empty)."""
        if self.canvas is None or self.roi is None:
            return None
        mask = np.asarray(self.canvas.data) > 0
        if not mask.any():
            return None
        idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax)))
               for ax in range(3)]
        lo = [int(i[0]) for i in idx]
        hi = [int(i[-1]) + 1 for i in idx]
        crop = np.ascontiguousarray(mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
        origin = tuple(o + lo_ for o, lo_ in zip(self.roi.origin, lo, strict=True))
        return crop, origin  # type: ignore[return-value]

    def clear_paint(self) -> None:
        """Erase the canvas."""
        if self.canvas is not None:
            self.canvas.data = np.zeros(self.canvas.data.shape, dtype=np.uint8)
        self._drop_preview()

    def discard(self) -> None:
        """Remove the canvas without splitting."""
        had = self.canvas is not None
        self._drop_layers()
        if had:
            self.discarded.emit()
            self._say("split canvas discarded")

    # --------------------------------------------------------------- actions
    def _painted_or_report(self) -> tuple[NDArray[np.bool_], Coord] | None:
        """:meth:`painted_mask`, or None after telling the user what is missing."""
        if self.canvas is None or self.roi is None or self.target is None:
            self.session.reporter.error("no split canvas: select a body and start a split",
                                        context="split")
            return None
        painted = self.painted_mask()
        if painted is None:
            self.session.reporter.error(
                "the split canvas is empty: paint the part of the body to split off first",
                context="split",
            )
        return painted

    def preview(self) -> None:
        """Show (on the pool-computed ``split preview`` layer) which voxels would be split off."""
        painted = self._painted_or_report()
        if painted is None or self.roi is None or self.target is None:
            return
        mask, origin = painted
        roi, target = self.roi, self.target

        def compute(ds: Dataset) -> Preview:
            box = tuple(slice(o, o + n) for o, n in zip(origin, mask.shape, strict=True))
            hits = mask & (ds.labels(0)[box] == np.uint64(target))
            n = int(hits.sum())
            full = np.zeros(roi.shape, dtype=np.uint8)
            rel = tuple(slice(o - r, o - r + s) for o, r, s in
                        zip(origin, roi.origin, mask.shape, strict=True))
            full[rel] = hits.astype(np.uint8)
            return Preview(target, n, ds.label_size(target) - n, full)

        self.session.read(compute, self._show_preview, name="split preview")

    def _show_preview(self, preview: Preview) -> None:
        if self.canvas is None or self.roi is None or preview.target != self.target:
            return
        self._drop_preview()
        self.preview_layer = add_parts_layer(self.viewer, preview.mask, self.roi.origin,
                                             {1: PREVIEW_COLOR}, name=PREVIEW_NAME,
                                             role=self.preview_role)
        self.viewer.layers.selection.active = self.canvas
        self.previewed.emit(preview)
        if preview.split_off == 0:
            self.session.reporter.error(
                f"the painted region holds no voxel of body {preview.target}", context="split")
        elif preview.remaining <= 0:
            self.session.reporter.error(
                f"the painted region holds all of body {preview.target}", context="split")
        else:
            self._say(f"split preview: {count(preview.split_off, 'voxel')} of body "
                              f"{preview.target} become a new body, {preview.remaining:,} stay")

    def commit(self) -> None:
        """Split the painted voxels of the body off (on the pool)."""
        painted = self._painted_or_report()
        if painted is None or self.target is None:
            return
        mask, origin = painted
        if self.session.split(self.target, mask, origin) is not None:
            self._pending_commit = True
            self._drop_preview()  # it shows the body before the split
            self._say(f"splitting body {self.target}...")

    def split_coarse(self, target: int | None = None,
                     position: tuple[float, float, float] | None = None) -> None:
        """Split off the body's s0 blocks touched by the paint, or the block at ``position``."""
        target = int(target if target is not None else (self.target or 0))
        dataset = self.session.dataset
        if not target or dataset is None:
            self.session.reporter.error("select a body first", context="split-coarse")
            return
        bs = np.array(dataset.block_size)
        blocks: set[Coord] = set()
        painted = self.painted_mask() if self.target == target else None
        if painted is not None:
            mask, origin = painted
            zyx = np.argwhere(mask) + np.array(origin)
            blocks = {tuple(int(v) for v in c) for c in np.unique(zyx // bs, axis=0)}  # type: ignore[misc]
        elif position is not None:
            voxel = np.floor(np.asarray(position[-3:], dtype=float) + 0.5).astype(int)
            blocks = {tuple(int(v) for v in voxel // bs)}  # type: ignore[arg-type]
        if not blocks:
            self.session.reporter.error("paint on the split canvas or point at a block first",
                                        context="split-coarse")
            return
        if self.session.split_coarse(target, sorted(blocks)) is not None:
            self._pending_commit = self.target == target
            self._say(f"splitting {count(len(blocks), 'block')} off body {target}...")

    # ---------------------------------------------------------------- events
    def _on_edit_finished(self, action: str, result: Any) -> None:
        from app.model.dataset import SplitResult

        if action in ("split", "split-coarse") and isinstance(result, SplitResult):
            if self._pending_commit:
                self._pending_commit = False
                self._drop_layers()
            self.committed.emit(result)
            new = result.label
            self.note.note(result.mutation_id, f"split done: new body {new} (mutation {{id}})",
                           f"split undone: body {new} is merged back (mutation {{id}})")

    def _on_edit_failed(self, action: str, _message: str) -> None:
        if action in ("split", "split-coarse"):
            self._pending_commit = False  # the canvas stays as painted

    def _drop_layers(self) -> None:
        """Remove the canvas and the preview; napari's brush cursor goes with them."""
        self._drop_preview()
        if self.canvas is not None:
            self.canvas.mode = "pan_zoom"  # hides napari's brush overlay before the layer goes
        remove_role(self.viewer, "split-canvas")
        self.canvas = None
        self.target = None
        self.roi = None
