"""Cleave: pick supervoxels of a body (labelmap mode) and move them to a new body.

The proofreader starts the tool on one selected body: the segmentation
switches to the supervoxel view and the ``cleave preview`` overlay colours
the body's supervoxels -- the picked ones in :data:`PICKED_COLOR`, the rest in
:data:`REST_COLOR` (a lazily read multiscale layer over the supervoxels,
:class:`~app.ui.lazy.HighlightLevel`, so that a pick costs one re-slice
however large the body).  An alt-click on a supervoxel of the body picks it,
or unpicks it (:meth:`CleaveTool.toggle`).

- *commit* runs ``Dataset.cleave(body, picked)`` on the edit lane; on success
  the overlay goes, the view shown before comes back and :attr:`committed`
  names the two bodies; on failure the picks stay, with the model's message;
- *cancel* removes the overlay without cleaving.

Every signal is emitted on the GUI thread; the body's supervoxels are read on
the session's worker pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Signal, Slot

from app.model.storage.layout import LABELS_GROUP, SUPERVOXELS
from app.ui.controller import Session
from app.ui.layer_data import ROLE, highlight_colormap, highlight_levels
from app.ui.layers import DatasetLayers
from app.ui.lazy import Highlight
from app.ui.split_canvas import SplitToolBase, can_edit
from app.ui.texts import count

CONTEXT = "cleave"
"""How errors of this tool begin."""
PICKED_COLOR = "#ff3030"
"""Colour of the picked supervoxels (the new body)."""
REST_COLOR = "#2f9bff"
"""Colour of the body's other supervoxels (they keep its id)."""
PREVIEW_NAME = "cleave preview"
PREVIEW_ROLE = "cleave-preview"


class CleaveTool(SplitToolBase):
    """The cleave of one body: its supervoxels, the picked ones, the preview overlay.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the preview goes.
    session : Session
        Reads the body's supervoxels; runs the cleave.
    layers : DatasetLayers
        The dataset's layers: switched to the supervoxel view while cleaving;
        they hold the preview overlay.
    """

    committed = Signal(int, int)
    """``(body, cleaved body)`` of a committed cleave; GUI thread."""
    picks_changed = Signal(object)
    """The picked supervoxels, in picking order; GUI thread."""

    preview_role = PREVIEW_ROLE

    def __init__(self, viewer: Any, session: Session, layers: DatasetLayers,
                 parent: QObject | None = None) -> None:
        super().__init__(viewer, session, parent)
        self.layers = layers
        self.body: int | None = None
        self.supervoxels: frozenset[int] = frozenset()
        """The body's supervoxels (those with voxels), as read when the tool started."""
        self.picked: list[int] = []
        self.highlight = Highlight(2)
        self._shown_before = LABELS_GROUP
        self._request = 0
        session.labels_changed.connect(self._on_labels_changed)

    @property
    def active(self) -> bool:
        """True while a body is being cleaved."""
        return self.body is not None

    # ------------------------------------------------------------------ start
    def start(self, body: int) -> None:
        """Cleave ``body``: read its supervoxels on the pool, then show the preview."""
        body = int(body)
        dataset = self.session.dataset
        if not can_edit(self.session, CONTEXT) or dataset is None:
            return
        if not dataset.labelmap:
            self.message.emit(self.session.reporter.error(
                f"{dataset.path.name} is in voxel mode: cleave moves supervoxels between "
                "bodies (labelmap mode)", context=CONTEXT))
            return
        self._read_supervoxels(body, self._open)

    def _read_supervoxels(
        self, body: int, then: Callable[[int, int, np.ndarray[Any, Any]], None]
    ) -> None:
        """Read ``body``'s supervoxels on the pool; ``then(request, body, svs)`` on
        the GUI thread (a later request makes an earlier one stale)."""
        self._request += 1
        request = self._request
        self.session.read(lambda ds: ds.supervoxels_of(body),
                          lambda svs: then(request, body, svs),
                          name=f"supervoxels of {body}")

    def _open(self, request: int, body: int, svs: np.ndarray[Any, Any]) -> None:
        if request != self._request:
            return
        if len(svs) < 2:
            what = "no voxels" if not len(svs) else "one supervoxel"
            self.message.emit(self.session.reporter.error(
                f"body {body} has {what}: nothing to cleave", context=CONTEXT))
            return
        dataset = self.session.dataset
        self._drop_layers()
        if dataset is None or self.layers.segmentation is None:
            return
        self.body, self.supervoxels, self.picked = body, frozenset(int(v) for v in svs), []
        self._shown_before = self.layers.labels_kind
        self.layers.set_labels_kind(SUPERVOXELS)
        self._highlight()
        self.preview_layer = self.layers.add_overlay(
            highlight_levels(dataset, self.layers.loader, self.highlight, SUPERVOXELS),
            name=PREVIEW_NAME, opacity=0.6,
            colormap=highlight_colormap((PICKED_COLOR, REST_COLOR)),
            metadata={ROLE: PREVIEW_ROLE, "segmend_target": body},
        )
        self.started.emit(body)
        self._say(f"cleave body {body} ({count(len(svs), 'supervoxel')}): alt-click those to "
                  "move to a new body, Enter commits, Escape cancels")

    # ------------------------------------------------------------------ picks
    def toggle(self, supervoxel: int, body: int) -> None:
        """Pick ``supervoxel`` (of ``body``, as an alt-click read it), or unpick it."""
        supervoxel, body = int(supervoxel), int(body)
        if self.body is None:
            return
        if supervoxel not in self.supervoxels:
            what = f"supervoxel {supervoxel} is of body {body}" if supervoxel else "background"
            self._say(f"{what}, not of body {self.body}: alt-click its supervoxels")
            return
        if supervoxel in self.picked:
            self.picked.remove(supervoxel)
        else:
            self.picked.append(supervoxel)
        self._picks_changed()

    def _picks_changed(self) -> None:
        self._highlight()
        self.layers.refresh_overlay(self.preview_layer)
        self.picks_changed.emit(list(self.picked))
        n, total = len(self.picked), len(self.supervoxels)
        if not n:
            self._say(f"cleave body {self.body}: alt-click supervoxels to move to a new body")
        elif n == total:
            self._say(f"all {total} supervoxels of body {self.body} are picked: "
                      "a cleave must leave it one")
        else:
            self._say(f"cleave body {self.body}: {n} of {count(total, 'supervoxel')} picked "
                      f"({_id_list(self.picked)}); Enter moves them to a new body")

    def _highlight(self) -> None:
        """Picked supervoxels: code 1; the body's others: code 2."""
        rest = sorted(self.supervoxels.difference(self.picked))
        self.highlight.set_groups([self.picked, rest])

    # ---------------------------------------------------------------- actions
    def commit(self) -> None:
        """Move the picked supervoxels to a new body (on the edit lane)."""
        if self.body is None:
            self.message.emit(self.session.reporter.error(
                "no cleave: select one body and start a cleave", context=CONTEXT))
            return
        if not self.picked:
            self.message.emit(self.session.reporter.error(
                f"no supervoxel picked: alt-click supervoxels of body {self.body} first",
                context=CONTEXT))
            return
        if self.session.cleave(self.body, self.picked) is not None:
            self._pending_commit = True
            self._say(f"cleaving {count(len(self.picked), 'supervoxel')} off body "
                      f"{self.body}...")

    def cancel(self) -> None:
        """Close the tool without cleaving."""
        had = self.active
        self._drop_layers()
        if had:
            self.discarded.emit()
            self._say("cleave cancelled")

    # ----------------------------------------------------------------- events
    @Slot(str, object)
    def _on_edit_finished(self, action: str, result: Any) -> None:
        if action != "cleave" or not self._pending_commit:
            return
        self._pending_commit = False
        body, n = self.body, len(self.picked)
        self._drop_layers()
        cleaved, mutation_id = (int(v) for v in result)
        assert body is not None
        self.committed.emit(body, cleaved)
        self.note.note(
            mutation_id,
            f"cleave done: {count(n, 'supervoxel')} of body {body} are now body {cleaved} "
            "(mutation {id})",
            f"cleave undone: body {cleaved} is merged back into {body} (mutation {{id}})",
        )

    @Slot(str, str)
    def _on_edit_failed(self, action: str, line: str) -> None:
        if action == "cleave" and self._pending_commit:
            self._pending_commit = False  # the picks stay
            self._say(line)

    @Slot(object)
    def _on_labels_changed(self, labels: list[int]) -> None:
        """Another edit changed the body: its supervoxels are read again (picks of
        supervoxels it lost are dropped)."""
        body = self.body
        if body is None or body not in labels or self._pending_commit:
            return
        self._read_supervoxels(body, self._reread)

    def _reread(self, request: int, body: int, svs: np.ndarray[Any, Any]) -> None:
        if request != self._request or body != self.body:
            return
        self.supervoxels = frozenset(int(v) for v in svs)
        self.picked = [v for v in self.picked if v in self.supervoxels]
        self._picks_changed()

    # ----------------------------------------------------------------- layers
    def _drop_preview(self) -> None:
        self.layers.remove_overlay(self.preview_layer)
        self.preview_layer = None

    def _drop_layers(self) -> None:
        """Remove the preview; the view shown before the cleave comes back."""
        self._request += 1
        self._drop_preview()
        if self.body is not None:
            self.layers.set_labels_kind(self._shown_before)
        self.body, self.supervoxels, self.picked = None, frozenset(), []


def _id_list(ids: list[int], limit: int = 6) -> str:
    """``"1, 2, 3"``, or the first ``limit`` and how many more."""
    shown = ", ".join(str(v) for v in ids[:limit])
    return shown if len(ids) <= limit else f"{shown} and {len(ids) - limit} more"
