"""One consistent state for a reader beside a writer.

A reader (another process than the writer) sees the HDF5 file as of its last
checkpoint plus the journal's mutations after it, replayed in memory.  While
it reads, it holds ``checkpoint.lock`` shared, so no checkpoint rewrites the
file under it, and its journal queries run in one read transaction, so the
label index and the mutation log are those of the mutations it replayed.
When the first read of a quiet spell begins, the reader catches up: it
reopens the file if a commit changed it (its token changed: HDF5 keeps
metadata in memory, so a file rewritten under an open handle would read
torn), and replays the mutations recorded since.  Reads in several threads
share one state; catching up waits until none is in flight.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app.model.journal.file_locks import file_token, lock_shared, read_lock_fd, unlock
from app.model.journal.sidecar import checkpoint_lock_path, intent_lock_path

__all__ = ["ReadSnapshot"]


class ReadSnapshot:
    """Holds a reader's state still while it reads (see the module docstring).

    Parameters
    ----------
    path : Path
        The HDF5 file.
    catch_up : callable
        ``catch_up(file_changed)``, called when the first read of a quiet spell
        begins, with ``checkpoint.lock`` held shared: reopen the file if
        ``file_changed`` (always on the first read), begin the journal's read
        transaction and replay what the state lacks.  No other thread of this
        process reads meanwhile, but those of :meth:`enlist`.
    release : callable
        Called when the last read in flight ends: end the read transaction.
    """

    def __init__(
        self, path: Path, catch_up: Callable[[bool], None], release: Callable[[], None]
    ) -> None:
        self._path = path
        self._catch_up = catch_up
        self._release = release
        self._token: bytes | None = None
        self._lock_fd: int | None = None
        self._intent_fd: int | None = None
        self._cond = threading.Condition()
        self._active = 0
        self._catching_up = False
        self._depth = threading.local()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Read inside this: the state does not change until the block ends
        (re-entrant; shared by the threads reading at the same time)."""
        depth = getattr(self._depth, "n", 0)
        if depth or getattr(self._depth, "enlisted", False):
            self._depth.n = depth + 1
            try:
                yield
            finally:
                self._depth.n = depth
            return
        with self._cond:
            while self._catching_up:
                self._cond.wait()
            first = self._active == 0
            self._active += 1
            self._catching_up = first
        self._depth.n = 1
        try:
            if first:
                self._begin()
            yield
        finally:
            self._depth.n = 0
            self._leave()

    def _begin(self) -> None:
        """Lock out commits and catch up (first reader of a quiet spell)."""
        try:
            self._open_lock_files()
            lock_shared(self._intent_fd)
            lock_shared(self._lock_fd)
            unlock(self._intent_fd)
            token = file_token(self._lock_fd)
            changed = token != self._token  # always on the first read: opened unlocked
            self._token = token
            self._catch_up(changed)
        finally:
            with self._cond:
                self._catching_up = False
                self._cond.notify_all()

    def enlist(self) -> None:
        """Make the calling thread one that catch-up work runs on (a thread pool's
        initializer): its reads go through while the state is caught up."""
        self._depth.enlisted = True

    def _leave(self) -> None:
        with self._cond:
            self._active -= 1
            if self._active:
                return
            try:
                self._release()
            finally:
                unlock(self._lock_fd)

    def _open_lock_files(self) -> None:
        """Open the lock files once they exist (a writer may make them later)."""
        if self._lock_fd is None:
            self._lock_fd = read_lock_fd(checkpoint_lock_path(self._path))
        if self._intent_fd is None:
            self._intent_fd = read_lock_fd(intent_lock_path(self._path))

    def close(self) -> None:
        """Close the lock files."""
        for fd in (self._lock_fd, self._intent_fd):
            if fd is not None:
                os.close(fd)
        self._lock_fd = self._intent_fd = None

