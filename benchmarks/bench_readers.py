"""Readers beside a writer: what a consistent read costs against plain h5py.

Usage: python benchmarks/bench_readers.py [--size 512] [--repeats 3]

Reads every label level of a uint64 pyramid (64³ blocks, Blosc-LZ4) three ways,
in the same run:

- plain h5py (with hdf5plugin), the reference a lab's script uses;
- segmend's store through a shared h5py handle (how a writer reads);
- a segmend reader (``open_dataset(path, "r")``): its own file handle, a
  pinned state (``checkpoint.lock`` shared, one journal read transaction) —
  what makes its reads consistent beside a writer.

Then the cost of opening a reader, and of a reader's first read after a
writer's commit (the file reopened, the journal's new edits replayed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - registers the Blosc filter
import numpy as np

from app.model.bulk.build import build_pyramid
from app.model.dataset import open_dataset
from app.model.storage.store import LABELS, PyramidStore
from benchmarks.synthetic import voronoi_labels


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """The best wall time of ``repeats`` calls of ``fn`` (seconds)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "v.npy"
        np.save(src, voronoi_labels((args.size,) * 3, 4000, seed=1))
        path = build_pyramid(str(src), Path(tmp) / "p.h5")
        with h5py.File(path, "r") as f:
            n_levels = len(f["labels"])

        def plain() -> None:
            with h5py.File(path, "r") as f:
                for i in range(n_levels):
                    f[f"labels/s{i}"][...]

        def shared_store() -> None:
            store = PyramidStore.open(path, "r", cache_bytes=1 << 20)
            try:
                for lv in store.levels(LABELS):
                    store.read_region(LABELS, lv.scale, (0, 0, 0), lv.shape)
            finally:
                store.close()

        def reader() -> None:
            with open_dataset(path, "r", cache_bytes=1 << 20) as ds:
                for scale in range(ds.n_scales):
                    ds.labels(scale)[...]

        with open_dataset(path, "r+") as ds:  # a journal and a label index, as after edits
            labels = np.unique(ds.labels(ds.n_scales - 1)[...])[1:3]
            ds.merge(int(labels[0]), [int(labels[1])])
        rows = [
            ("plain h5py", best_of(plain, args.repeats)),
            ("segmend store, shared handle", best_of(shared_store, args.repeats)),
            ("segmend reader (consistent)", best_of(reader, args.repeats)),
        ]
        open_close = best_of(lambda: open_dataset(path, "r").close(), args.repeats)

        def after_commit() -> float:
            with open_dataset(path, "r") as ro, open_dataset(
                path, "r+", checkpoint_interval=3600.0
            ) as rw:
                ro.labels(0)[0, 0, 0]
                pair = np.unique(rw.labels(rw.n_scales - 1)[...])[1:3]
                rw.merge(int(pair[0]), [int(pair[1])])
                rw.checkpoint()  # (waits for the reader's lease)
                start = time.perf_counter()
                ro.labels(0)[0, 0, 0]
                return time.perf_counter() - start

        first_read = min(after_commit() for _ in range(args.repeats))
    base = rows[0][1]
    print(f"all {n_levels} label levels of a {args.size}³ pyramid, best of {args.repeats}")
    print(f"{'reader':32s} {'seconds':>8s} {'vs plain h5py':>14s}")
    for name, seconds in rows:
        print(f"{name:32s} {seconds:8.3f} {seconds / base:13.2f}x")
    print(f"open + close a reader: {open_close * 1000:.1f} ms")
    print(f"a reader's first read after a writer's commit: {first_read * 1000:.1f} ms")


if __name__ == "__main__":
    main()
