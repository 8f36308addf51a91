"""The partial files of pyramid builds: ``.OUT.partial-PID`` beside ``OUT``.

A build writes ``OUT`` under a temporary name in the same directory and
renames it at the end (:func:`app.model.bulk.build.build_pyramid`); the name
holds the building process's id.  A build killed (or stopped by a power cut)
leaves its partial file behind: :func:`remove_stale_partials` removes those
of processes that no longer run, and never one of a live build (it holds a
lock on its partial file: :func:`hold_partial`).
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

__all__ = ["hold_partial", "partial_path", "remove_stale_partials"]


def _real(out: str | Path) -> Path:
    """``out`` with symlinks resolved: a build replaces the file a link names."""
    return Path(os.path.realpath(out))


def partial_path(out: str | Path, pid: int | None = None) -> Path:
    """The partial file a build of ``out`` by process ``pid`` (default: this one) writes."""
    real = _real(out)
    return real.with_name(f".{real.name}.partial-{os.getpid() if pid is None else pid}")


def remove_stale_partials(out: str | Path) -> list[Path]:
    """Remove the partial files of ``out`` left by builds whose process is gone.

    A file whose process still runs is kept (a live build, or a process that
    reuses a dead build's id: the safe side).  Files that cannot be removed
    (a read-only directory) are left alone.

    Returns
    -------
    list of Path
        The files removed.
    """
    real = _real(out)
    pattern = re.compile(rf"\.{re.escape(real.name)}\.partial-(\d+)")
    try:
        names = os.listdir(real.parent)
    except OSError:
        return []
    removed = []
    for name in sorted(names):
        match = pattern.fullmatch(name)
        path = real.parent / name
        if match is None or _process_runs(int(match.group(1))) or _held(path):
            continue
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def hold_partial(path: Path) -> int:
    """Create the partial file ``path`` and hold ``flock`` on it while the build
    writes it (close the descriptor returned after the file is renamed):
    builds in other processes, on other machines of a shared folder too,
    then never take it for a dead build's."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _held(path: Path) -> bool:
    """Whether a build holds the partial file ``path`` (see :func:`hold_partial`)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _process_runs(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (killed, not yet reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OverflowError:
        return False  # no process has so large an id
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]
