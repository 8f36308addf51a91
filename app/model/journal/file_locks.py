"""The locks that keep one writer per dataset and readers apart from commits.

- **The writer lock** has two parts.  ``writer.lock`` in the sidecar folder
  (``flock``) names the writing process for others to report; an open file
  description lock (Linux ``F_OFD_SETLK``) on one byte far past the end of the
  HDF5 file itself binds the lock to the file's identity, so that no second
  writer gets in through a hard link (a symlink or another spelling of the path
  already shares the sidecar: see :mod:`app.model.journal.sidecar`).  ``fcntl``
  record locks and ``flock`` locks are apart on Linux, so this never meets
  HDF5's own file lock.
- **Commits and readers.**  A writer commits a checkpoint holding
  ``commit.intent`` then ``checkpoint.lock`` exclusively, and HDF5's own file
  lock (``flock`` on the HDF5 file) exclusively: a plain HDF5 reader, which
  holds that lock shared while the file is open, either opens a complete
  checkpoint or is refused at open, and a checkpoint is put off (retried)
  while one has it open.  Before the commit the writer writes a new token
  into ``checkpoint.lock``.  segmend's readers hold ``checkpoint.lock``
  shared while they read, and reopen the file when its token changed
  (:mod:`app.model.read_snapshot`); a commit holding ``commit.intent`` tells
  them it waits, and waits for them :data:`COMMIT_WAIT` seconds at most.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from app.model.errors import FileBusyError, WriterLockedError
from app.model.journal.sidecar import checkpoint_lock_path, intent_lock_path, lock_path

__all__ = [
    "WriterLock",
    "commit_guard",
    "commit_waiting",
    "file_token",
    "lock_shared",
    "no_commit_meanwhile",
    "read_lock_fd",
    "take_writer_lock",
    "unlock",
    "writer_holding",
]

_IDENTITY_BYTE = 1 << 62
"""The byte of the HDF5 file whose record lock marks its writer (never data)."""
_FLOCK_STRUCT = struct.Struct("hhqqi4x")  # struct flock on Linux: type, whence, start, len, pid
_TOKEN_BYTES = 32
COMMIT_WAIT = 10.0
"""Seconds a commit waits for segmend's readers to let go (their lease is
shorter: :data:`app.model.read_snapshot.LEASE_MAX`); then it fails, to be retried."""


class WriterLock:
    """The writer lock of one dataset, held until :meth:`release`."""

    def __init__(self, sidecar_fd: int, identity_fd: int | None) -> None:
        self._fds = [sidecar_fd] + ([identity_fd] if identity_fd is not None else [])

    def release(self) -> None:
        """Let go of the lock (twice is harmless)."""
        while self._fds:
            os.close(self._fds.pop())


def take_writer_lock(path: Path) -> WriterLock:
    """Become the one writer of the dataset at ``path``; the sidecar's lock file
    names this process for others to report.

    Raises
    ------
    app.model.errors.WriterLockedError
        Another process writes the dataset, through this path or another name
        of the same file.
    """
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise WriterLockedError(
            f"{path} is open for writing by {holder}; open it read-only or close the other writer"
        ) from None
    try:
        lock = WriterLock(fd, _lock_identity(path))
    except BaseException:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        _make_commit_locks(path)
    except BaseException:
        lock.release()
        raise
    return lock


def _make_commit_locks(path: Path) -> None:
    """Make the lock files of commits and readers, with a token's bytes that
    commits then overwrite in place (a full disk takes that)."""
    os.close(os.open(intent_lock_path(path), os.O_RDWR | os.O_CREAT, 0o644))
    token_fd = os.open(checkpoint_lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if os.fstat(token_fd).st_size < _TOKEN_BYTES:
            with suppress(OSError):
                _write_token(token_fd)
    finally:
        os.close(token_fd)


def writer_holding(path: Path) -> str | None:
    """Who writes the dataset at ``path`` (by any name of the file), or None if
    nobody does.  Takes no lock."""
    try:
        fd = os.open(lock_path(path), os.O_RDONLY)
    except OSError:
        pass
    else:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd)
        finally:
            os.close(fd)
    if _identity_locked(path):
        return "another process (through another name of the same file)"
    return None


def _holder(fd: int) -> str:
    return os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"


def _ofd_request(kind: int) -> bytes:
    return _FLOCK_STRUCT.pack(kind, os.SEEK_SET, _IDENTITY_BYTE, 1, 0)


def _lock_identity(path: Path) -> int | None:
    """Hold the record lock marking the HDF5 file's writer; returns its descriptor
    (None where the system has no open file description locks or the file is
    missing, which opening the dataset reports itself)."""
    if not hasattr(fcntl, "F_OFD_SETLK"):
        return None
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _ofd_request(fcntl.F_WRLCK))
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise WriterLockedError(
                f"{path} is open for writing by another process (through another name of "
                "the same file); open it read-only or close the other writer"
            ) from None
        raise
    return fd


def _identity_locked(path: Path) -> bool:
    if not hasattr(fcntl, "F_OFD_GETLK"):
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _ofd_request(fcntl.F_WRLCK))
    finally:
        os.close(fd)
    return bool(_FLOCK_STRUCT.unpack(answer)[0] != fcntl.F_UNLCK)


@contextmanager
def commit_guard(path: Path, *, hdf5_lock: bool = True) -> Iterator[None]:
    """Held by the writer while a checkpoint commits to the HDF5 file at ``path``
    (see the module docstring); a new file token is written as it begins.
    Without ``hdf5_lock`` plain HDF5 readers are not waited for (rolling back
    a torn commit: what they would read is torn anyway).

    Raises
    ------
    app.model.errors.FileBusyError
        Another program has the HDF5 file open (it holds HDF5's file lock), or
        segmend readers held their state longer than :data:`COMMIT_WAIT`: the
        commit must be tried again later.
    """
    with _flocked(intent_lock_path(path), fcntl.LOCK_EX), _flocked(
        checkpoint_lock_path(path), fcntl.LOCK_EX | fcntl.LOCK_NB
    ) as token_fd:
        if not _wait_for_readers(token_fd):
            raise FileBusyError(
                f"cannot write {path}: segmend readers held it for {COMMIT_WAIT:.0f} s "
                "(a long snapshot or verify)"
            )
        h5_fd = os.open(path, os.O_RDONLY)
        try:
            try:
                if hdf5_lock:
                    fcntl.flock(h5_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FileBusyError(
                    f"cannot write {path}: another program has it open (HDF5 file lock)"
                ) from None
            _write_token(token_fd)  # first: a token that cannot change stops the commit
            yield
        finally:
            os.close(h5_fd)


def _write_token(fd: int) -> None:
    """A new token in ``checkpoint.lock``, over the last one (same length)."""
    os.pwrite(fd, uuid.uuid4().hex.encode(), 0)


@contextmanager
def _flocked(path: Path, operation: int) -> Iterator[int]:
    """``path`` open, with ``flock(operation)`` tried (with ``LOCK_NB`` the caller
    takes it: :func:`_wait_for_readers`)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not operation & fcntl.LOCK_NB:
            fcntl.flock(fd, operation)
        yield fd
    finally:
        os.close(fd)


def _wait_for_readers(fd: int) -> bool:
    """Take ``flock`` exclusively on ``checkpoint.lock`` within :data:`COMMIT_WAIT`
    seconds; False if readers hold it longer.  Readers see the commit waiting
    (it holds ``commit.intent``) and let go within their lease."""
    deadline = time.monotonic() + COMMIT_WAIT
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


@contextmanager
def no_commit_meanwhile(path: Path) -> Iterator[bytes]:
    """Hold ``checkpoint.lock`` of the dataset at ``path`` shared (if a writer
    ever made it), to read the HDF5 file while no commit rewrites it; yields
    the token of the last commit (:func:`file_token`)."""
    fd = read_lock_fd(checkpoint_lock_path(path))
    try:
        lock_shared(fd)
        yield file_token(fd)
    finally:
        if fd is not None:
            os.close(fd)


def read_lock_fd(path: Path) -> int | None:
    """A read-only descriptor of the lock file ``path`` (``flock`` works on it),
    or None if there is none (no writer ever made it) or it cannot be read."""
    try:
        return os.open(path, os.O_RDONLY)
    except OSError:
        return None


def lock_shared(fd: int | None) -> None:
    """Take ``flock`` shared on ``fd`` (nothing if None); blocks while a commit holds it."""
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_SH)


def unlock(fd: int | None) -> None:
    """Let go of ``flock`` on ``fd`` (nothing if None)."""
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def commit_waiting(intent_fd: int | None) -> bool:
    """Whether a commit waits to begin (it holds ``commit.intent``: see
    :func:`commit_guard`); False without the lock file."""
    if intent_fd is None:
        return False
    try:
        fcntl.flock(intent_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(intent_fd, fcntl.LOCK_UN)
    return False


def file_token(fd: int | None) -> bytes:
    """The token the last commit wrote into ``checkpoint.lock`` (b"" if none)."""
    return b"" if fd is None else os.pread(fd, 64, 0)
