"""The keyboard shortcuts dialog."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.shortcuts import MOUSE_AND_NAPARI, SHORTCUTS


def native_key(key: str) -> str:
    """A key sequence as the platform shows it."""
    return QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText) if key else ""


class ShortcutsDialog(QDialog):
    """Lists segmend's shortcuts, then mouse gestures and useful napari keys.  Non-modal."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("segmend - keyboard shortcuts")
        self.setModal(False)
        rows = [(native_key(s.key), s.text, s.help) for s in SHORTCUTS if s.key]
        rows += [(k, "", v) for k, v in MOUSE_AND_NAPARI]
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setHorizontalHeaderLabels(["Key", "Command", "What it does"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                self.table.setItem(r, c, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("segmend's shortcuts work anywhere in the window."))
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(720, 480)

    def keys(self) -> list[str]:
        """The keys listed (first column), for tests."""
        items = [self.table.item(r, 0) for r in range(self.table.rowCount())]
        return [item.text() if item is not None else "" for item in items]
