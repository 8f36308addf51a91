"""``segmend [FILE] [--screenshot OUT.png] [--select ID ...]``: run the desktop app."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

SCREENSHOT_SIZE = (1400, 900)


def display_problem() -> str | None:
    """Why no window can be shown here, or None (Linux without X11/Wayland display)."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return "no display found (set DISPLAY, or run under xvfb-run); see 'segmend --help'"


def run_app(file: str | None = None, *, screenshot: str | None = None,
            select: Sequence[int] = ()) -> int:
    """Open the segmend window (optionally on ``file``) and run until it closes.

    Parameters
    ----------
    file : str, optional
        A pyramid to open (a ``.npy`` volume opens the import dialog).
    screenshot : str, optional
        Save a screenshot of the whole window to this PNG once the visible
        data is drawn, then exit.
    select : sequence of int
        With ``screenshot``: bodies to select and show (the view goes to the first).

    Returns
    -------
    int
        The exit status: 0, or 1 if the screenshot could not be made.
    """
    problem = display_problem()
    if problem is not None:
        print(f"segmend: error: {problem}", file=sys.stderr)
        return 1
    import napari
    from napari.qt import get_qapp

    from app.ui import warmup
    from app.ui.main_window import SegmendWindow
    from app.ui.screenshot import ScreenshotDriver

    app = get_qapp()
    warmup.start()
    window = SegmendWindow(show=True)
    if screenshot is None:
        if file:
            window.open_path(file)
        napari.run()
        window.shutdown()
        return 0
    window.qt_window.resize(*SCREENSHOT_SIZE)
    driver = ScreenshotDriver(window, screenshot, list(select))
    driver.finished.connect(app.exit)
    driver.start(file)
    code = int(app.exec())
    window.shutdown()
    window.viewer.close()
    return code
