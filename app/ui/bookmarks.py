"""Bookmarks: places in the volume with a note, kept in the ``bookmarks`` annotation set.

A bookmark is a DVID ``Note`` element: ``{"Pos": [x, y, z], "Kind": "Note",
"Prop": {"comment": note, "user": user}}``.  :class:`BookmarksPanel` lists
the set's elements (sorted by position), adds one at the centre of the view
(the plane shown, the camera's centre; s0 voxels) with the note typed, jumps
to one (the view centred there, on its plane; a double-click too) and deletes
one.  The list is read on the session's worker pool when a dataset opens and
after each write; each write is a durable journal commit, run on the edit lane
(:func:`app.ui.annotation_jobs.write`); errors go to the status line (and the
session's reporter).  GUI thread only.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple

from qtpy.QtCore import Signal, Slot
from qtpy.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.annotation_jobs import BOOKMARKS, write
from app.ui.compat import camera
from app.ui.controller import Session

if TYPE_CHECKING:
    from app.model.dataset import Dataset

Point = tuple[int, int, int]
"""``(x, y, z)``, s0 voxels: DVID's order."""


class Bookmark(NamedTuple):
    """One element of the ``bookmarks`` set."""

    pos: Point
    comment: str
    user: str


def read_bookmarks(ds: Dataset) -> list[Bookmark]:
    """Every element of the ``bookmarks`` set, sorted by position (a pool thread)."""
    out = []
    for element in ds.annotations.export(BOOKMARKS):
        prop = element.get("Prop") or {}
        x, y, z = (int(v) for v in element["Pos"])
        out.append(Bookmark((x, y, z), str(prop.get("comment", "")), str(prop.get("user", ""))))
    return out


def bookmark_json(pos: Point, comment: str, user: str | None) -> str:
    """A DVID ``POST /elements`` body of one bookmark (a ``Note`` element; no
    ``user`` property when the user is not known)."""
    prop = {"comment": comment, **({"user": user} if user else {})}
    return json.dumps([{"Pos": list(pos), "Kind": "Note", "Tags": [], "Prop": prop,
                        "Rels": []}])


def view_centre(viewer: Any, shape: tuple[int, int, int]) -> Point:
    """The s0 voxel ``(x, y, z)`` at the centre of the view: the plane shown and the
    camera's centre (in 3D display, the camera's centre), inside the volume."""
    centre = [float(v) for v in camera(viewer).center][-3:]
    if int(viewer.dims.ndisplay) == 2 or len(centre) < 3:
        centre = [float(viewer.dims.point[-3]), *centre[-2:]]
    z, y, x = (min(max(round(v), 0), n - 1) for v, n in zip(centre, shape, strict=True))
    return x, y, z


def item_text(mark: Bookmark) -> str:
    """A bookmark as the list shows it."""
    x, y, z = mark.pos
    return f"{mark.comment or '(no note)'}   [{x}, {y}, {z}]"


class BookmarksPanel(QGroupBox):
    """The ``bookmarks`` set: list, add at the view's centre, jump to, delete.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose view is bookmarked and moved.
    session : Session
        Reads and writes its dataset's ``bookmarks`` set.
    """

    changed = Signal(object)
    """The :class:`Bookmark` s now listed. GUI thread."""
    jumped = Signal(tuple)
    """The view was centred on this bookmark position ``(x, y, z)``. GUI thread."""
    message = Signal(str)
    """A one-line status. GUI thread."""

    def __init__(self, viewer: Any, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Bookmarks", parent)
        self.viewer = viewer
        self.session = session
        self.marks: list[Bookmark] = []
        self._request = 0

        self.list = QListWidget(self)
        self.list.setMinimumHeight(50)
        self.list.setMaximumHeight(110)
        self.list.itemDoubleClicked.connect(lambda _item: self.jump())
        self.list.currentRowChanged.connect(lambda _row: self._update_enabled())
        self.note_edit = QLineEdit(self)
        self.note_edit.setPlaceholderText("note")
        self.note_edit.returnPressed.connect(self.add)
        self.add_button = QPushButton("Add at centre", self)
        self.add_button.setToolTip("Bookmark the centre of the view (the plane shown) with "
                                   "the note")
        self.add_button.clicked.connect(self.add)
        self.jump_button = QPushButton("Jump to", self)
        self.jump_button.setToolTip("Centre the view on the bookmark (or double-click it)")
        self.jump_button.clicked.connect(self.jump)
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.clicked.connect(self.delete)

        grid = QGridLayout()
        grid.addWidget(self.note_edit, 0, 0)
        grid.addWidget(self.add_button, 0, 1)
        grid.addWidget(self.jump_button, 1, 0)
        grid.addWidget(self.delete_button, 1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(grid)

        session.opened.connect(self._on_opened)
        session.closed.connect(self._on_closed)
        self._update_enabled()

    @property
    def current(self) -> Bookmark | None:
        """The bookmark picked in the list, or None."""
        row = self.list.currentRow()
        return self.marks[row] if 0 <= row < len(self.marks) else None

    # ----------------------------------------------------------------- reads
    @Slot(object)
    def _on_opened(self, _dataset: Dataset) -> None:
        self.refresh()

    @Slot()
    def _on_closed(self) -> None:
        self._request += 1
        self._show([])

    def refresh(self) -> None:
        """Read the ``bookmarks`` set on the pool, then list it."""
        self._request += 1
        request = self._request
        self.session.read(read_bookmarks, lambda marks: self._ready(request, marks),
                          name="read bookmarks", on_error=self._error_exc)

    def _ready(self, request: int, marks: list[Bookmark]) -> None:
        if request == self._request:  # (else stale: a later read is coming)
            self._show(marks)

    def _show(self, marks: list[Bookmark]) -> None:
        keep = self.current
        self.marks = list(marks)
        self.list.clear()
        for mark in marks:
            item = QListWidgetItem(item_text(mark))
            x, y, z = mark.pos
            item.setToolTip(f"x={x}, y={y}, z={z}" + (f", by {mark.user}" if mark.user else ""))
            self.list.addItem(item)
        if keep is not None and keep in self.marks:
            self.list.setCurrentRow(self.marks.index(keep))
        self._update_enabled()
        self.changed.emit(list(marks))

    def _update_enabled(self) -> None:
        writable = self.session.writable
        self.add_button.setEnabled(writable)
        self.note_edit.setEnabled(writable)
        picked = self.current is not None
        self.jump_button.setEnabled(picked)
        self.delete_button.setEnabled(picked and writable)

    # ---------------------------------------------------------------- writes
    def add(self) -> None:
        """Bookmark the centre of the view with the note typed (off the GUI thread)."""
        dataset = self.session.dataset
        if dataset is None:
            return
        pos = view_centre(self.viewer, dataset.shape)
        comment = self.note_edit.text().strip()
        data = bookmark_json(pos, comment, self.session.user)

        def done(_n: int) -> None:
            self.note_edit.clear()
            self.message.emit(f"bookmarked [{pos[0]}, {pos[1]}, {pos[2]}]")
            self.refresh()

        write(self.session, lambda ds: ds.annotations.post(BOOKMARKS, data), done,
              name="add bookmark", context="bookmark", on_error=self.message.emit)

    def delete(self) -> None:
        """Delete the bookmark picked in the list (off the GUI thread)."""
        mark = self.current
        if mark is None:
            return

        def done(_result: None) -> None:
            self.message.emit(f"bookmark [{mark.pos[0]}, {mark.pos[1]}, {mark.pos[2]}] deleted")
            self.refresh()

        write(self.session, lambda ds: ds.annotations.delete(BOOKMARKS, mark.pos), done,
              name="delete bookmark", context="bookmark", on_error=self.message.emit)

    # ---------------------------------------------------------------- jump
    def jump(self) -> None:
        """Centre the view on the bookmark picked in the list, on its plane."""
        mark = self.current
        if mark is None:
            return
        x, y, z = mark.pos
        self.viewer.dims.set_point(0, z)
        camera(self.viewer).center = (float(z), float(y), float(x))
        self.message.emit(f"{mark.comment or 'bookmark'} at z={z}, y={y}, x={x}")
        self.jumped.emit(mark.pos)

    def _error_exc(self, exc: BaseException) -> None:
        self.message.emit(self.session.reporter.error(exc, context="reading bookmarks"))
