"""``segmend [FILE] [--screenshot OUT.png] [--select ID ...]``: run the desktop app."""

from __future__ import annotations

from collections.abc import Sequence

SCREENSHOT_SIZE = (1400, 900)


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
    import napari
    from napari.qt import get_qapp

    from app.ui.main_window import SegmendWindow
    from app.ui.screenshot import ScreenshotDriver

    app = get_qapp()
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
