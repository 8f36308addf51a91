"""napari's first-layer costs, paid on a worker thread while the window is built.

The first napari layers of a process cost about a second on the GUI thread
before anything is drawn: loading napari's Numba-compiled label colouring
from the on-disk cache, initialising the units registry of its transforms,
importing the modules its thumbnails use.  :func:`start` pays them on a
background thread while the GUI thread builds the window; :func:`wait`, called
before the first real layer is made, returns once they are paid (at once if
they already are, or if no warm-up was started).

The warm-up makes two small throw-away layers that never reach a viewer: no
Qt object is touched off the GUI thread.  It initialises registries shared
with the GUI thread (napari's settings are made on the calling thread first;
the units registry is first used by layers, hence :func:`wait`).
"""

from __future__ import annotations

import threading
import warnings

_thread: threading.Thread | None = None
_error: list[BaseException] = []


def start() -> None:
    """Start the warm-up (once per process; call on the GUI thread, before any layer)."""
    global _thread
    if _thread is not None:
        return
    from napari.settings import get_settings

    get_settings()  # napari's settings singleton: made here, not on both threads
    _thread = threading.Thread(target=_run, name="segmend napari warm-up", daemon=True)
    _thread.start()


def wait() -> None:
    """Block until the warm-up (if one was started) is done.

    A warm-up that failed (napari changed in a way it did not expect) only
    costs time: it is reported once as a :class:`RuntimeWarning`.
    """
    if _thread is not None:
        _thread.join()
    if _error:
        warnings.warn(f"napari warm-up failed: {_error.pop()!r}", RuntimeWarning, stacklevel=2)


def _run() -> None:
    """Worker thread: make and slice a multiscale labels and image layer."""
    try:
        import numpy as np
        from napari.layers import Image, Labels

        labels = Labels([np.ones((4, 4, 4), np.uint64), np.ones((2, 2, 2), np.uint64)],
                        multiscale=True)
        image = Image([np.ones((4, 4, 4), np.uint8), np.ones((2, 2, 2), np.uint8)],
                      multiscale=True)
        for layer in (labels, image):
            layer.refresh()
    except BaseException as exc:  # handed to wait(), on the GUI thread
        _error.append(exc)
