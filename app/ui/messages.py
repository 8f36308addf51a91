"""Telling the user what went wrong, without blocking anyone.

:class:`MessageReporter` turns an exception or a text into one clear line,
emits :attr:`MessageReporter.error_shown` (tests wait on it) and shows a
*non-modal* message box, so neither the event loop nor a test ever waits on
the user.
"""

from __future__ import annotations

from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import QMessageBox, QWidget

from app.model.error_text import one_line


class MessageReporter(QObject):
    """Shows errors and notices.  Use from the GUI thread only.

    Parameters
    ----------
    parent_widget : QWidget, optional
        Parent of the message boxes.
    show_boxes : bool
        False to only emit signals (no box), e.g. inside a dock widget whose
        host shows messages itself.
    """

    error_shown = Signal(str)
    """A one-line error message was shown; emitted on the GUI thread."""
    info_shown = Signal(str)
    """A one-line notice was shown; emitted on the GUI thread."""

    def __init__(self, parent_widget: QWidget | None = None, *, show_boxes: bool = True) -> None:
        super().__init__(parent_widget)
        self.show_boxes = show_boxes
        self.last_error = ""
        self.boxes: list[QMessageBox] = []

    def error(self, what: BaseException | str, context: str = "") -> str:
        """Show an error; returns the line shown."""
        line = one_line(what)
        if context and not line.lower().startswith(context.lower()):
            line = f"{context}: {line}"
        self.last_error = line
        self.error_shown.emit(line)
        if self.show_boxes:
            self._box(QMessageBox.Icon.Warning, "segmend", line)
        return line

    def info(self, text: str) -> None:
        """Show a notice (status only, no box)."""
        self.info_shown.emit(text)

    def _box(self, icon: QMessageBox.Icon, title: str, text: str) -> None:
        self._prune()
        parent = self.parent()
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok,
                          parent if isinstance(parent, QWidget) else None)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setObjectName("segmend-error")
        self.boxes.append(box)
        box.show()

    def _prune(self) -> None:
        """Forget (and delete) the boxes the user closed."""
        for box in [b for b in self.boxes if not b.isVisible()]:
            self.boxes.remove(box)
            box.deleteLater()

    def close_boxes(self) -> None:
        """Close every open message box (tests, shutdown)."""
        for box in self.boxes:
            box.close()
            box.deleteLater()
        self.boxes.clear()
