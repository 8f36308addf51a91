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


def run_app(file: str | None = None, *, demo: bool = False, screenshot: str | None = None,
            select: Sequence[int] = ()) -> int:
    """Open the segmend window (optionally on ``file``) and run until it closes.

    Parameters
    ----------
    file : str, optional
        A pyramid to open (a ``.npy`` volume opens the import dialog).
    demo : bool
        ``file`` is the demo pyramid: build it first if missing or outdated.
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
    use_cached_units()
    import napari
    from napari.qt import get_qapp

    from app.ui import warmup
    from app.ui.main_window import SegmendWindow
    from app.ui.screenshot import ScreenshotDriver

    app = get_qapp()
    warmup.start()
    if screenshot is None:
        window = SegmendWindow(show=True, path=file, demo=demo)
        napari.run()
        window.shutdown()
        return 0
    window = SegmendWindow(show=True)
    window.qt_window.resize(*SCREENSHOT_SIZE)
    driver = ScreenshotDriver(window, screenshot, list(select))
    driver.finished.connect(app.exit)
    driver.start(file, demo=demo)
    code = int(app.exec())
    window.shutdown()
    window.viewer.close()
    return code


def use_cached_units() -> bool:
    """Give napari a units registry that pint loads from its disk cache.

    napari's layers and dims carry pint units, and pint parses its unit
    definitions the first time its registry is used: ~0.15 s of the GIL while
    the first layers are made.  A registry made with ``cache_folder=":auto:"``
    keeps the parsed definitions in the user's cache directory (keyed by their
    content) and loads them in ~0.03 s on later starts.

    Process-wide: call before napari makes any unit (the app does, first).

    Returns
    -------
    bool
        False if the cache cannot be used (pint's default registry stays).
    """
    import pint

    try:
        registry: pint.UnitRegistry = pint.UnitRegistry(cache_folder=":auto:")
    except Exception:  # an unwritable or damaged cache costs only the time
        return False
    pint.set_application_registry(registry)
    return True
