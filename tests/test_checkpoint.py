"""Checkpoints: staged blocks and counters into the HDF5 file; the background thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from app.model import checkpoint as checkpoint_module
from app.model.checkpoint import Checkpointer
from app.model.engine.counters import Counters
from app.model.engine.locks import Gate
from app.model.journal.journal import Journal
from app.model.journal.sidecar import journal_path, rollback_path, sidecar_dir
from app.model.storage.palette_block import PaletteBlock
from app.model.storage.safefile import SafeFile
from app.model.storage.store import LABELS, PyramidStore

BLOCK = (4, 4, 4)


@pytest.fixture
def checkpointer(tmp_path: Path) -> Iterator[Checkpointer]:
    """A checkpointer over an empty 8³ pyramid of 4³ blocks, open as a writer opens
    it (through a SafeFile), with an engine stand-in: its gate and counters."""
    path = tmp_path / "p.h5"
    PyramidStore.create(path, (8, 8, 8), block_size=BLOCK).close()
    sidecar_dir(path).mkdir()
    safefile = SafeFile(path, rollback_path(path))
    store = PyramidStore(h5py.File(safefile, "r+"))
    journal = Journal(journal_path(path))
    engine = SimpleNamespace(gate=Gate(), counters=Counters(13, 12, 4), mapping=None)
    cp = Checkpointer(store, journal, engine, safefile, interval=3600.0)  # type: ignore[arg-type]
    yield cp
    cp.stop()
    store.close()
    safefile.close()
    journal.close()


def test_checkpoint_writes_every_kind_of_staged_block_and_the_counters(
    checkpointer: Checkpointer,
) -> None:
    store = checkpointer.store
    voxels = np.arange(64, dtype=np.uint64).reshape(BLOCK) // 10
    payload = store.encode_block(LABELS, 0, (0, 0, 1), voxels + 100)
    store.stage((LABELS, 0, 0, 0, 0), voxels.copy(), None, gen=1)  # an array, held
    store.stage((LABELS, 0, 0, 0, 1), voxels + 100, payload, gen=1)  # encoded
    store.stage((LABELS, 0, 1, 1, 1), PaletteBlock.of(voxels + 200), None, gen=1)
    assert checkpointer.checkpoint() == 3
    assert store.staged_count == 0 and store.unencoded_nbytes == 0
    assert checkpointer.checkpoint() == 0  # nothing staged, counters already written
    with h5py.File(checkpointer.safefile.path, "r", locking=False) as f:  # committed
        s0 = f["labels/s0"][...]
        attrs = {k: int(f.attrs[k]) for k in ("max_label", "next_label", "next_mutation_id")}
        assert int(f.attrs["checkpoint_mutation_id"]) == 3
    np.testing.assert_array_equal(s0[:4, :4, :4], voxels)
    np.testing.assert_array_equal(s0[:4, :4, 4:], voxels + 100)
    np.testing.assert_array_equal(s0[4:, 4:, 4:], voxels + 200)
    assert attrs == {"max_label": 12, "next_label": 13, "next_mutation_id": 4}


def test_counters_alone_make_a_checkpoint(checkpointer: Checkpointer) -> None:
    checkpointer.engine.counters = Counters(13, 12, 9)  # type: ignore[misc]
    assert checkpointer.checkpoint() == 0
    assert checkpointer.store.attr("checkpoint_mutation_id") == 8


def test_many_staged_blocks_wake_the_thread(
    checkpointer: Checkpointer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module, "CHECKPOINT_BLOCKS", 2)
    ran = threading.Event()

    def run() -> int:
        n = checkpointer.checkpoint()
        ran.set()
        return n

    checkpointer.start(run)
    store = checkpointer.store
    store.stage((LABELS, 0, 0, 0, 0), np.ones(BLOCK, np.uint64), None, gen=1)
    checkpointer.maybe_wake(None)  # one block: the thread sleeps on (an hour)
    store.stage((LABELS, 0, 0, 1, 0), np.ones(BLOCK, np.uint64), None, gen=1)
    checkpointer.maybe_wake(None)
    assert ran.wait(60)
    assert store.staged_count == 0 and checkpointer.error is None


def test_a_failed_checkpoint_is_reported_then_cleared(
    checkpointer: Checkpointer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module, "CHECKPOINT_BLOCKS", 1)
    errors_seen: list[str | None] = []
    first, second = threading.Event(), threading.Event()

    def run() -> int:
        errors_seen.append(checkpointer.error)
        if not first.is_set():
            first.set()
            raise OSError("disk full")
        n = checkpointer.checkpoint()
        second.set()
        return n

    checkpointer.start(run)
    checkpointer.store.stage((LABELS, 0, 0, 0, 0), np.ones(BLOCK, np.uint64), None, gen=1)
    checkpointer.maybe_wake(None)
    assert first.wait(60)
    checkpointer.maybe_wake(None)  # the retry comes when woken (else after 2 h)
    assert second.wait(60)
    checkpointer.stop()
    assert errors_seen == [None, "checkpoint failed: disk full"]
    assert checkpointer.error is None and checkpointer.store.staged_count == 0
