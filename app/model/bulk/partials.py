"""The partial files of pyramid builds: ``.OUT.partial-PID`` beside ``OUT``.

A build writes ``OUT`` under a temporary name in the same directory and
renames it at the end (:func:`app.model.bulk.build.build_pyramid`); the name
holds the building process's id.  A build killed (or stopped by a power cut)
leaves its partial file behind: :func:`remove_stale_partials` removes those
of processes that no longer run, and never one of a live build.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["partial_path", "remove_stale_partials"]


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
        if match is None or _process_runs(int(match.group(1))):
            continue
        path = real.parent / name
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


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
