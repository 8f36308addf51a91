"""The desktop app as the command line sees it: a function it is handed.

The CLI never imports :mod:`app.ui` (an import-linter contract); the program
(:mod:`app.launcher`) passes :func:`app.cli.main` a :class:`AppRunner`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class AppRunner(Protocol):
    """Runs the desktop app until its window closes; returns the exit status.

    See :func:`app.ui.main.run_app` for the parameters.
    """

    def __call__(self, file: str | None = None, *, demo: bool = False,
                 screenshot: str | None = None, select: Sequence[int] = ()) -> int: ...
