"""The writer lock (by the file's identity) and the commit lock beside a dataset."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from app.model.errors import FileBusyError, WriterLockedError
from app.model.journal.file_locks import commit_guard, take_writer_lock, writer_holding
from app.model.journal.sidecar import checkpoint_lock_path, lock_path, sidecar_dir


@pytest.fixture
def h5_file(tmp_path: Path) -> Path:
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(8)
    sidecar_dir(path).mkdir()
    return path


def test_one_writer_at_a_time_and_the_refusal_names_it(h5_file: Path) -> None:
    lock = take_writer_lock(h5_file)
    assert lock_path(h5_file).read_text() == f"pid {os.getpid()}\n"
    assert writer_holding(h5_file) == f"pid {os.getpid()}"
    with pytest.raises(WriterLockedError, match=f"open for writing by pid {os.getpid()}"):
        take_writer_lock(h5_file)
    lock.release()
    assert writer_holding(h5_file) is None
    take_writer_lock(h5_file).release()  # released for good


def test_every_spelling_of_the_path_finds_the_same_sidecar(
    h5_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = h5_file.parent / "link.h5"
    link.symlink_to(h5_file)
    monkeypatch.chdir(h5_file.parent)
    spellings = [h5_file, link, Path("d.h5"), Path("link.h5"), Path("./sub/../d.h5")]
    (h5_file.parent / "sub").mkdir()
    assert {sidecar_dir(p) for p in spellings} == {sidecar_dir(h5_file)}
    lock = take_writer_lock(h5_file)
    for spelling in spellings:
        with pytest.raises(WriterLockedError):
            take_writer_lock(spelling)
    lock.release()


def test_a_hard_link_of_a_written_file_is_refused(h5_file: Path) -> None:
    other = h5_file.parent / "other"
    other.mkdir()
    hard = other / "hard.h5"
    os.link(h5_file, hard)
    sidecar_dir(hard).mkdir()
    lock = take_writer_lock(h5_file)
    assert writer_holding(hard) is not None
    with pytest.raises(WriterLockedError, match="another name of the same file"):
        take_writer_lock(hard)
    assert not lock_path(hard).read_text()  # the refused lock named nobody
    lock.release()
    take_writer_lock(hard).release()


def _shared_nowait(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_commit_excludes_readers_and_changes_the_token(h5_file: Path) -> None:
    take_writer_lock(h5_file).release()  # makes the lock files
    before = checkpoint_lock_path(h5_file).read_bytes()
    with commit_guard(h5_file):
        assert not _shared_nowait(checkpoint_lock_path(h5_file))
        assert not _shared_nowait(h5_file)  # HDF5's own lock: plain readers refused
    assert _shared_nowait(checkpoint_lock_path(h5_file))
    assert checkpoint_lock_path(h5_file).read_bytes() != before


def test_a_commit_waits_for_a_plain_hdf5_reader(h5_file: Path) -> None:
    take_writer_lock(h5_file).release()
    before = checkpoint_lock_path(h5_file).read_bytes()
    with (
        h5py.File(h5_file, "r"),
        pytest.raises(FileBusyError, match="another program"),
        commit_guard(h5_file),
    ):
        pytest.fail("committed under a reader")
    assert checkpoint_lock_path(h5_file).read_bytes() == before
