"""The partial files (or folders) of builds: ``.OUT.partial-PID`` beside ``OUT``.

A build writes ``OUT`` under a temporary name in the same directory and
renames it at the end (:func:`app.model.bulk.build.build_pyramid`, and the
OME-Zarr folders of :func:`app.model.omezarr.writer.building_ome_zarr`); the
name holds the building process's id.  A build killed (or stopped by a power
cut) leaves its partial file or folder behind: :func:`remove_stale_partials`
removes those of processes that no longer run, and never one of a live build
(it holds a lock on its partial: :func:`hold_partial`).  A folder being
replaced waits under the partial name plus ``.old`` for the instant between
two renames (:func:`replace_folder`).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from pathlib import Path

__all__ = ["hold_partial", "partial_path", "remove_stale_partials", "replace_folder"]

OLD_SUFFIX = ".old"
"""Added to a partial's name for the folder it replaces (see :func:`replace_folder`)."""


def _real(out: str | Path) -> Path:
    """``out`` with symlinks resolved: a build replaces the file a link names."""
    return Path(os.path.realpath(out))


def partial_path(out: str | Path, pid: int | None = None) -> Path:
    """The partial file a build of ``out`` by process ``pid`` (default: this one) writes."""
    real = _real(out)
    return real.with_name(f".{real.name}.partial-{os.getpid() if pid is None else pid}")


def remove_stale_partials(out: str | Path) -> list[Path]:
    """Remove the partial files and folders of ``out`` left by builds whose
    process is gone (and the folders they were replacing, see :func:`replace_folder`).

    One whose process still runs is kept (a live build, or a process that
    reuses a dead build's id: the safe side).  Those that cannot be removed
    (a read-only directory) are left alone.

    Returns
    -------
    list of Path
        The files and folders removed.
    """
    real = _real(out)
    pattern = re.compile(rf"\.{re.escape(real.name)}\.partial-(\d+)(?:{re.escape(OLD_SUFFIX)})?")
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
            _remove(path)
        except OSError:
            continue
        removed.append(path)
    return removed


def _remove(path: Path) -> None:
    """Delete the file, or the folder and all it holds, ``path``."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def hold_partial(path: Path, *, folder: bool = False) -> int:
    """Create the partial file (or, with ``folder``, the empty folder) ``path``
    and hold ``flock`` on it while the build writes it (close the descriptor
    returned after it is renamed): builds in other processes, on other
    machines of a shared folder too, then never take it for a dead build's.

    A folder left at ``path`` by a dead process that had this process's id
    (and that no build holds) is removed first.

    Raises
    ------
    FileExistsError
        ``folder``, and a build holds a folder at ``path`` (another thread of
        this process building the same output).
    """
    if not folder:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    else:
        if os.path.lexists(path) and not _held(path):
            _remove(path)
        os.mkdir(path, 0o755)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def replace_folder(partial: Path, out: str | Path) -> None:
    """Rename the finished partial folder ``partial`` to ``out`` (through a
    symlink: the folder it names), replacing the folder there if any.

    A folder cannot replace another in one rename: the old one is first
    renamed to ``partial`` plus :data:`OLD_SUFFIX`, held (``flock``) until it
    is deleted.  A process killed between the two renames leaves no ``out``,
    and both folders under partial names that the next build removes.
    """
    real = _real(out)
    old = partial.with_name(partial.name + OLD_SUFFIX)
    held: int | None = None
    try:
        if real.is_dir():
            held = os.open(real, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(held, fcntl.LOCK_EX)
            os.rename(real, old)
        try:
            os.rename(partial, real)
        except OSError:
            if held is not None:  # the old folder goes back
                os.rename(old, real)
            raise
        if held is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if held is not None:
            os.close(held)


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
