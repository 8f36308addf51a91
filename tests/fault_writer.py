"""A writer process for the kill -9 test: edits a dataset until it is killed.

Usage: python tests/fault_writer.py DATASET SEED [TORN_AFTER | --steady]

Opens DATASET for writing (which repairs what the previous kill interrupted),
then performs random merges, splits and undos, checkpointing very often, with
slowed fsyncs, so that kills land inside HDF5 commits too.  After each mutation returns it prints
``ACK <MutationID>`` and flushes: the parent then knows it was acknowledged.

With TORN_AFTER, once that many mutations are acknowledged, the next HDF5
commit stops for good after writing its first page into DATASET and prints
``TORN``: a kill then lands inside that commit for certain (the rollback file
complete, the HDF5 file part old, part new).

With ``--steady`` it edits as a proofreader's session does (checkpoints every
0.2 s, fsyncs at full speed), for the concurrent readers' stress test.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

from app.model.dataset import open_dataset
from app.model.errors import InvalidMutationError, NothingToUndoError


def _slow_fsync(fd: int, _fsync=os.fsync) -> None:  # type: ignore[no-untyped-def]
    """Widen HDF5 commits (their fsyncs) so that kills land inside them often."""
    _fsync(fd)
    time.sleep(0.02)


_say_lock = threading.Lock()


def _say(line: str) -> None:
    """Print one whole line and flush (the checkpoint thread prints too)."""
    with _say_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _stop_inside_commits(path: str, armed: threading.Event) -> None:
    """Once ``armed`` is set, the first write into ``path`` (only an HDF5 commit
    writes it) completes, prints ``TORN`` and never returns."""
    target = os.stat(path)

    def pwrite(fd: int, data: bytes, offset: int, _pwrite=os.pwrite) -> int:  # type: ignore[no-untyped-def]
        written = _pwrite(fd, data, offset)
        if armed.is_set() and os.path.samestat(os.fstat(fd), target):
            _say("TORN")
            threading.Event().wait()
        return written

    os.pwrite = pwrite


def main(path: str, seed: int, torn_after: int | None, *, steady: bool = False) -> None:
    if not steady:
        os.fsync = _slow_fsync
    rng = np.random.default_rng(seed)
    ds = open_dataset(path, "r+", checkpoint_interval=0.2 if steady else 0.01)
    armed = threading.Event()
    if torn_after is not None:
        _stop_inside_commits(path, armed)
    _say("OPEN")
    shape = ds.shape
    acked = 0
    while True:
        z, y, x = (int(rng.integers(0, s)) for s in shape)
        a = int(ds.labels(0)[z, y, x])
        z2, y2, x2 = (int(rng.integers(0, s)) for s in shape)
        b = int(ds.labels(0)[z2, y2, x2])
        op = rng.random()
        try:
            if op < 0.4 and a and b and a != b:
                mid = ds.merge(a, [b])
            elif op < 0.75 and a:
                lo = [max(0, c - int(rng.integers(1, 12))) for c in (z, y, x)]
                hi = [
                    min(s, c + int(rng.integers(1, 12)))
                    for c, s in zip((z, y, x), shape, strict=True)
                ]
                mask = np.ones([h - l_ for l_, h in zip(lo, hi, strict=True)], bool)
                mid = ds.split(a, mask=mask, offset=tuple(lo)).mutation_id  # type: ignore[arg-type]
            elif op < 0.9:
                mid = ds.undo()
            else:
                mid = ds.redo()
        except (InvalidMutationError, NothingToUndoError):
            continue
        _say(f"ACK {mid}")
        acked += 1
        if torn_after is not None and acked >= torn_after:
            armed.set()


if __name__ == "__main__":
    if sys.argv[3:] == ["--steady"]:
        main(sys.argv[1], int(sys.argv[2]), None, steady=True)
    else:
        main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
