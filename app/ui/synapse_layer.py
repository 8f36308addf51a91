"""The synapses of the selected bodies: a napari Points layer and their partner lines.

The ``synapses`` annotation set's elements on the selected bodies are shown
at their s0 voxels (napari's ``(z, y, x)``; DVID's ``Pos`` is ``x, y, z``) in
the ``synapses`` Points layer: PreSyn (T-bars) as :data:`PRESYN_COLOR`
diamonds, PostSyn as :data:`POSTSYN_COLOR` discs (any other kind in
:data:`OTHER_COLOR`); each point's ``kind`` and ``body`` are its features,
which napari's status bar names under the cursor.  The ``synapse partners``
Vectors layer draws each relationship of those elements as an arrow from the
PreSyn to the PostSyn (its partner may be on a body not selected).

The elements are read on the session's worker pool (``Dataset.annotations``),
never on the GUI thread, when the selection changes and when an edit commits
labels of a selected body (``Session.labels_changed``: the elements follow
every edit in its own transaction).  One read runs at a time; a change
meanwhile makes its result stale: it is dropped and the read runs again.  The
layers are made with the first elements to show, above the dataset's layers
(the active layer stays), and removed when the dataset has no ``synapses``
set or is closed.  In 2D a point shows on its own plane; its projection mode
lets a thick slice (napari's dims) show the points of nearby planes too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Points, Vectors
from napari.utils.colormaps.standardize_color import transform_color
from numpy.typing import NDArray
from qtpy.QtCore import QObject, Signal, Slot

from app.ui.annotation_jobs import SYNAPSES
from app.ui.controller import Session
from app.ui.layer_data import PATH, ROLE
from app.ui.layers import DatasetLayers
from app.ui.selection import Selection
from app.ui.workers import Job

if TYPE_CHECKING:
    from app.model.dataset import Dataset

PRESYN_COLOR = "#ff1493"
"""The PreSyn (T-bar) points' colour."""
POSTSYN_COLOR = "#2f6bff"
"""The PostSyn points' colour."""
OTHER_COLOR = "#b0b0b0"
"""The colour of the set's other kinds (Gap, Note, Unknown)."""
PARTNER_COLOR = "#ffffff"
"""The colour of the PreSyn → PostSyn arrows."""
SYMBOLS = {"PreSyn": "diamond", "PostSyn": "disc"}
"""Each kind's point symbol (others: a square)."""
POINT_SIZE = 3.0
"""The points' diameter, s0 voxels."""
POINTS_NAME = "synapses"
PARTNERS_NAME = "synapse partners"
POINTS_ROLE = "synapses"
PARTNERS_ROLE = "synapse-partners"


def kind_color(kind: str) -> str:
    """The colour of an element kind's points."""
    return {"PreSyn": PRESYN_COLOR, "PostSyn": POSTSYN_COLOR}.get(kind, OTHER_COLOR)


@dataclass(frozen=True)
class SynapseView:
    """The synapses of some bodies, as the layers show them (made on a pool thread).

    Attributes
    ----------
    bodies : tuple of int
        The bodies read.
    zyx : ndarray
        ``(n, 3)`` float64: each element's s0 voxel, z first.
    kinds : tuple of str
        Each element's kind.
    owners : ndarray
        ``(n,)`` uint64: each element's body.
    partners : ndarray
        ``(m, 2, 3)`` float64: napari vectors (origin: a PreSyn, then the offset
        to its PostSyn partner), one per relationship, each pair once.
    """

    bodies: tuple[int, ...]
    zyx: NDArray[np.float64]
    kinds: tuple[str, ...]
    owners: NDArray[np.uint64]
    partners: NDArray[np.float64]


def read_synapses(ds: Dataset, bodies: list[int]) -> SynapseView | None:
    """The ``synapses`` elements of ``bodies`` and their relationships, or None if
    the dataset has no ``synapses`` set (reads the journal: a pool thread)."""
    if SYNAPSES not in ds.annotations.names():
        return None
    zyx: list[list[int]] = []
    kinds: list[str] = []
    owners: list[int] = []
    pairs: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    for body in bodies:
        for element in ds.annotations.body(SYNAPSES, body, relationships=True):
            pos = tuple(int(v) for v in element["Pos"])
            zyx.append(list(pos[::-1]))
            kinds.append(str(element["Kind"]))
            owners.append(body)
            for rel in element.get("Rels") or ():
                to = tuple(int(v) for v in rel["To"])
                if rel["Rel"] == "PreSynTo":
                    pairs.add((pos, to))
                elif rel["Rel"] == "PostSynTo":
                    pairs.add((to, pos))
    vectors = [[pre[::-1], [b - a for a, b in zip(pre[::-1], post[::-1], strict=True)]]
               for pre, post in sorted(pairs)]
    return SynapseView(
        bodies=tuple(bodies),
        zyx=np.asarray(zyx, np.float64).reshape(-1, 3),
        kinds=tuple(kinds),
        owners=np.asarray(owners, np.uint64),
        partners=np.asarray(vectors, np.float64).reshape(-1, 2, 3),
    )


class SynapseLayers(QObject):
    """Shows the synapses of the selected bodies and keeps them current.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the layers go.
    session : Session
        The dataset (its ``synapses`` set) and its worker pool.
    selection : Selection
        The bodies whose synapses are shown.
    layers : DatasetLayers
        The dataset's layers (the synapse layers take the segmentation's scale).
    """

    updated = Signal(object)
    """The bodies whose synapses the layers now show (a list; empty: none, or no
    ``synapses`` set, the layers then removed). GUI thread."""

    def __init__(self, viewer: Any, session: Session, selection: Selection,
                 layers: DatasetLayers, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.session = session
        self.selection = selection
        self.layers = layers
        self.points: Points | None = None
        self.partners: Vectors | None = None
        self.shown: tuple[int, ...] = ()
        """The bodies whose synapses are shown."""
        self._job: Job | None = None
        self._stale = False
        session.opened.connect(self._on_opened)
        session.closed.connect(self._on_closed)
        session.labels_changed.connect(self._on_labels_changed)
        selection.changed.connect(self.refresh)

    # ------------------------------------------------------------- reading
    @Slot()
    def refresh(self) -> None:
        """Read the selected bodies' synapses on the pool, then show them."""
        if self.session.dataset is None:
            return
        if self._job is not None:
            self._stale = True  # its result is dropped and this read runs then
            return
        self._stale = False
        ids = self.selection.ids
        self._job = self.session.read(lambda ds: read_synapses(ds, ids), self._ready,
                                      name="read synapses", on_error=self._failed)

    def _ready(self, view: SynapseView | None) -> None:
        self._job = None
        if self._stale:
            self.refresh()
            return
        self._show(view)

    def _failed(self, exc: BaseException) -> None:
        self._job = None
        if self._stale:
            self.refresh()
            return
        self.session.reporter.error(exc, context="reading the synapses failed")

    @Slot(object)
    def _on_labels_changed(self, labels: list[int]) -> None:
        if not set(labels).isdisjoint(self.selection.ids):
            self.refresh()

    @Slot(object)
    def _on_opened(self, _dataset: Dataset) -> None:
        self._job, self._stale = None, False  # a read of the last dataset is dropped
        self.refresh()

    @Slot()
    def _on_closed(self) -> None:
        self._job, self._stale = None, False
        self._remove()

    # -------------------------------------------------------------- layers
    def _show(self, view: SynapseView | None) -> None:
        if view is None:
            self._remove()
            self.updated.emit([])
            return
        if self.points is None or self.partners is None:
            if not len(view.kinds):
                self.shown = view.bodies
                self.updated.emit(list(view.bodies))
                return
            self._make_layers()
        assert self.points is not None and self.partners is not None
        self.partners.data = view.partners
        self.points.data = view.zyx
        if len(view.kinds):  # (napari resizes the colours and features of no points itself)
            self.points.features = {"kind": list(view.kinds), "body": view.owners}
            self.points.face_color = transform_color([kind_color(k) for k in view.kinds])
            self.points.symbol = [SYMBOLS.get(k, "square") for k in view.kinds]
        self.shown = view.bodies
        self.updated.emit(list(view.bodies))

    def _make_layers(self) -> None:
        """Add the two layers on top (the active layer stays)."""
        dataset = self.session.dataset
        seg = self.layers.segmentation
        place: dict[str, Any] = {} if seg is None else {
            "scale": tuple(seg.scale), "translate": tuple(seg.translate)}
        path = str(dataset.path) if dataset is not None else ""
        self.partners = Vectors(
            np.empty((0, 2, 3)), ndim=3, name=PARTNERS_NAME, edge_color=PARTNER_COLOR,
            edge_width=0.5, vector_style="arrow", projection_mode="all", opacity=0.8,
            metadata={ROLE: PARTNERS_ROLE, PATH: path}, **place)
        self.points = Points(
            np.empty((0, 3)), ndim=3, name=POINTS_NAME, size=POINT_SIZE,
            border_color="white", border_width=0.15, projection_mode="all",
            features={"kind": np.array([], dtype=object), "body": np.array([], np.uint64)},
            metadata={ROLE: POINTS_ROLE, PATH: path}, **place)
        layers = self.viewer.layers
        active = layers.selection.active
        layers.append(self.partners)
        layers.append(self.points)
        layers.selection.active = active

    def _remove(self) -> None:
        for layer in (self.points, self.partners):
            if layer is not None and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.points = self.partners = None
        self.shown = ()
