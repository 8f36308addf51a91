"""Full disks and failed checkpoints: loud, safe, and nothing acknowledged is lost.

The faults are real: a small tmpfs (``small_disk``) filled up (``fill_disk``)
while a dataset is edited and checkpointed.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.model import checkpoint as checkpoint_module
from app.model.bulk.build import build_pyramid
from app.model.checkpoint import Checkpointer, retry_delay
from app.model.checkpoint_problem import problem_path, read_checkpoint_problem
from app.model.dataset import Dataset, open_dataset
from app.model.engine.counters import Counters
from app.model.engine.locks import Gate
from app.model.error_text import one_line
from app.model.errors import (
    CheckpointError,
    FormatError,
    JournalWriteError,
    SegmendError,
    StagingFullError,
)
from app.model.journal.file_locks import take_writer_lock
from app.model.journal.journal import Journal
from app.model.journal.sidecar import journal_path, rollback_path, sidecar_dir
from app.model.storage.safefile import SafeFile
from app.model.storage.store import LABELS, PyramidStore
from tests.conftest import biggest, fill_disk

NO_SPACE = os.strerror(errno.ENOSPC)


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def disk_pyramid(small_disk: Path, real_sources: tuple[str, str]) -> Path:
    """The real crop built with 16³ blocks on the small disk."""
    labels, _image = real_sources
    return build_pyramid(labels, small_disk / "small.h5", block_size=(16, 16, 16))


@pytest.fixture
def writer(disk_pyramid: Path) -> Iterator[Dataset]:
    """The pyramid on the small disk open for editing; background checkpoints
    only when asked for (``checkpoint()``), so that each test says when."""
    ds = open_dataset(disk_pyramid, "r+", checkpoint_interval=3600.0)
    yield ds
    filler = disk_pyramid.parent / "filler.bin"
    filler.unlink(missing_ok=True)
    ds.close()


class LogEvents(logging.Handler):
    """Events set when the ``segmend`` logger says something containing a text."""

    def __init__(self, *texts: str) -> None:
        super().__init__(logging.DEBUG)
        self.seen = {text: threading.Event() for text in texts}

    def emit(self, record: logging.LogRecord) -> None:
        for text, event in self.seen.items():
            if text in record.getMessage():
                event.set()


@pytest.fixture
def segmend_log() -> Iterator[LogEvents]:
    handler = LogEvents("retrying", "succeeded again")
    logger = logging.getLogger("segmend")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def model_of(ds: Dataset) -> NDArray[np.uint64]:
    """The dataset's s0 labels."""
    return np.asarray(ds.labels(0)[...])


State = tuple[list[NDArray[np.uint64]], dict[str, int], int]


def _state(ds: Dataset) -> State:
    """Every level's labels, the counters and the number of mutations."""
    levels = [np.asarray(ds.labels(s)[...]) for s in range(ds.n_scales)]
    return levels, ds.engine.counters.values(), ds.mutation_count()


def _assert_unchanged(ds: Dataset, before: State) -> None:
    levels, counters, count = _state(ds)
    for scale, (now, then) in enumerate(zip(levels, before[0], strict=True)):
        assert np.array_equal(now, then), f"scale {scale} changed"
    assert counters == before[1] and count == before[2]


# ------------------------------------------------------------------ SafeFile
def _h5_with_pending_writes(
    folder: Path,
) -> tuple[Path, bytes, SafeFile, h5py.File, NDArray[np.uint64]]:
    """A small HDF5 file, and a SafeFile over it holding (uncommitted) random
    chunks that make it grow by about 2 MiB."""
    path = folder / "p.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=np.full((64, 64, 64), 5, np.uint64), chunks=(16, 16, 16))
    original = path.read_bytes()
    safe = SafeFile(path, folder / "rollback")
    h5 = h5py.File(safe, "r+")
    data = np.random.default_rng(7).integers(0, 1 << 62, (64, 64, 64), dtype=np.uint64)
    h5["d"][...] = data
    h5.attrs["stamp"] = 9
    h5.flush()
    return path, original, safe, h5, data


@pytest.mark.parametrize("leave", [0, 1 << 20], ids=["no-room", "room-for-the-rollback-only"])
def test_a_commit_the_full_disk_refuses_leaves_the_file_as_committed_and_can_be_retried(
    small_disk: Path, leave: int
) -> None:
    path, original, safe, h5, data = _h5_with_pending_writes(small_disk)
    filler = fill_disk(small_disk, leave=leave)
    with pytest.raises(OSError) as refused:
        safe.commit()
    assert refused.value.errno == errno.ENOSPC
    assert path.read_bytes() == original and not (small_disk / "rollback").exists()
    with pytest.raises(OSError):  # still full: refused again, the file still intact
        safe.commit()
    assert path.read_bytes() == original
    filler.unlink()
    safe.commit()  # space is back: the same buffered pages go in
    h5.close()
    safe.close()
    with h5py.File(path, "r", locking=False) as f:
        assert np.array_equal(f["d"][...], data) and f.attrs["stamp"] == 9


def test_a_short_write_is_completed_not_left_as_a_hole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _original, safe, h5, data = _h5_with_pending_writes(tmp_path)
    real_pwrite = os.pwrite

    def short_pwrite(fd: int, buf: memoryview, offset: int) -> int:  # what a filling disk does
        return real_pwrite(fd, memoryview(buf)[:1000], offset)

    monkeypatch.setattr(os, "pwrite", short_pwrite)
    safe.commit()
    monkeypatch.undo()
    h5.close()
    safe.close()
    with h5py.File(path, "r", locking=False) as f:
        assert np.array_equal(f["d"][...], data)


def test_hdf5_errors_name_the_file_not_the_file_object(tmp_path: Path) -> None:
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("volume", data=np.zeros((4, 4, 4), np.uint8))
    safe = SafeFile(path, tmp_path / "rollback")
    h5 = h5py.File(safe, "r+")
    try:
        assert h5.filename == str(path) and safe.name == str(path)
        with pytest.raises(FormatError) as refused:
            PyramidStore(h5)
        message = one_line(refused.value)
        assert message.startswith(f"{path}: ") and "SafeFile" not in message
    finally:
        h5.close()
        safe.close()


# -------------------------------------------------------------- checkpoints
def test_retries_back_off_to_a_minute() -> None:
    assert [retry_delay(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert retry_delay(10_000) == 60


@pytest.fixture
def checkpointer(small_disk: Path) -> Iterator[Checkpointer]:
    """A checkpointer over an empty pyramid on the small disk, opened as a writer
    opens it, with an engine stand-in (its gate and counters: 3 mutations)."""
    path = small_disk / "p.h5"
    PyramidStore.create(path, (8, 8, 8), block_size=(4, 4, 4)).close()
    sidecar_dir(path).mkdir()
    safefile = SafeFile(path, rollback_path(path))
    store = PyramidStore(h5py.File(safefile, "r+"))
    journal = Journal(journal_path(path))
    engine: Any = SimpleNamespace(gate=Gate(), counters=Counters(13, 12, 4), mapping=None)
    cp = Checkpointer(store, journal, engine, safefile, interval=3600.0)
    yield cp
    cp.stop()
    store.close()
    safefile.close()
    journal.close()


def test_a_failing_background_checkpoint_is_logged_published_retried_and_cleared(
    checkpointer: Checkpointer,
    small_disk: Path,
    segmend_log: LogEvents,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(checkpoint_module, "CHECKPOINT_BLOCKS", 1)
    monkeypatch.setattr(checkpoint_module, "FIRST_RETRY_DELAY", 0.05)
    path = checkpointer.safefile.path
    voxels = np.arange(64, dtype=np.uint64).reshape(4, 4, 4)
    checkpointer.start(checkpointer.checkpoint)
    filler = fill_disk(small_disk)
    checkpointer.store.stage((LABELS, 0, 0, 0, 0), voxels, None, gen=1)
    checkpointer.maybe_wake(None)
    assert segmend_log.seen["retrying"].wait(60)
    assert checkpointer.error == f"checkpoint failed: {NO_SPACE}"
    problem = read_checkpoint_problem(path)  # written on the full disk
    assert problem is not None and problem.startswith(f"checkpoint failed: {NO_SPACE} (process ")
    assert checkpointer.store.staged_count == 1
    filler.unlink()  # space returns: the next retry writes the block
    assert segmend_log.seen["succeeded again"].wait(60)
    assert checkpointer.error is None and read_checkpoint_problem(path) is None
    assert checkpointer.store.staged_count == 0
    with h5py.File(path, "r", locking=False) as f:
        assert np.array_equal(f["labels/s0"][:4, :4, :4], voxels)
        assert int(f.attrs["checkpoint_mutation_id"]) == 3
    checkpointer.close()
    assert not problem_path(path).exists()


def test_closing_when_the_file_cannot_be_written_releases_everything_then_says_so(
    writer: Dataset, disk_pyramid: Path, real_labels: NDArray[np.uint64]
) -> None:
    a, b = biggest(real_labels, 2)
    assert writer.merge(a, [b]) == 1
    filler = fill_disk(disk_pyramid.parent)
    with pytest.raises(CheckpointError) as failed:
        writer.close()
    assert one_line(failed.value) == (
        f"cannot write {disk_pyramid}: {NO_SPACE}; 1 edit(s) are safe in the journal and "
        "reach the file when space returns (the next segmend command on it writes them)"
    )
    take_writer_lock(disk_pyramid).release()  # the writer let go of everything
    problem = read_checkpoint_problem(disk_pyramid)
    assert problem is not None and NO_SPACE in problem  # for other processes to report
    filler.unlink()
    with open_dataset(disk_pyramid, "r") as ds:  # brings the file up to date first
        assert ds.label_size(b) == 0 and ds.label_size(a) == int(np.isin(real_labels, [a, b]).sum())
    assert read_checkpoint_problem(disk_pyramid) is None


# ------------------------------------------------------------------ journal
def test_a_journal_the_disk_refuses_raises_segmends_error_and_changes_nothing(
    writer: Dataset, disk_pyramid: Path, real_labels: NDArray[np.uint64]
) -> None:
    a, b, c = biggest(real_labels, 3)
    first = writer.merge(a, [b])
    writer.checkpoint()
    before = _state(writer)
    filler = fill_disk(disk_pyramid.parent)
    with pytest.raises(JournalWriteError) as refused:
        writer.merge(a, [c])
    assert one_line(refused.value) == (
        f"cannot write journal {journal_path(disk_pyramid)}: database or disk is full"
    )
    z, y, x = (int(v) for v in np.argwhere(model_of(writer) == c)[0])
    with pytest.raises(JournalWriteError):
        writer.split(c, mask=np.ones((1, 1, 1), bool), offset=(z, y, x))
    with pytest.raises(JournalWriteError):
        writer.next_label(1000)
    with pytest.raises(JournalWriteError):
        writer.set_max_label(writer.max_label + 1000)
    _assert_unchanged(writer, before)
    filler.unlink()
    assert writer.merge(a, [c]) == first + 1  # no MutationID was used up


def test_an_edit_durable_but_not_marked_done_is_acknowledged_and_completed_later(
    writer: Dataset, disk_pyramid: Path, real_labels: NDArray[np.uint64]
) -> None:
    a, b = biggest(real_labels, 2)
    fillers: list[Path] = []
    writer.signals.mutation_started.connect(
        lambda _record: fillers.append(fill_disk(disk_pyramid.parent))
    )  # the disk fills once the edit is durable, before it is marked done
    mid = writer.merge(a, [b])
    assert fillers and writer.engine.journal.mutation_state(mid) == "s0"
    fillers[0].unlink()
    writer.close()
    with open_dataset(disk_pyramid, "r+") as again:  # the next writer completes it
        assert again.engine.journal.mutation_state(mid) == "done"
        assert again.label_size(b) == 0


def test_edits_are_refused_while_checkpoints_fail_and_blocks_pile_up(
    writer: Dataset,
    disk_pyramid: Path,
    real_labels: NDArray[np.uint64],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(checkpoint_module, "STAGED_BLOCKS_LIMIT", 0)
    a, b, c = biggest(real_labels, 3)
    first = writer.merge(a, [b])  # staged, not yet in the file: over the limit
    filler = fill_disk(disk_pyramid.parent)
    with pytest.raises(CheckpointError):
        writer.checkpoint()
    assert writer.checkpoint_error == f"checkpoint failed: {NO_SPACE}"
    before = _state(writer)
    with pytest.raises(StagingFullError) as refused:
        writer.merge(a, [c])
    assert one_line(refused.value).startswith(
        f"cannot write {disk_pyramid}: {NO_SPACE}; edits are safe in the journal"
    )
    _assert_unchanged(writer, before)
    filler.unlink()
    writer.checkpoint()
    assert writer.checkpoint_error is None
    assert writer.merge(a, [c]) == first + 1


# ------------------------------------------------------- the whole story
def test_a_disk_filling_up_mid_batch_loses_no_acknowledged_edit(
    disk_pyramid: Path, real_labels: NDArray[np.uint64], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Edit, fill the disk in the middle of the batch, close; free the space: with
    no writer session in between, readers (segmend's and plain HDF5) see
    exactly the acknowledged edits."""
    monkeypatch.setattr(checkpoint_module, "FIRST_RETRY_DELAY", 0.05)
    bodies = biggest(real_labels, 24)
    pairs = list(zip(bodies[0::2], bodies[1::2], strict=True))
    model = real_labels.copy()
    acknowledged: list[int] = []
    refused: list[SegmendError] = []
    ds = open_dataset(disk_pyramid, "r+", checkpoint_interval=0.05)
    filler = None
    for i, (target, source) in enumerate(pairs):
        if i == 4:
            filler = fill_disk(disk_pyramid.parent)
        try:
            acknowledged.append(ds.merge(target, [source]))
        except (JournalWriteError, StagingFullError) as exc:
            refused.append(exc)
        else:
            model[model == source] = target
    try:
        ds.close()
    except CheckpointError as exc:
        assert "safe in the journal" in one_line(exc)
    assert filler is not None
    filler.unlink()
    assert acknowledged == list(range(1, len(acknowledged) + 1))
    assert len(acknowledged) >= 4 and refused, "the full disk refused nothing"
    with open_dataset(disk_pyramid, "r") as ro:
        assert [m["MutationID"] for m in ro.mutations()] == acknowledged
        assert np.array_equal(ro.labels(0)[...], model)
        assert ro.verify().ok
    with h5py.File(disk_pyramid, "r") as f:  # a plain HDF5 reader: the file caught up
        assert int(f.attrs["checkpoint_mutation_id"]) == acknowledged[-1]
        assert np.array_equal(f["labels/s0"][...], model)


# ------------------------------------------- the command line on a full disk
def box_rles(corner: tuple[int, int, int], size: int) -> bytes:
    """DVID binary RLEs (with header) of a cube of ``size`` at s0 ``corner`` (z, y, x)."""
    from app.kernels import encode_rles

    z0, y0, x0 = corner
    spans = [(x0, y, z, size) for z in range(z0, z0 + size) for y in range(y0, y0 + size)]
    return encode_rles(np.array(spans, dtype=np.int64), headered=True)


@pytest.mark.parametrize("leave", [0, 4 << 10, 64 << 10, 512 << 10, 2 << 20])
def test_a_split_on_a_full_disk_reports_success_exactly_when_it_is_durable(
    disk_pyramid: Path, real_labels: NDArray[np.uint64], tmp_path: Path, leave: int
) -> None:
    import json
    import subprocess
    import sys

    target = biggest(real_labels, 1)[0]
    corner = tuple(int(v[0]) for v in np.nonzero(real_labels == target))
    rles = tmp_path / "region.rle"
    rles.write_bytes(box_rles(corner, 6))  # type: ignore[arg-type]
    open_dataset(disk_pyramid, "r+").close()  # the label index and journal exist
    filler = fill_disk(disk_pyramid.parent, leave)
    run = subprocess.run(
        [sys.executable, "-m", "app", "split", str(disk_pyramid), str(target), "--rles", str(rles)],
        capture_output=True, text=True, cwd=Path(__file__).parent.parent,
    )
    filler.unlink()
    errors = run.stderr.splitlines()
    assert "Traceback" not in run.stderr and len(errors) <= 1, run.stderr
    with open_dataset(disk_pyramid, "r") as ro:  # (the file catches up, now there is room)
        journaled = ro.mutations()
        assert ro.verify().ok
        s0 = ro.labels(0)[...]
    if run.returncode == 1:  # refused: nothing printed, nothing recorded, nothing changed
        assert run.stdout == "" and journaled == []
        assert np.array_equal(s0, real_labels)
        return
    assert run.stdout, (run.returncode, run.stderr)
    printed = json.loads(run.stdout)
    assert [m["MutationID"] for m in journaled] == [printed["MutationID"]]
    assert (s0 == printed["label"]).sum() == journaled[0]["NewLabelSize"] > 0
    if run.returncode == 3:  # durable, but the file could not take it then
        assert "safe in the journal" in errors[0]
    else:
        assert run.returncode == 0 and not errors
