"""Whether this process can show a window: asked by the desktop app and by the CLI.

Loads neither Qt nor napari, so ``segmend demo`` can decide between the window
and the headless path before paying for either -- and before Qt's xcb platform
plugin, missing a system library, aborts the process (``could not load the Qt
platform plugin "xcb"``, naming a library other than the missing ones).  The
libraries that plugin loads are probed here, by the system's loader, as Qt
would load them.
"""

from __future__ import annotations

import os
import sys
from ctypes import CDLL
from importlib.util import find_spec

# Shared libraries Qt's xcb platform plugin (libqxcb, libQt6XcbQpa) and QtGui
# load from the system, with the Debian/Ubuntu package providing each
# (tools/system_deps.sh installs them all).
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}
# The modules the desktop app needs (the ``gui`` extra).
GUI_MODULES = ("PySide6", "napari")


def display_problem() -> str | None:
    """Why no window can be shown here (one line), or None.

    Checked in order: the desktop app is installed; on Linux, unless
    ``QT_QPA_PLATFORM`` names a platform other than xcb or a Wayland display
    is set: an X11 display is set and every library of
    :data:`XCB_LIBRARIES` loads.
    """
    absent = [name for name in GUI_MODULES if find_spec(name) is None]
    if absent:
        return (f"the desktop app is not installed (no {', '.join(absent)}): "
                "pip install 'segmend[gui]'")
    if not sys.platform.startswith("linux"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None
    if not platform and os.environ.get("WAYLAND_DISPLAY"):
        return None
    if not os.environ.get("DISPLAY"):
        return "no display found (set DISPLAY, or run under xvfb-run); see 'segmend --help'"
    missing = missing_libraries()
    if missing:
        packages = " ".join(dict.fromkeys(XCB_LIBRARIES[name] for name in missing))
        return (f"the window cannot start: missing {', '.join(missing)} "
                f"(Debian/Ubuntu: apt-get install {packages})")
    return None


def missing_libraries() -> list[str]:
    """The libraries of :data:`XCB_LIBRARIES` the system's loader cannot load (sonames)."""
    return [name for name in XCB_LIBRARIES if not _loads(name)]


def _loads(soname: str) -> bool:
    try:
        CDLL(soname)
    except OSError:
        return False
    return True
