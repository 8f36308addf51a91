"""The default layout of the segmend window: the canvas gets most of the width.

napari's docks (layer controls and list on the left) and segmend's
proofreading dock (right) are sized as a share of the window width, within
bounds, so that the canvas keeps at least :data:`CANVAS_SHARE` of the window
at the default size (napari's layer controls need some 270 pixels).
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QDockWidget, QMainWindow

DEFAULT_SIZE = (1400, 900)
"""The window's (width, height) when napari has no saved geometry (fitted to the screen)."""
CANVAS_SHARE = 0.55
"""The least share of the window width the canvas gets at the default size."""
RIGHT_SHARE, RIGHT_BOUNDS = 0.2, (270, 360)
"""segmend's dock: share of the window width and (least, most) pixels."""
LEFT_SHARE, LEFT_BOUNDS = 0.15, (200, 260)
"""napari's layer docks: share of the window width and (least, most) pixels."""


def _width(window_width: int, share: float, bounds: tuple[int, int]) -> int:
    return int(min(max(window_width * share, bounds[0]), bounds[1]))


def default_size(window: QMainWindow) -> tuple[int, int]:
    """:data:`DEFAULT_SIZE`, fitted into the available screen of ``window``."""
    screen = window.screen()
    width, height = DEFAULT_SIZE
    if screen is None:
        return width, height
    available = screen.availableGeometry()
    return min(width, available.width()), min(height, available.height())


def size_docks(window: QMainWindow, dock: QDockWidget) -> None:
    """Size segmend's ``dock`` (right) and napari's left docks for the window's width."""
    layout = window.layout()
    if layout is not None:
        layout.activate()  # a resize not laid out yet would give its space to the docks
    width = window.width()
    docks = [dock]
    widths = [_width(width, RIGHT_SHARE, RIGHT_BOUNDS)]
    area = Qt.DockWidgetArea.LeftDockWidgetArea
    for other in window.findChildren(QDockWidget):
        if window.dockWidgetArea(other) == area and other.isVisible():
            docks.append(other)
            widths.append(_width(width, LEFT_SHARE, LEFT_BOUNDS))
    window.resizeDocks(docks, widths, Qt.Orientation.Horizontal)
