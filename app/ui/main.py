"""``segmend [FILE] [--screenshot OUT.png] [--select ID ...] [--seeds X,Y,Z ...]``:
run the desktop app."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from app.display import display_problem

if TYPE_CHECKING:
    from app.model.geometry import Coord

SCREENSHOT_SIZE = (1400, 900)


def run_app(file: str | None = None, *, demo: bool = False, screenshot: str | None = None,
            select: Sequence[int] = (), seeds: Sequence[Sequence[Coord]] = ()) -> int:
    """Open the segmend window (optionally on ``file``) and run until it closes.

    Parameters
    ----------
    file : str, optional
        A pyramid to open (a ``.npy`` volume opens the import dialog).
    demo : bool
        ``file`` is the demo pyramid (labelmap mode, :func:`app.model.demo.ensure_demo`):
        build it first if missing, outdated or in voxel mode.
    screenshot : str, optional
        Save a screenshot of the whole window to this PNG once the visible
        data is drawn, then exit.
    select : sequence of int
        With ``screenshot``: bodies to select and show (the view goes to the first).
    seeds : sequence of sequences of (z, y, x)
        With ``screenshot``: seed groups (s0 voxels) of a seeded split of
        ``select[0]``, shown in progress: the seeds, on the first seed's plane,
        and the preview.  A seed the split refuses (off the body, outside the
        volume) is an error: status 1, no screenshot.

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
    skip_pyside_source_scan()
    import napari
    from napari.qt import get_qapp

    from app.ui.main_window import SegmendWindow
    from app.ui.screenshot import ScreenshotDriver

    app = get_qapp()
    if screenshot is None:
        window = SegmendWindow(show=True, path=file, demo=demo)
        napari.run()
        window.shutdown()
        return 0
    window = SegmendWindow(show=True)
    window.qt_window.resize(*SCREENSHOT_SIZE)
    window.apply_layout()
    driver = ScreenshotDriver(window, screenshot, list(select),
                              seeds=[list(group) for group in seeds])
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


def skip_pyside_source_scan() -> bool:
    """Load the Qt binding and spare later imports PySide6's reading of their source.

    Once PySide6 is loaded it runs a hook after the import of every new
    module that reads the module's whole source (``inspect.getsource``, kept
    in ``linecache``) to decide how the module takes part in PySide's opt-in
    ``__feature__`` switching (``snake_case``, ``true_property``): some
    1,100 files read while the app starts (napari issue #8584); without the
    reads segmend's first frame with data came 0.3-0.4 s sooner in paired
    runs.  The answer only matters once some module opts in.  A module that
    does registers its features when it imports ``__feature__``, before the
    hook asks; every other module is answered "uses PySide" without a read,
    which gives it Qt's own names, as written.

    Process-wide: call before napari's Qt modules load (the app does, first).

    Returns
    -------
    bool
        False if there was nothing to replace (another binding, or a PySide6
        without this hook): then imports behave as before.
    """
    import qtpy.QtCore  # noqa: F401  (loads the binding)

    feature: Any = sys.modules.get("shibokensupport.feature")  # PySide6's own, no stubs
    if feature is None or not callable(getattr(feature, "_mod_uses_pyside", None)):
        return False
    feature._mod_uses_pyside = _uses_qt_names
    return True


def _uses_qt_names(_module: object) -> bool:
    """PySide6's feature hook: every module sees Qt's own names (see above)."""
    return True
