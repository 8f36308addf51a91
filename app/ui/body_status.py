"""The selected bodies' annotations: status, name and synapse counts, and an editor.

:class:`BodyStatusPage` (a page of the Bodies panel, beside their sizes) lists
each selected body with its status and name
(``Dataset.body_annotations``, NeuTu's body annotations) and its PreSyn and
PostSyn counts (``Dataset.annotations.counts("synapses", body)``), and sets
the status (one of NeuTu's, or none) and the name of the current body (the
row highlighted in its table; the first selected body by default).

Everything is read on the session's worker pool when the selection changes,
when an edit commits labels of a selected body (a merge moves synapses and
deletes the merged bodies' annotations) and after each write; a later read
makes an earlier one's result stale (dropped).  A write runs on the edit lane
(:func:`app.ui.annotation_jobs.write`).  An edit refused because a body's
status is protected (``Finalized`` by default) shows the model's line; the
page comes to the front and says how to go on: change the status here, or
force the edit with the command line (the app never forces an edit).  GUI
thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from qtpy.QtCore import Qt, Signal, Slot
from qtpy.QtGui import QColor, QFont
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.model.annotations.body_fields import STATUSES
from app.ui.annotation_jobs import SYNAPSES, write
from app.ui.controller import Session
from app.ui.selection import Selection
from app.ui.synapse_layer import POSTSYN_COLOR, PRESYN_COLOR

if TYPE_CHECKING:
    from app.model.dataset import Dataset

COLUMNS = ("body", "status", "name", "pre", "post")
LEGEND = {
    3: ("\u25c6", PRESYN_COLOR, "PreSyn elements (T-bars): the synapses layer's diamonds, "
                                "arrows from each to its partners"),
    4: ("\u25cf", POSTSYN_COLOR, "PostSyn elements: the synapses layer's discs"),
}
"""The count columns' headers: the synapses layer's symbol and colour of their kind."""
NO_STATUS = "(no status)"
"""The status combo's entry that removes the status."""
PROTECTED_HINT = "protected: set another status to edit it (or --force it on the command line)"
"""What the page says after an edit refused for a protected status."""


class BodyInfo(NamedTuple):
    """One body's annotation and synapse counts (read on a pool thread)."""

    body: int
    status: str
    name: str
    pre: int
    post: int
    annotation: dict[str, object]
    """The whole body annotation (empty: none)."""


def read_infos(ds: Dataset, ids: list[int]) -> tuple[list[BodyInfo], tuple[str, ...]]:
    """The bodies' annotations and synapse counts, and the protected statuses (reads
    the journal: a pool thread)."""
    infos = []
    for body in ids:
        value = ds.body_annotations.get(body) or {}
        counts = ds.annotations.counts(SYNAPSES, body)
        infos.append(BodyInfo(body, str(value.get("status", "")), str(value.get("name", "")),
                              counts["PreSyn"], counts["PostSyn"], dict(value)))
    return infos, ds.body_annotations.protected_statuses()


class BodyStatusPage(QWidget):
    """Status, name and synapse counts of the selected bodies; edit the current body's.

    Parameters
    ----------
    session : Session
        Reads and writes its dataset's annotations.
    selection : Selection
        The bodies listed.
    """

    updated = Signal(object)
    """The :class:`BodyInfo` rows now listed. GUI thread."""
    written = Signal(int)
    """A body's annotation was written (durable). GUI thread."""
    message = Signal(str)
    """A one-line status. GUI thread."""
    refused = Signal()
    """An edit was refused for a protected status: the page shows what to do. GUI thread."""

    def __init__(self, session: Session, selection: Selection,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.selection = selection
        self.infos: dict[int, BodyInfo] = {}
        self.protected: tuple[str, ...] = ()
        self._request = 0
        self._loaded: tuple[int | None, str, str] | None = None
        """(body, status, name) last shown in the editor."""

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        for column, (symbol, colour, what) in LEGEND.items():  # the synapse layer's legend
            item = QTableWidgetItem(f"{symbol}{COLUMNS[column]}")
            item.setForeground(QColor(colour))
            item.setToolTip(what)
            self.table.setHorizontalHeaderItem(column, item)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        for column, mode in enumerate((QHeaderView.ResizeMode.ResizeToContents,
                                       QHeaderView.ResizeMode.Stretch,
                                       QHeaderView.ResizeMode.Stretch,
                                       QHeaderView.ResizeMode.ResizeToContents,
                                       QHeaderView.ResizeMode.ResizeToContents)):
            header.setSectionResizeMode(column, mode)
        self.table.setMinimumHeight(50)
        self.table.setMaximumHeight(96)
        self.table.currentCellChanged.connect(self._on_current)

        self.status_combo = QComboBox(self)
        self.status_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.status_combo.setMinimumContentsLength(3)  # (the dock is narrow)
        self.status_combo.addItem(NO_STATUS, "")
        for status in STATUSES:
            self.status_combo.addItem(status, status)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("name")
        self.name_edit.returnPressed.connect(self.apply)
        self.apply_button = QPushButton("Set", self)
        self.apply_button.setToolTip("Set the status and name of the body (durable)")
        self.apply_button.clicked.connect(self.apply)
        self.hint = QLabel("", self)
        self.hint.setWordWrap(True)
        self.hint.hide()

        editor = QHBoxLayout()
        editor.addWidget(self.status_combo, 3)
        editor.addWidget(self.name_edit, 2)
        editor.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(editor)
        layout.addWidget(self.hint)

        selection.changed.connect(self._on_selection)
        session.labels_changed.connect(self._on_labels_changed)
        session.opened.connect(self._on_opened)
        session.closed.connect(self._on_closed)
        session.edit_failed.connect(self._on_edit_failed)
        self._update_editor()

    # ----------------------------------------------------------------- state
    @property
    def current(self) -> int | None:
        """The body the editor sets: the picked row's, else the first selected."""
        ids = self.selection.ids
        row = self.table.currentRow()
        if 0 <= row < len(ids):
            return ids[row]
        return ids[0] if ids else None

    def rows(self) -> list[tuple[str, ...]]:
        """The table's texts, row by row (for tests)."""
        return [tuple(self._text(r, c) for c in range(len(COLUMNS)))
                for r in range(self.table.rowCount())]

    def _text(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text() if item is not None else ""

    # ----------------------------------------------------------------- reads
    @Slot(object)
    def _on_opened(self, _dataset: Dataset) -> None:
        self.infos.clear()
        self.refresh()

    @Slot()
    def _on_closed(self) -> None:
        self._request += 1
        self.infos.clear()
        self._hint("")
        self._fill()

    @Slot(object)
    def _on_selection(self, _ids: list[int]) -> None:
        self._hint("")
        self._fill()
        self.refresh()

    @Slot(object)
    def _on_labels_changed(self, labels: list[int]) -> None:
        if not set(labels).isdisjoint(self.selection.ids):
            self.refresh()

    def refresh(self) -> None:
        """Read the selected bodies' annotations and counts on the pool."""
        ids = self.selection.ids
        self._request += 1  # (a read still running is stale now)
        request = self._request
        if not ids or self.session.dataset is None:
            return
        self.session.read(lambda ds: read_infos(ds, ids),
                          lambda result: self._ready(request, *result),
                          name="body annotations", on_error=self._failed)

    def _ready(self, request: int, infos: list[BodyInfo], protected: tuple[str, ...]) -> None:
        if request != self._request:
            return  # stale: a later read is coming
        self.infos = {info.body: info for info in infos}
        self.protected = protected
        self._fill()
        self.updated.emit(infos)

    def _failed(self, exc: BaseException) -> None:
        self._hint(self.session.reporter.error(exc, context="reading body annotations"))

    # ------------------------------------------------------------------ view
    def _fill(self) -> None:
        ids = self.selection.ids
        current = self.table.currentRow()
        self.table.blockSignals(True)
        self.table.setRowCount(len(ids))
        for row, body in enumerate(ids):
            info = self.infos.get(body)
            texts = (str(body), "...", "", "", "") if info is None else (
                str(body), info.status, info.name, f"{info.pre:,}", f"{info.post:,}")
            for column, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if column >= 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if info is not None:
                    item.setToolTip(self._tooltip(info))
                    if column == 1 and info.status in self.protected:
                        font = QFont(item.font())
                        font.setBold(True)
                        item.setFont(font)
                self.table.setItem(row, column, item)
        if ids:  # (the highlighted row is the body the editor sets)
            self.table.setCurrentCell(current if 0 <= current < len(ids) else 0, 0)
        self.table.blockSignals(False)
        self._update_editor()

    def _tooltip(self, info: BodyInfo) -> str:
        lines = [f"body {info.body}: {info.pre:,} PreSyn, {info.post:,} PostSyn"]
        if info.status in self.protected:
            lines.append(f"status {info.status!r} is protected: merges and splits refuse it")
        lines += [f"{key}: {value}" for key, value in info.annotation.items()
                  if key != "body ID"]
        return "\n".join(lines)

    @Slot(int, int, int, int)
    def _on_current(self, *_cells: int) -> None:
        self._update_editor()

    def _update_editor(self) -> None:
        """Show the current body's status and name in the editor (only when they, or
        the body, changed: a refresh leaves what the user is typing alone)."""
        body = self.current
        info = self.infos.get(body) if body is not None else None
        self.name_edit.setPlaceholderText("name" if body is None else f"name of {body}")
        self.apply_button.setToolTip("Set the status and name of " +
                                     ("the body" if body is None else f"body {body}") +
                                     " (durable)")
        status, name = (info.status, info.name) if info is not None else ("", "")
        if (body, status, name) != self._loaded:
            self._loaded = (body, status, name)
            if status and self.status_combo.findData(status) < 0:  # (one NeuTu does not list)
                self.status_combo.addItem(status, status)
            self.status_combo.setCurrentIndex(max(0, self.status_combo.findData(status)))
            self.name_edit.setText(name)
        editable = body is not None and info is not None and self.session.writable
        for widget in (self.status_combo, self.name_edit, self.apply_button):
            widget.setEnabled(editable)

    # ----------------------------------------------------------------- write
    def apply(self) -> None:
        """Set the current body's status and name (``""`` removes one) off the GUI thread."""
        body = self.current
        if body is None:
            return
        status = str(self.status_combo.currentData() or "")
        name = self.name_edit.text().strip()

        def done(_value: object) -> None:
            shown = f"status {status!r}" if status else "no status"
            self.message.emit(f"body {body}: {shown}, " +
                              (f"name {name!r}" if name else "no name"))
            self.written.emit(body)
            self.refresh()

        write(self.session, lambda ds: ds.body_annotations.update(body, status=status, name=name),
              done, name=f"annotate body {body}", context="body status", on_error=self._error)

    def _error(self, line: str) -> None:
        self._hint(line)
        self.message.emit(line)

    def _hint(self, text: str) -> None:
        self.hint.setText(text)
        self.hint.setVisible(bool(text))

    @Slot(str, str)
    def _on_edit_failed(self, _action: str, line: str) -> None:
        if "a protected status" in line:
            self._hint(PROTECTED_HINT)
            self.refused.emit()
