"""The ``segmend`` program: the command line with the desktop app plugged in.

:mod:`app.cli` never imports the desktop app (an import-linter contract keeps
it so): it runs whatever app it is given.  This module gives it
:func:`run_app`, which loads :mod:`app.ui` only when a window is wanted.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.model.geometry import Coord


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``segmend``: a command, or the desktop app; returns the exit status.

    Run as the program (``argv`` None: the console script, ``python -m app``),
    it exits next: the objects it made are moved out of the garbage
    collector's reach (:func:`gc.freeze`), so that the interpreter's last
    collection does not walk them all (0.4 s of numba's and h5py's objects
    after a one-line edit command).  Everything was closed and flushed already.
    """
    from app.cli import main as cli_main

    status = cli_main(argv, run_app=run_app)
    if argv is None:
        gc.freeze()
    return status


def run_app(file: str | None = None, *, demo: bool = False, screenshot: str | None = None,
            select: Sequence[int] = (), seeds: Sequence[Sequence[Coord]] = ()) -> int:
    """Run the desktop app (see :func:`app.ui.main.run_app`), or say why it cannot."""
    try:
        from app.ui import main as ui_main
    except ImportError as exc:
        print(f"segmend: error: the desktop app is not available ({exc}); "
              "use 'segmend demo --no-gui' or 'segmend --help'", file=sys.stderr)
        return 1
    return ui_main.run_app(file, demo=demo, screenshot=screenshot, select=select, seeds=seeds)
