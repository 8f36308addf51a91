"""Whether this process can show a window: asked by the desktop app and by the CLI.

Loads neither Qt nor napari, so ``segmend demo`` can decide between the window
and the headless path before paying for either.
"""

from __future__ import annotations

import os
import sys


def display_problem() -> str | None:
    """Why no window can be shown here, or None (Linux without X11/Wayland display)."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return "no display found (set DISPLAY, or run under xvfb-run); see 'segmend --help'"
