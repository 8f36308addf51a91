"""The desktop app as the command line sees it: a function it is handed.

The CLI never imports :mod:`app.ui` (an import-linter contract); the program
(:mod:`app.launcher`) passes :func:`app.cli.main` a :class:`AppRunner`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from app.model.geometry import Coord


class AppRunner(Protocol):
    """Runs the desktop app until its window closes; returns the exit status.

    See :func:`app.ui.main.run_app` for the parameters (``seeds``: seed groups
    of s0 voxels z, y, x).
    """

    def __call__(self, file: str | None = None, *, demo: bool = False,
                 screenshot: str | None = None, select: Sequence[int] = (),
                 seeds: Sequence[Sequence[Coord]] = ()) -> int: ...
