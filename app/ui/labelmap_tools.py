"""The labelmap side of the proofreading dock: the supervoxel view, alt-click on
supervoxels, the cleave tool, and which commands a dataset's mode allows.

In labelmap mode the voxels hold supervoxels and a mapping gives their bodies:
the segmentation shows bodies, or supervoxels (:meth:`LabelmapTools.toggle_view`);
an alt-click names the supervoxel under the cursor and its body, or, while
cleaving, picks it.  The labelmap commands are disabled in voxel mode, their
tooltips saying why.  GUI thread only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qtpy.QtCore import QObject, Signal, Slot
from qtpy.QtGui import QAction

from app.model.storage.layout import LABELS_GROUP, SUPERVOXELS
from app.ui.cleave import CleaveTool
from app.ui.controller import Session
from app.ui.layers import DatasetLayers
from app.ui.selection import ClickPicker, Selection
from app.ui.shortcuts import shortcut, tooltip

NEEDS_LABELMAP = "needs a labelmap dataset (supervoxels and their bodies)"


def _set_why(action: QAction, name: str, why: str) -> None:
    """The command's tooltip, followed by why it is disabled (if ``why``)."""
    tip = tooltip(shortcut(name))
    action.setToolTip(f"{tip}: {why}" if why else tip)


class LabelmapTools(QObject):
    """The supervoxel view, alt-click on supervoxels and the cleave tool of the dock.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the cleave preview goes.
    session : Session
        The open dataset.
    selection : Selection
        The cleave's body (the one selected body); after a cleave, both bodies.
    layers : DatasetLayers
        The dataset's layers (body or supervoxel view).
    picker : ClickPicker
        Whose alt-clicks pick supervoxels.
    """

    message = Signal(str)
    """A one-line status; GUI thread."""

    def __init__(self, viewer: Any, session: Session, selection: Selection,
                 layers: DatasetLayers, picker: ClickPicker,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.selection = selection
        self.layers = layers
        self.cleave = CleaveTool(viewer, session, layers, self)
        self.cleave.message.connect(self.message)
        self.cleave.committed.connect(self._cleaved)
        picker.supervoxel_picked.connect(self._on_supervoxel_picked)
        picker.supervoxel_refused.connect(self.message)

    @property
    def labelmap(self) -> bool:
        """True if the open dataset is in labelmap mode."""
        dataset = self.session.dataset
        return dataset is not None and dataset.labelmap

    def toggle_view(self) -> None:
        """Show supervoxels instead of bodies, or bodies again; in voxel mode, say why not."""
        dataset = self.session.dataset
        if dataset is None:
            return
        if not dataset.labelmap:
            self.message.emit(f"{dataset.path.name} is in voxel mode: it has no supervoxel "
                              "view (every label is a body)")
            return
        kind = LABELS_GROUP if self.layers.labels_kind == SUPERVOXELS else SUPERVOXELS
        self.layers.set_labels_kind(kind)
        shown, other = ("supervoxels", "bodies") if kind == SUPERVOXELS else ("bodies",
                                                                             "supervoxels")
        self.message.emit(f"showing {shown} ({shortcut('supervoxel_view').key}: {other})")

    def start_cleave(self) -> None:
        """Cleave the one selected body."""
        ids = self.selection.ids
        if len(ids) != 1:
            self.message.emit(self.session.reporter.error(
                "select one body to cleave (click it)", context="cleave"))
            return
        self.cleave.start(ids[0])

    @Slot(int, int)
    def _cleaved(self, body: int, cleaved: int) -> None:
        self.selection.set([body, cleaved])

    @Slot(int, int)
    def _on_supervoxel_picked(self, supervoxel: int, body: int) -> None:
        if self.cleave.active:
            self.cleave.toggle(supervoxel, body)
        elif supervoxel:
            self.message.emit(f"supervoxel {supervoxel} of body {body}")
        else:
            self.message.emit("background: no supervoxel there")

    def update_enabled(self, actions: Mapping[str, QAction]) -> None:
        """Enable the commands of this module, and disable those the dataset's mode does
        not allow (after the dock's own rules); a command disabled by the mode says
        why in its tooltip."""
        dataset, labelmap = self.session.dataset, self.labelmap
        active = self.cleave.active
        actions["supervoxel_view"].setEnabled(dataset is not None)
        actions["cleave_start"].setEnabled(
            labelmap and self.session.writable and len(self.selection) == 1)
        actions["cleave_commit"].setEnabled(active)
        actions["cleave_cancel"].setEnabled(active)
        for name in ("supervoxel_view", "cleave_start"):
            _set_why(actions[name], name,
                     NEEDS_LABELMAP if dataset is not None and not labelmap else "")
