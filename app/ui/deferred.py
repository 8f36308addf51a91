"""Cosmetic widget updates, batched so that they do not hold back the view.

In a window that holds an OpenGL canvas, Qt repaints a changed widget by
composing the whole window again through OpenGL: with software rendering
(Mesa under Xvfb, a remote desktop) that costs 10-15 ms of the GUI thread per
repaint, whatever the widget.  An edit changes several status texts at once
(the pending-work count when the edit is queued and again when it starts, the
status line, the mutation count), and each change made in its own pass of the
event loop would cost such a repaint before the view could show the edit.
:class:`DeferredUpdates` keeps the latest value of each text and applies them
all together once, ``delay_ms`` after the first change: the view's redraw
comes first, and the texts follow in one repaint.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QObject, QTimer, Slot

STATUS_DELAY_MS = 200
"""How long status texts wait, at most, behind the view (see the module docstring)."""


class DeferredUpdates(QObject):
    """Apply the latest update of each key, all at once, after a delay.  GUI thread only.

    Parameters
    ----------
    delay_ms : int
        The delay between the first pending update and their application.
    """

    def __init__(self, delay_ms: int = STATUS_DELAY_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending: dict[str, Callable[[], None]] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.flush)

    def put(self, key: str, apply: Callable[[], None]) -> None:
        """Run ``apply`` at the next flush, instead of any update of ``key`` put before."""
        self._pending[key] = apply
        if not self._timer.isActive():
            self._timer.start()

    @property
    def pending(self) -> bool:
        """Whether updates wait for the next flush."""
        return bool(self._pending)

    @Slot()
    def flush(self) -> None:
        """Apply every pending update now."""
        self._timer.stop()
        pending, self._pending = self._pending, {}
        for apply in pending.values():
            apply()
