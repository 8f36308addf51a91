"""The writer lock and the checkpoint lock beside a dataset."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from app.model.errors import WriterLockedError
from app.model.journal.file_locks import file_lock, take_writer_lock
from app.model.journal.sidecar import lock_path, sidecar_dir


def test_one_writer_at_a_time_and_the_refusal_names_it(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    sidecar_dir(path).mkdir()
    fd = take_writer_lock(path)
    assert lock_path(path).read_text() == f"pid {os.getpid()}\n"
    with pytest.raises(WriterLockedError, match=f"open for writing by pid {os.getpid()}"):
        take_writer_lock(path)
    os.close(fd)
    os.close(take_writer_lock(path))  # released with its descriptor


def _can_share(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_commit_excludes_readers_and_readers_share(tmp_path: Path) -> None:
    lock = tmp_path / "checkpoint.lock"
    with file_lock(lock, exclusive=True):
        assert not _can_share(lock)
    with file_lock(lock, exclusive=False):
        assert _can_share(lock)
    assert _can_share(lock)


def test_no_lock_file_without_its_directory(tmp_path: Path) -> None:
    lock = tmp_path / "missing" / "checkpoint.lock"
    with file_lock(lock, exclusive=False):
        pass
    assert not lock.parent.exists()
