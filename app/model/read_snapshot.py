"""One consistent state for a reader beside a writer.

A reader (another process than the writer) sees the HDF5 file as of its last
checkpoint plus the journal's mutations after it, replayed in memory.  Its
state is *pinned* while it reads: it holds ``checkpoint.lock`` shared, so no
checkpoint rewrites the file under it, and its journal queries run in one
read transaction, so the label index and the mutation log are those of the
mutations it replayed.  Pinning catches up first: the file is reopened if a
commit changed it (its token changed: HDF5 keeps metadata in memory, so a
file rewritten under an open handle would read torn), and the mutations
recorded since are replayed.

A pin outlives the read that made it, as a lease: reads that follow one
another closely (every level of a pyramid, then the label index) see the
same state without asking for it.  The lease ends when a commit waits for
it and no read came for :data:`LEASE_IDLE` seconds (a thread of its own lets
go), or once it is :data:`LEASE_MAX` seconds old and a commit waits: reads in
flight end, new ones wait, and the state is pinned afresh after the commit;
without commits, after :data:`LEASE_QUIET` seconds without a read.  A commit
waits for readers a bounded time (:func:`~app.model.journal.file_locks.commit_guard`),
so a long ``snapshot()`` delays a checkpoint and never blocks a writer.
Reads in several threads share one state.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app.model.journal.file_locks import (
    commit_waiting,
    file_token,
    lock_shared,
    read_lock_fd,
    unlock,
)
from app.model.journal.sidecar import checkpoint_lock_path, intent_lock_path

__all__ = ["ReadSnapshot"]


LEASE_IDLE = 0.5
"""Seconds without a read after which a reader lets go of its state for a
commit that waits."""
LEASE_QUIET = 30.0
"""Seconds without a read after which a reader lets go of its state anyway."""
_POLL = 0.05
"""Seconds between the lease thread's looks for a commit waiting."""
LEASE_MAX = 5.0
"""Seconds a reader keeps its state while a commit waits for it: then reads in
flight finish, new ones wait, and the state is let go and pinned afresh."""


class ReadSnapshot:
    """Pins a reader's state while it reads (see the module docstring).

    Parameters
    ----------
    path : Path
        The HDF5 file.
    catch_up : callable
        ``catch_up(file_changed)``, called to pin the state, with
        ``checkpoint.lock`` held shared: reopen the file if ``file_changed``
        (a commit since ``token``, or a failed catch-up), begin the
        journal's read transaction and replay what the state lacks.  No other
        thread of this process reads meanwhile, but those of :meth:`enlist`.
    release : callable
        Called when the state is let go: end the read transaction.
    token : bytes, optional
        The token of the commit the file was opened after (None: unknown, the
        first pin reopens it).

    Notes
    -----
    A thread of its own (``segmend-read-lease``) lets go of an idle state.
    """

    def __init__(
        self,
        path: Path,
        catch_up: Callable[[bool], None],
        release: Callable[[], None],
        token: bytes | None = None,
    ) -> None:
        self._path = path
        self._catch_up = catch_up
        self._release = release
        self._token = token
        self._lock_fd: int | None = None
        self._intent_fd: int | None = None
        self._cond = threading.Condition()
        self._active = 0  # reads in flight
        self._pinning = False
        self._pinned = False
        self._draining = False  # a commit waits: no new read joins the pinned state
        self._since = 0.0  # when the state was pinned
        self._last = 0.0  # when the last read ended
        self._closed = False
        self._depth = threading.local()
        self._keeper = threading.Thread(target=self._keep, name="segmend-read-lease", daemon=True)
        self._keeper.start()

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
            while self._pinning or (self._pinned and self._must_drain()):
                self._cond.wait()
            renew = not self._pinned
            self._pinning = renew
            self._active += 1
        self._depth.n = 1
        try:
            if renew:
                self._pin()
            yield
        finally:
            self._depth.n = 0
            with self._cond:
                self._active -= 1
                self._last = time.monotonic()
                self._cond.notify_all()

    def enlist(self) -> None:
        """Make the calling thread one that catch-up work runs on (a thread pool's
        initializer): its reads go through while the state is caught up."""
        self._depth.enlisted = True

    def close(self) -> None:
        """Let go of the state, stop the lease thread, close the lock files."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._keeper.join()
        if self._pinned:
            self._unpin()
        for fd in (self._lock_fd, self._intent_fd):
            if fd is not None:
                os.close(fd)
        self._lock_fd = self._intent_fd = None

    def _must_drain(self) -> bool:
        """Whether the pinned state must be let go before more reads (under the
        condition): it is old and a commit waits for it."""
        if not self._draining:
            self._draining = (
                time.monotonic() - self._since > LEASE_MAX and commit_waiting(self._intent_fd)
            )
        return self._draining

    def _pin(self) -> None:
        """Lock out commits and catch up (the caller set ``_pinning``)."""
        try:
            self._open_lock_files()
            lock_shared(self._intent_fd)  # waits for a commit under way
            try:
                lock_shared(self._lock_fd)
            finally:
                unlock(self._intent_fd)
            self._pinned = True
            token = file_token(self._lock_fd)
            self._catch_up(token != self._token)
            self._token = token
            self._since = time.monotonic()  # the lease runs from when the state is ready
        except BaseException:
            self._token = None  # the next pin reopens the file
            if self._pinned:
                self._unpin()
            raise
        finally:
            with self._cond:
                self._pinning = False
                self._cond.notify_all()

    def _unpin(self) -> None:
        self._pinned = False
        self._draining = False
        try:
            self._release()
        finally:
            unlock(self._lock_fd)

    def _keep(self) -> None:
        """The lease thread: let go of a state no read uses when a commit waits
        for it (after LEASE_IDLE seconds, at once if it must be drained), or
        after LEASE_QUIET seconds."""
        with self._cond:
            while not self._closed:
                if not self._pinned or self._active or self._pinning:
                    self._cond.wait()
                    continue
                idle = time.monotonic() - self._last
                waited = idle >= LEASE_IDLE and commit_waiting(self._intent_fd)
                if waited or idle >= LEASE_QUIET or self._must_drain():
                    self._unpin()
                    self._cond.notify_all()
                else:
                    self._cond.wait(_POLL)

    def _open_lock_files(self) -> None:
        """Open the lock files once they exist (a writer may make them later)."""
        if self._lock_fd is None:
            self._lock_fd = read_lock_fd(checkpoint_lock_path(self._path))
        if self._intent_fd is None:
            self._intent_fd = read_lock_fd(intent_lock_path(self._path))
