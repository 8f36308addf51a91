"""The ``flock`` locks beside a dataset: one writer, and checkpoint commits apart
from readers opening the file (paths in :mod:`app.model.journal.sidecar`)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.model.errors import WriterLockedError
from app.model.journal.sidecar import lock_path


@contextmanager
def file_lock(path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold ``flock`` on ``path`` (if its directory exists): writers commit a
    checkpoint exclusively, readers open the HDF5 file shared, so that no reader
    opens a file whose commit is half written."""
    if not path.parent.exists():
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def take_writer_lock(path: Path) -> int:
    """Become the one writer of the dataset at ``path``; the lock file names this
    process for others to report.

    Returns
    -------
    int
        The lock file's descriptor: closing it releases the lock.

    Raises
    ------
    app.model.errors.WriterLockedError
        Another process holds the lock.
    """
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise WriterLockedError(
            f"{path} is open for writing by {holder}; open it read-only or close the other writer"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
    return fd
