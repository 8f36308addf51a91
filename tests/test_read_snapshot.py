"""A reader's pinned state (ReadSnapshot): caught up once per pin, shared by the
threads reading, pinned afresh after a failed catch-up or a commit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from app.model.journal.file_locks import commit_guard, take_writer_lock
from app.model.journal.sidecar import sidecar_dir
from app.model.read_snapshot import ReadSnapshot


class CatchUps:
    """A stand-in catch-up: records ``file_changed``; fails when told to."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.fail = False
        self.released = 0

    def catch_up(self, file_changed: bool) -> None:
        self.calls.append(file_changed)
        if self.fail:
            raise OSError("the file could not be reopened")

    def release(self) -> None:
        self.released += 1


@pytest.fixture
def h5_file(tmp_path: Path) -> Path:
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(4)
    sidecar_dir(path).mkdir()
    take_writer_lock(path).release()  # makes the lock files
    return path


@pytest.fixture
def snapshot(h5_file: Path) -> Iterator[tuple[ReadSnapshot, CatchUps]]:
    record = CatchUps()
    snap = ReadSnapshot(h5_file, record.catch_up, record.release)
    yield snap, record
    snap.close()


def test_the_first_read_catches_up_and_nested_reads_share_it(
    snapshot: tuple[ReadSnapshot, CatchUps],
) -> None:
    snap, record = snapshot
    with snap.hold(), snap.hold():
        pass
    assert record.calls == [True]  # the file is opened afresh the first time


def test_threads_reading_together_share_one_state(
    snapshot: tuple[ReadSnapshot, CatchUps],
) -> None:
    snap, record = snapshot
    inside, done = threading.Event(), threading.Event()

    def other() -> None:
        inside.wait()
        with snap.hold():
            pass
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    with snap.hold():
        inside.set()
        assert done.wait(30)  # it read while this one holds the state
    thread.join()
    assert record.calls == [True]


def test_a_failed_catch_up_is_retried_afresh_by_the_next_read(
    snapshot: tuple[ReadSnapshot, CatchUps],
) -> None:
    snap, record = snapshot
    record.fail = True
    with pytest.raises(OSError, match="could not be reopened"), snap.hold():
        pytest.fail("read a state that was not caught up")
    record.fail = False
    with snap.hold():
        pass
    assert record.calls == [True, True]  # reopened again: the failure may have closed it
    assert record.released == 1


def test_a_commit_gets_in_and_the_next_read_sees_the_file_changed(
    h5_file: Path, snapshot: tuple[ReadSnapshot, CatchUps]
) -> None:
    snap, record = snapshot
    with snap.hold():
        pass
    with commit_guard(h5_file):  # waits for the idle reader to let go
        pass
    with snap.hold():
        pass
    assert record.calls == [True, True]
