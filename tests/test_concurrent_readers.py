"""Readers beside a writer: segmend's readers (API, ``verify`` in another process)
and plain h5py readers never fail and always see one consistent state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from app.kernels import reference
from app.model.bulk.build import build_pyramid
from app.model.dataset import Dataset, open_dataset

HERE = Path(__file__).parent
STRESS_SECONDS = float(os.environ.get("SEGMEND_STRESS_SECONDS", "60"))
RULE = "labelmap"


@pytest.fixture
def pyramid(tmp_path: Path, real_labels: NDArray[np.uint64]) -> Path:
    """The real crop as a pyramid of 16³ blocks (four levels)."""
    src = tmp_path / "seg.npy"
    np.save(src, real_labels)
    return build_pyramid(str(src), tmp_path / "p.h5", block_size=(16, 16, 16), rule=RULE)


class Writer:
    """A process editing a pyramid at random (merges, splits, undo, redo) until
    stopped; counts the edits it acknowledged."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "fault_writer.py"), str(path), "7", "--steady"],
            stdout=subprocess.PIPE, text=True, cwd=HERE.parent,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "OPEN"
        self.acked = 0
        self._reader = threading.Thread(target=self._count, daemon=True)
        self._reader.start()

    def _count(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.acked += line.startswith("ACK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()
        self._reader.join()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def writer(pyramid: Path) -> Iterator[Writer]:
    """A writer editing ``pyramid`` for the whole test."""
    w = Writer(pyramid)
    yield w
    w.stop()


def full_read(ds: Dataset) -> str:
    """Read every level, then the index of a few bodies; returns what is
    inconsistent ("" if nothing)."""
    levels = [ds.labels(s)[...] for s in range(ds.n_scales)]
    labels, counts = np.unique(levels[0][levels[0] > 0], return_counts=True)
    picks = np.linspace(0, len(labels) - 1, 5).astype(int)
    sizes = {int(labels[i]): ds.label_size(int(labels[i])) for i in picks}
    for scale in range(1, len(levels)):
        if not np.array_equal(reference.downsample_labels_ref(levels[scale - 1], RULE),
                              levels[scale]):
            return f"scale {scale} is not the downsampling of scale {scale - 1}"
    for i in picks:
        if sizes[int(labels[i])] != counts[i]:
            return f"label {labels[i]}: index says {sizes[int(labels[i])]}, s0 has {counts[i]}"
    return ""


def read_until(
    end: float, name: str, read: Callable[[], str], tally: Counter[str], problems: list[str]
) -> None:
    """Full reads by ``read`` (which returns what is inconsistent) until ``end``."""
    try:
        while time.monotonic() < end:
            problem = read()
            tally[f"{name} inconsistent" if problem else f"{name} reads"] += 1
            if problem:
                problems.append(f"{name}: {problem}")
    except Exception as exc:  # counted as a failure, then reported
        tally[f"{name} failed"] += 1
        problems.append(f"{name}: {exc!r}")


def api_reader(path: Path, end: float, tally: Counter[str], problems: list[str]) -> None:
    """Full reads through the API until ``end``, one dataset open throughout,
    each read inside ``ds.snapshot()``."""

    def read() -> str:
        with ds.snapshot():
            return full_read(ds)

    with open_dataset(path, "r") as ds:
        read_until(end, "api", read, tally, problems)


def api_opener(path: Path, end: float, tally: Counter[str], problems: list[str]) -> None:
    """Full reads through the API until ``end``, as a script does them: open,
    read level after level, close (no explicit snapshot)."""

    def read() -> str:
        with open_dataset(path, "r") as ds:
            return full_read(ds)

    read_until(end, "opener", read, tally, problems)


def verify_loop(path: Path, end: float, tally: Counter[str], problems: list[str]) -> None:
    """``segmend verify`` in another process, again and again, until ``end``."""
    while time.monotonic() < end:
        run = subprocess.run(
            [sys.executable, "-m", "app", "verify",
             str(path), "--json"],
            capture_output=True, text=True, cwd=HERE.parent,
        )
        ok = run.returncode == 0 and json.loads(run.stdout)["ok"]
        tally["verify ok" if ok else "verify failed"] += 1
        if not ok:
            problems.append(f"verify: {run.stdout.strip()[:300]} {run.stderr.strip()[:300]}")


@pytest.mark.slow
def test_readers_beside_a_writer_never_fail_and_see_one_state(
    pyramid: Path, writer: Writer
) -> None:
    end = time.monotonic() + STRESS_SECONDS
    plain = subprocess.Popen(
        [sys.executable, str(HERE / "plain_reader.py"), str(pyramid), str(STRESS_SECONDS),
         RULE],
        stdout=subprocess.PIPE, text=True, cwd=HERE.parent,
    )
    tally: Counter[str] = Counter()
    problems: list[str] = []
    threads = [
        threading.Thread(target=api_reader, args=(pyramid, end, tally, problems)),
        threading.Thread(target=api_opener, args=(pyramid, end, tally, problems)),
        threading.Thread(target=verify_loop, args=(pyramid, end, tally, problems)),
    ]
    for t in threads:
        t.start()
    out, _ = plain.communicate()
    for t in threads:
        t.join()
    plain_counts = json.loads(out)
    print(dict(tally), plain_counts, "acknowledged edits:", writer.acked)
    assert writer.proc.poll() is None, "the writer died"
    assert writer.acked
    assert not problems, problems[:5]
    assert plain_counts["failed"] == 0 and plain_counts["inconsistent"] == 0, plain_counts
    assert tally["api reads"] and tally["opener reads"] and tally["verify ok"], tally
    assert plain_counts["reads"], (
        tally, plain_counts
    )
