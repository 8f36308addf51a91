"""``segmend build`` end to end vs a tinybrain + h5py pipeline, same compression.

Usage: python benchmarks/bench_build.py [--size 512] [--repeats 2]

Both write every level of a uint64 label pyramid (64³ chunks, Blosc-LZ4 without
shuffle through hdf5plugin) from a ``.npy`` volume.  segmend computes the exact
``labelmap`` rule; tinybrain its own mode (a different rule: compare speed, not
output).  Ratios are taken in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import tinybrain

from app.model.bulk.build import build_pyramid
from app.model.storage.layout import level_shapes
from benchmarks.synthetic import noisy_labels, voronoi_labels


def tinybrain_pipeline(src: Path, out: Path) -> None:
    """Load, downsample with tinybrain, write each level with h5py's filter path."""
    vol = np.load(src)
    levels = len(level_shapes(vol.shape, (64, 64, 64)))
    mips = tinybrain.downsample_segmentation(vol.T, factor=(2, 2, 2), num_mips=levels - 1)
    with h5py.File(out, "w") as f:
        filters = hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.NOSHUFFLE)
        for k, level in enumerate([vol, *[np.ascontiguousarray(m.T) for m in mips]]):
            chunks = tuple(min(64, s) for s in level.shape)
            f.create_dataset(f"labels/s{k}", data=level, chunks=chunks, **filters)


def best_of(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    shape = (args.size,) * 3
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        for name, make in [
            ("voronoi supervoxels", lambda: voronoi_labels(shape, n_seeds=20000, seed=1)),
            ("noisy labels", lambda: noisy_labels(shape, n_labels=8, seed=2)),
        ]:
            src = tmpdir / "src.npy"
            np.save(src, make())
            ours = best_of(lambda s=src: build_pyramid(s, tmpdir / "ours.h5"), args.repeats)
            theirs = best_of(lambda s=src: tinybrain_pipeline(s, tmpdir / "tb.h5"), args.repeats)
            nbytes = np.prod(shape) * 8
            rows.append((name, ours, theirs, nbytes))
            src.unlink()
    print(f"| data ({args.size}³ uint64) | segmend build | tinybrain + h5py | ratio |")
    print("|---|---|---|---|")
    for name, ours, theirs, nbytes in rows:
        print(
            f"| {name} | {ours:.2f} s ({nbytes / ours / 1e9:.2f} GB/s, "
            f"{nbytes / 8 / ours / 1e6:.0f} Mvox/s) | {theirs:.2f} s "
            f"({nbytes / theirs / 1e9:.2f} GB/s) | {theirs / ours:.2f}× |"
        )


if __name__ == "__main__":
    main()
