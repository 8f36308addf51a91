"""Durability: kill -9 a writer at random points and inside HDF5 commits; nothing
acknowledged is lost, every mutation is all-or-nothing, and the HDF5 file always opens."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.model.bulk.build import build_pyramid
from app.model.dataset import open_dataset
from app.model.journal.replay import log_lines
from app.model.journal.sidecar import rollback_path
from app.model.storage.safefile import PAGE_SIZE, CommittedView, SafeFile, recover
from app.model.storage.store import LABELS, PyramidStore

WRITER = Path(__file__).with_name("fault_writer.py")


def replay_model(base: NDArray[np.uint64], lines: list[dict]) -> NDArray[np.uint64]:  # type: ignore[type-arg]
    """The log replayed on a plain NumPy volume (undo/redo as a stack of states)."""
    cur = base.copy()
    past: list[NDArray[np.uint64]] = []
    future: list[NDArray[np.uint64]] = []
    for line in lines:
        action = line["Action"]
        if action == "undo":
            future.append(cur)
            cur = past.pop()
            continue
        if action == "redo":
            past.append(cur)
            cur = future.pop()
            continue
        past.append(cur.copy())
        future.clear()
        if action == "merge":
            cur[np.isin(cur, line["Labels"])] = line["Target"]
        elif action == "split":
            region = np.zeros(cur.shape, bool)
            for x, y, z, n in line["RLEs"]:
                region[z, y, x : x + n] = True
            cur[region & (cur == line["Target"])] = line["NewLabel"]
        else:
            raise AssertionError(f"unexpected action {action}")
    return cur


TORN_ROUNDS = {2: 1, 5: 3, 8: 2, 11: 5}
"""Rounds whose writer stops inside an HDF5 commit (after that many
acknowledged mutations) and is killed there; the others are killed at random
times (some of those land inside a commit too, by chance)."""


def run_writer(path: Path, round_: int, delay: float) -> tuple[list[str], bool]:
    """Run the writer and kill -9 it: inside a commit in :data:`TORN_ROUNDS`,
    else ``delay`` seconds after it opened the dataset.

    Returns the lines it printed and whether the kill left an interrupted
    HDF5 commit behind (a rollback file).
    """
    torn_after = TORN_ROUNDS.get(round_)
    extra = [] if torn_after is None else [str(torn_after)]
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(round_), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    opened, torn = threading.Event(), threading.Event()
    lines: list[str] = []

    def read(stream=proc.stdout) -> None:  # type: ignore[no-untyped-def]
        for text in stream:
            lines.append(text.strip())
            if text.startswith("OPEN"):
                opened.set()
            elif text.startswith("TORN"):
                torn.set()
        opened.set()  # the writer ended: nothing more to wait for
        torn.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert opened.wait(120) and "OPEN" in lines, "writer never opened the dataset"
        if torn_after is None:
            threading.Event().wait(delay)
        else:
            assert torn.wait(120) and "TORN" in lines, f"round {round_}: no commit stopped"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join()
        proc.stdout.close()
    return lines, rollback_path(path).exists()


@pytest.mark.slow
def test_kill_9_at_random_points(
    tmp_path: Path, real_sources: tuple[str, str], real_labels: NDArray[np.uint64]
) -> None:
    path = build_pyramid(real_sources[0], tmp_path / "victim.h5", block_size=(16, 16, 16))
    rng = random.Random(20261122)
    acked: set[int] = set()
    torn = 0
    for round_ in range(14):
        lines, interrupted = run_writer(path, round_, rng.uniform(0.05, 0.9))
        acked |= {int(t.split()[1]) for t in lines if t.startswith("ACK")}
        if round_ in TORN_ROUNDS:
            assert interrupted, f"round {round_}: the kill missed the commit"
        torn += interrupted  # killed inside an HDF5 commit: reopening must roll it back

        with open_dataset(path, "r+") as ds:
            assert not rollback_path(path).exists()
            records = ds.mutations()
            logged = {r["MutationID"] for r in records}
            assert acked <= logged, f"round {round_}: lost {sorted(acked - logged)}"
            report = ds.verify()
            assert report.ok, report.as_json()
            log = list(log_lines(ds))
            expected = replay_model(real_labels, log)
            assert np.array_equal(ds.labels(0)[...], expected), f"round {round_}"
        with h5py.File(path, "r", locking=False) as f:  # any HDF5 reader opens it
            assert np.array_equal(f["labels/s0"][...], expected)
    assert len(acked) >= 14, "the writer acknowledged too few mutations to test anything"
    assert torn >= len(TORN_ROUNDS)


def _file_with_pending_writes(tmp_path: Path) -> tuple[Path, bytes, SafeFile, h5py.File]:
    path = tmp_path / "p.h5"
    store = PyramidStore.create(path, (40, 40, 40), block_size=(8, 8, 8))
    for coord in store.level(LABELS, 0).coords():
        store.write_block(LABELS, 0, coord, np.full((8, 8, 8), 5, np.uint64))
    store.close()
    original = path.read_bytes()
    safe = SafeFile(path, tmp_path / "rollback")
    h5 = h5py.File(safe, "r+")
    store = PyramidStore(h5)
    rng = np.random.default_rng(3)
    for coord in list(store.level(LABELS, 0).coords())[::3]:
        store.write_block(LABELS, 0, coord, rng.integers(0, 9, (8, 8, 8)).astype(np.uint64))
    store.set_attrs(max_label=9)
    h5.flush()
    return path, original, safe, h5


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.6, 0.99])
def test_interrupted_commit_rolls_back_to_the_last_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fraction: float
) -> None:
    path, original, safe, _h5 = _file_with_pending_writes(tmp_path)
    assert path.read_bytes() == original  # nothing reaches the disk before commit
    pages = safe.pending_bytes // PAGE_SIZE
    assert pages >= 2
    crash_after = int(pages * fraction)
    real_pwrite = os.pwrite
    calls = [0]

    def crashing_pwrite(fd: int, data: bytes, offset: int) -> int:
        calls[0] += 1
        if calls[0] > crash_after:
            raise SystemExit("simulated crash")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", crashing_pwrite)
    with pytest.raises(SystemExit):
        safe.commit()
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    with CommittedView(path, tmp_path / "rollback") as view:  # a read-only folder's reader
        assert view.read() == original
        view.seek(-100, io.SEEK_END)
        assert view.read(1000) == original[-100:]
    assert recover(path, tmp_path / "rollback")
    assert path.read_bytes() == original
    assert not (tmp_path / "rollback").exists()
    safe.close()


def test_torn_rollback_file_means_untouched_hdf5(tmp_path: Path) -> None:
    path, original, safe, h5 = _file_with_pending_writes(tmp_path)
    (tmp_path / "rollback").write_bytes(b"SEGMEND-ROLLBACK-1\n\x00\x01")  # crash while writing it
    assert not recover(path, tmp_path / "rollback")
    assert path.read_bytes() == original and not (tmp_path / "rollback").exists()
    safe.commit()
    h5.close()
    safe.close()
    first = np.random.default_rng(3).integers(0, 9, (8, 8, 8)).astype(np.uint64)
    with h5py.File(path, "r", locking=False) as f:
        assert f.attrs["max_label"] == 9
        assert np.array_equal(f["labels/s0"][0:8, 0:8, 0:8], first)
        assert f["labels/s0"][8, 0, 0] == 5


def test_a_refused_commit_rolls_back_at_once_and_can_be_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, original, safe, _h5 = _file_with_pending_writes(tmp_path)
    safe.truncate(len(original) // 2)  # HDF5 may shrink the file: it never shrinks on disk

    real_ftruncate = os.ftruncate

    def no_space(fd: int, size: int) -> None:  # the disk fills after the new pages
        monkeypatch.setattr(os, "ftruncate", real_ftruncate)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "ftruncate", no_space)
    with pytest.raises(OSError, match="No space"):
        safe.commit()
    monkeypatch.undo()
    assert path.read_bytes() == original and not (tmp_path / "rollback").exists()
    safe.commit()  # space is back: the same buffered pages are written again
    assert path.read_bytes() != original and not (tmp_path / "rollback").exists()
    assert safe.pending_bytes == 0
    _h5.close()  # (its closing writes are never committed)
    safe.close()
