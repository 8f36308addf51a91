"""Why a dataset's checkpoints fail, for every process to read.

A writer whose checkpoints fail (:mod:`app.model.checkpoint`) writes one line
saying why into ``checkpoint.error`` in the sidecar folder, and clears it at
the next success; ``segmend info`` and ``events status`` of any process read
it.  Light: the command line imports it at startup.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from app.model.journal.sidecar import sidecar_dir

__all__ = ["ProblemFile", "problem_path", "read_checkpoint_problem"]

_PROBLEM_BYTES = 4096
"""The problem file's size, reserved while the disk has room: a full disk can
still take its message."""


def problem_path(h5_path: str | Path) -> Path:
    """The problem file of the dataset at ``h5_path``."""
    return sidecar_dir(h5_path) / "checkpoint.error"


def read_checkpoint_problem(h5_path: Path) -> str | None:
    """Why the checkpoints of the dataset at ``h5_path`` fail, as its writer last
    recorded it (None: they do not, or nobody can tell).

    The writer clears the problem at its next successful checkpoint; a writer
    that closed (or died) with the problem leaves it until the next one writes
    the file.
    """
    try:
        text = problem_path(h5_path).read_bytes()
    except OSError:
        return None
    lines = text.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else None


class ProblemFile:
    """The problem file of a writer: one line (why checkpoints fail) in a file
    whose bytes are reserved while the disk has room, and rewritten in place,
    so that a full disk can still take it.  Best effort: a file that cannot be
    written is left as it is.

    Parameters
    ----------
    path : Path
        The file (in the sidecar folder).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._shown = True  # a writer that died may have left one: cleared at the first success
        self._put(b"", keep=True)

    def show(self, text: str) -> None:
        """Write ``text`` (one line) as the problem."""
        self._shown = True
        self._put(text.encode()[: _PROBLEM_BYTES - 1] + b"\n", keep=False)

    def clear(self) -> None:
        """No problem now (the reserved bytes stay)."""
        if self._shown:
            self._shown = False
            self._put(b"", keep=False)

    def remove(self) -> None:
        """Remove the file (if it can be)."""
        with suppress(OSError):
            self.path.unlink()

    def _put(self, line: bytes, *, keep: bool) -> None:
        """Write ``line`` padded with blanks to the reserved size (``keep``: only
        pad what is there)."""
        with suppress(OSError):
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666)
            try:
                start = min(os.fstat(fd).st_size, _PROBLEM_BYTES) if keep else 0
                data = (line + b" " * _PROBLEM_BYTES)[start:_PROBLEM_BYTES]
                if data:
                    os.pwrite(fd, data, start)
            finally:
                os.close(fd)
