"""The 3D view of the selected bodies: one napari Surface layer per body.

Switched on (:meth:`BodyMeshes.set_enabled`, a key of the proofreading
widget), the viewer goes to 3D display and every selected body gets a surface
in its colour in the segmentation layer.  Meshes are made on the session's
worker pool (:meth:`app.ui.controller.Session.read`), never on the GUI thread:
first at a coarse scale, then at s0 (:func:`app.model.meshes.mesh_plan`).
Block meshes are kept in a :class:`~app.model.meshes.MeshCache` that the
engine's ``blocks_changed`` invalidates block by block as an edit stages its
blocks (on the edit's thread), so a body changed by an edit re-meshes only its
changed blocks; the surfaces of the bodies whose labels an edit changed are
re-made when its labels are committed (``Session.labels_changed``).

While the view is on, the dataset's volume layers (grayscale, segmentation,
selected bodies) are hidden -- rendered in 3D they would hide the surfaces --
and shown again when it is switched off
(:meth:`~app.ui.layers.DatasetLayers.set_volumes_hidden`: their visibility is
decided there only, whatever else changes it meanwhile).

Each body has at most one mesh job; a refresh asked for meanwhile runs when it
returns.  A job is cancelled (between blocks) when its body leaves the
selection, the view is switched off or the dataset closes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Surface
from napari.utils.colormaps import Colormap
from napari.utils.colormaps.standardize_color import transform_color
from qtpy.QtCore import QObject, Signal, Slot

from app.ui.controller import Session
from app.ui.layer_data import PATH, ROLE
from app.ui.layers import DatasetLayers
from app.ui.selection import Selection, selection_color

if TYPE_CHECKING:
    from app.model.dataset import Dataset
    from app.model.meshes import BodyMesh, BodyMesher

LABEL = "segmend_label"
"""``layer.metadata`` key of a surface's body id."""
MESH_ROLE = "mesh"
"""The ``segmend_role`` of the surface layers."""


@dataclass
class _Body:
    """One shown body's surface and its mesh job (GUI thread only)."""

    label: int
    layer: Surface | None = None
    scale: int | None = None
    """The scale of the mesh shown, or None before the first."""
    cancel: threading.Event | None = None
    """Set to cancel the running job; None when no job runs."""
    again: bool = False
    """An edit changed the body while its job ran: mesh it again."""
    plan: list[int] = field(default_factory=list)
    """Scales still to mesh, after the running job's."""


class BodyMeshes(QObject):
    """Shows the selected bodies as surfaces in 3D.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the surfaces go.
    session : Session
        The dataset and its worker pool.
    selection : Selection
        The bodies shown.
    layers : DatasetLayers
        The dataset's layers (the colours of the bodies).
    """

    updated = Signal(int, int)
    """``(label, scale)``: a body's surface now shows its mesh at that scale. GUI thread."""
    toggled = Signal(bool)
    """The view was switched on or off. GUI thread."""

    def __init__(self, viewer: Any, session: Session, selection: Selection,
                 layers: DatasetLayers, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.session = session
        self.selection = selection
        self.layers = layers
        self.enabled = False
        self.mesher: BodyMesher | None = None
        self._bodies: dict[int, _Body] = {}
        session.opened.connect(self._on_opened)
        session.closed.connect(self._on_closed)
        session.labels_changed.connect(self._on_labels_changed)
        selection.changed.connect(self._on_selection)
        if session.dataset is not None:
            self._on_opened(session.dataset)

    # ------------------------------------------------------------- public
    @property
    def surfaces(self) -> dict[int, Surface]:
        """The surface layer of each shown body that has one (label → layer)."""
        return {b.label: b.layer for b in self._bodies.values() if b.layer is not None}

    @property
    def busy(self) -> bool:
        """True while a mesh job runs."""
        return any(b.cancel is not None for b in self._bodies.values())

    def shown_scale(self, label: int) -> int | None:
        """The scale of ``label``'s mesh shown, or None."""
        body = self._bodies.get(int(label))
        return None if body is None else body.scale

    @Slot(bool)
    def set_enabled(self, on: bool) -> None:
        """Switch the 3D view of the selected bodies on (3D display) or off (2D)."""
        on = bool(on)
        if on == self.enabled:
            return
        self.enabled = on
        if on:
            self.layers.set_volumes_hidden(True)
            self.viewer.dims.ndisplay = 3
        else:
            self.viewer.dims.ndisplay = 2
            self.layers.set_volumes_hidden(False)
        self._sync(self.selection.ids if on else [])
        self.toggled.emit(on)

    # ----------------------------------------------------------- session
    @Slot(object)
    def _on_opened(self, dataset: Dataset) -> None:
        """(Connected after :class:`DatasetLayers`: its layers are made by now.)"""
        from app.model.meshes import BodyMesher  # (the model stack is loaded by now)

        self._drop_mesher()
        self.mesher = BodyMesher(dataset)
        self.mesher.cache.connect(dataset.signals)
        if self.enabled:
            self._sync(self.selection.ids)

    @Slot()
    def _on_closed(self) -> None:
        self._sync([])
        self._drop_mesher()

    def _drop_mesher(self) -> None:
        if self.mesher is not None:
            self.mesher.cache.disconnect()
            self.mesher = None

    @Slot(object)
    def _on_selection(self, ids: list[int]) -> None:
        if self.enabled:
            self._sync(ids)

    @Slot(object)
    def _on_labels_changed(self, labels: list[int]) -> None:
        """An edit committed: re-mesh the shown bodies it changed (at the scale shown)."""
        for label in labels:
            body = self._bodies.get(int(label))
            if body is None:
                continue
            if body.cancel is not None:
                body.again = True
            else:
                self._submit(body, [] if body.scale is None else [body.scale])

    # ------------------------------------------------------------- bodies
    def _sync(self, ids: list[int]) -> None:
        """Show exactly the bodies ``ids`` (when a dataset is open)."""
        want = [int(v) for v in ids] if self.mesher is not None else []
        for label in [v for v in self._bodies if v not in want]:
            body = self._bodies.pop(label)
            if body.cancel is not None:
                body.cancel.set()
            if body.layer is not None and body.layer in self.viewer.layers:
                self.viewer.layers.remove(body.layer)
        for label in want:
            if label not in self._bodies:
                body = self._bodies[label] = _Body(label)
                self._submit(body, [])

    def _submit(self, body: _Body, scales: list[int]) -> None:
        """Mesh ``body`` at ``scales[0]`` then the rest (``[]``: its plan, coarse first)."""
        mesher = self.mesher
        if mesher is None:
            return
        cancel = threading.Event()
        body.cancel, body.again = cancel, False
        label = body.label

        def work(_ds: Dataset) -> tuple[list[int], BodyMesh | None]:  # pool thread
            plan = scales or mesher.plan(label)
            return plan, mesher.mesh(label, plan[0], cancel.is_set)

        def done(result: tuple[list[int], BodyMesh | None]) -> None:
            self._meshed(body, cancel, *result)

        def failed(exc: BaseException) -> None:
            if body.cancel is cancel:
                body.cancel = None
            if not cancel.is_set():
                self.session.reporter.error(exc, context=f"meshing body {label}")

        job = self.session.read(work, done, name=f"mesh body {label}", on_error=failed)
        if job is None:
            body.cancel = None

    def _meshed(self, body: _Body, cancel: threading.Event, plan: list[int],
                mesh: BodyMesh | None) -> None:
        if body.cancel is not cancel or cancel.is_set() or self._bodies.get(body.label) is not body:
            return  # dropped or replaced meanwhile
        body.cancel = None
        if mesh is None:
            return
        self._show(body, mesh)
        rest = plan[1:]
        if body.again:  # an edit changed it meanwhile: this scale again, then the rest
            self._submit(body, [mesh.scale, *rest])
        elif rest:
            self._submit(body, rest)

    def _show(self, body: _Body, mesh: BodyMesh) -> None:
        """Put ``mesh`` in the body's layer (made on its first non-empty mesh)."""
        body.scale = mesh.scale
        if mesh.empty:
            if body.layer is not None:
                body.layer.visible = False
        else:
            values = np.ones(len(mesh.vertices), dtype=np.float32)
            data = (mesh.vertices, mesh.faces, values)
            if body.layer is None:
                body.layer = self._make_layer(body.label, data)
                active = self.viewer.layers.selection.active
                self.viewer.layers.append(body.layer)
                self.viewer.layers.selection.active = active  # (the active layer stays)
            else:
                body.layer.data = data
                body.layer.visible = True
        self.updated.emit(body.label, mesh.scale)

    def _make_layer(self, label: int, data: tuple[Any, ...]) -> Surface:
        rgba = self._colour(label)
        colormap = Colormap(colors=np.stack([rgba, rgba]), name=f"segmend body {label}")
        dataset = self.session.dataset
        return Surface(data, name=f"body {label}", colormap=colormap, contrast_limits=(0.0, 1.0),
                       shading="smooth",
                       metadata={ROLE: MESH_ROLE, LABEL: label,
                                 PATH: str(dataset.path) if dataset is not None else ""})

    def _colour(self, label: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The body's colour in the segmentation layer (its selection colour without one)."""
        seg = self.layers.segmentation
        colour = seg.get_color(label) if seg is not None else None
        if colour is None:
            ids = self.selection.ids
            index = ids.index(label) if label in ids else 0
            colour = transform_color(selection_color(index))[0]
        rgba = np.asarray(colour, dtype=np.float32).copy()
        rgba[3] = 1.0
        return rgba
