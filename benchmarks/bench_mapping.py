"""Labelmap mode's mapping: blocks mapped to bodies for display, and a large
mapping loaded.

Usage: python -m benchmarks.bench_mapping [--repeats 20] [--only blocks|loading|redraw]

- **Mapping blocks**: every whole 64³ block of the shipped cube's automated
  supervoxels mapped to bodies through their agglomeration (3,337 supervoxels),
  and through that mapping grown to 10 million entries: segmend's
  :func:`app.kernels.map_block` against NumPy (``np.searchsorted`` and fancy
  indexing) and ``fastremap.remap`` (given a dict of the whole mapping: with
  10 million entries that dict alone is not practical, so fastremap runs on the
  real one only), all in one run; median per block, Mvox/s.
- **Loading**: a 10-million-supervoxel ``/mapping`` (sorted, as a checkpoint
  writes it) read from HDF5 and its reverse map built; seconds and bytes held.
- **Redrawing the body view**: what the GUI thread does to redraw a 2D view
  of the labelmap demo (250³, one z-plane of 4×4 blocks of 64³, its blocks
  cached): the app's level (:class:`app.ui.lazy.CachedLevel`) sliced at that
  plane, in body view (``"labels"``) and in supervoxel view; median per
  redraw, and the body view's ratio to the supervoxel view's: in steady state
  (mapped blocks kept per mapping version), for the first redraw after a
  merge (every block in view mapped again), and, for reference, with every
  block mapped at every redraw (segmend before it kept mapped blocks).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastremap
import h5py
import numpy as np
from numpy.typing import NDArray

from app.kernels import map_block
from app.kernels.reference import map_block_ref
from app.model.dataset import Dataset, open_dataset
from app.model.demo import build_demo, demo_cube_path
from app.model.geometry import Coord
from app.model.labelmap import Mapping, read_mapping
from app.model.labelmap.mapped_blocks import map_with

BIG = 10_000_000
"""Supervoxels of the large mapping."""


def real_blocks() -> tuple[list[NDArray[np.uint64]], Mapping]:
    """The cube's whole 64³ blocks of ground-truth supervoxels, and their mapping."""
    with h5py.File(demo_cube_path(), "r") as f:
        svs = f["automated/supervoxels"][...]
        mapping = Mapping.from_pairs(f["automated/mapping"][...])
    n = [s // 64 for s in svs.shape]
    blocks = [
        np.ascontiguousarray(svs[z * 64 : z * 64 + 64, y * 64 : y * 64 + 64, x * 64 : x * 64 + 64])
        for z in range(n[0])
        for y in range(n[1])
        for x in range(n[2])
    ]
    return blocks, mapping


def grown(mapping: Mapping, size: int) -> Mapping:
    """``mapping`` with supervoxels added above its own up to ``size`` entries."""
    top = int(mapping.svs[-1]) + 1
    extra = np.arange(top, top + size - mapping.svs.size, dtype=np.uint64)
    return Mapping(
        np.concatenate([mapping.svs, extra]), np.concatenate([mapping.bodies, extra // 7 + 1])
    )


def per_block(fn: Callable[[NDArray[np.uint64]], Any], blocks: list[Any], repeats: int) -> float:
    """Median seconds per block of ``fn`` over the blocks, after a warm-up."""
    for b in blocks:
        fn(b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b in blocks:
            fn(b)
        times.append((time.perf_counter() - t0) / len(blocks))
    return statistics.median(times)


def rows_of(mapping: Mapping, blocks: list[Any], repeats: int, fastremap_too: bool) -> list[Any]:
    """(implementation, seconds per block) of each implementation on ``mapping``."""
    svs, bodies = mapping.svs, mapping.bodies
    for b in blocks:
        assert np.array_equal(map_block(b, svs, bodies), map_block_ref(b, svs, bodies))
    few = max(3, repeats // 4)
    rows = [
        ("segmend map_block", per_block(lambda b: map_block(b, svs, bodies, checked=True),
                                        blocks, repeats)),
        ("NumPy searchsorted", per_block(lambda b: map_block_ref(b, svs, bodies), blocks, few)),
    ]
    if fastremap_too:
        table = dict(zip(svs.tolist(), bodies.tolist(), strict=True))
        rows.append(("fastremap.remap", per_block(
            lambda b: fastremap.remap(b, table, preserve_missing_labels=True), blocks, few)))
    return rows


def mapping_blocks(repeats: int) -> None:
    blocks, real = real_blocks()
    voxels = blocks[0].size
    print(f"\n## Mapping 64³ blocks to bodies ({len(blocks)} blocks of the cube's supervoxels)\n")
    print("| mapping | implementation | per block | Mvox/s | segmend is |")
    print("|---|---|---|---|---|")
    for name, mapping, fastremap_too in (
        (f"real ({real.svs.size:,})", real, True),
        (f"{BIG:,}", grown(real, BIG), False),
    ):
        rows = rows_of(mapping, blocks, repeats, fastremap_too)
        ours = rows[0][1]
        for impl, seconds in rows:
            ratio = "" if impl.startswith("segmend") else f"{seconds / ours:.1f}× faster"
            print(f"| {name} | {impl} | {seconds * 1e3:.3f} ms | "
                  f"{voxels / seconds / 1e6:.0f} | {ratio} |")


def loading() -> None:
    rng = np.random.default_rng(0)
    svs = np.unique(rng.integers(1, 2**40, BIG + BIG // 20, dtype=np.uint64))[:BIG]
    pairs = np.stack([svs, rng.integers(1, 2**40, svs.size, dtype=np.uint64)], axis=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.h5"
        with h5py.File(path, "w") as f:
            f["mapping"] = pairs
        del pairs
        t0 = time.perf_counter()
        mapping = read_mapping(f"{path}:/mapping")
        loaded = time.perf_counter() - t0
        t0 = time.perf_counter()
        mapping.supervoxels_of(int(mapping.bodies[0]))
        reverse = time.perf_counter() - t0
    print(f"\n## Loading a mapping of {mapping.svs.size:,} supervoxels (HDF5 /mapping)\n")
    print("| step | seconds | held |")
    print("|---|---|---|")
    print(f"| read (forward map) | {loaded:.2f} | {(mapping.svs.nbytes * 2) / 2**20:.0f} MiB |")
    print(f"| first reverse lookup (builds it) | {reverse:.2f} | "
          f"{mapping.nbytes / 2**20:.0f} MiB in all |")


class _Blocks:
    """The block loader a :class:`~app.ui.lazy.CachedLevel` reads through, reading
    a missing block at once (the app reads it on its pool); with ``remap``, a
    block of bodies is the supervoxel block mapped at each read (no mapped
    block kept)."""

    closed = False

    def __init__(self, ds: Dataset, *, remap: bool = False) -> None:
        self.ds, self.remap = ds, remap

    def cached_block(self, kind: str, scale: int, coord: Coord) -> NDArray[Any] | None:
        if self.remap and kind == "labels":
            block = self.ds.cached_block("supervoxels", scale, coord)
            return None if block is None else map_with(self.ds._live_mapping().view(), block)
        return self.ds.cached_block(kind, scale, coord)

    def request(self, kind: str, scale: int, coords: list[Coord]) -> None:
        for coord in coords:
            self.ds.read_block(kind, scale, coord)


def redraw(repeats: int) -> None:
    from app.ui.lazy import CachedLevel  # (Qt: imported only for this part)

    with tempfile.TemporaryDirectory() as tmp:
        path = build_demo(Path(tmp) / "demo.h5", labelmap=True)
        with open_dataset(path, "r+", checkpoint_interval=3600.0) as ds:
            z = ds.shape[0] // 2
            n_blocks = np.prod([-(-n // b) for n, b in zip(ds.shape[1:], ds.block_size[1:],
                                                           strict=True)])

            def level(kind: str, loader: _Blocks) -> Callable[[], Any]:
                array = ds.labels(0) if kind == "labels" else ds.supervoxels(0)
                lv = CachedLevel(array, ds.block_size, loader, kind=kind)  # type: ignore[arg-type]
                return lambda: np.asarray(lv[z])

            def median_ms(draw: Callable[[], Any]) -> float:
                draw()
                draw()  # (missing blocks read by the first)
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    draw()
                    times.append(time.perf_counter() - t0)
                return statistics.median(times) * 1e3

            svs = median_ms(level("supervoxels", _Blocks(ds)))
            bodies = level("labels", _Blocks(ds))
            steady = median_ms(bodies)
            every = median_ms(level("labels", _Blocks(ds, remap=True)))
            assert np.array_equal(bodies(), level("labels", _Blocks(ds, remap=True))())
            plane = bodies()
            labels = [int(v) for v in np.unique(plane) if v]
            firsts = []
            for a, b in zip(labels[:: 2][: repeats], labels[1 :: 2], strict=False):
                ds.merge(a, [b])
                t0 = time.perf_counter()
                bodies()
                firsts.append(time.perf_counter() - t0)
                ds.undo()
                bodies()
            first = statistics.median(firsts) * 1e3
    print(f"\n## Redrawing a 2D view of the labelmap demo ({n_blocks} blocks of 64³ "
          f"in view, cached)\n")
    print("| view | per redraw | body view / supervoxel view |")
    print("|---|---|---|")
    for name, ms in (("supervoxels", svs), ("bodies, steady state", steady),
                     (f"bodies, first after a merge ({len(firsts)} merges)", first),
                     ("bodies, every block mapped at every redraw (before)", every)):
        print(f"| {name} | {ms:.2f} ms | {ms / svs:.1f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--only", choices=("blocks", "loading", "redraw"))
    args = parser.parse_args()
    if args.only in (None, "blocks"):
        mapping_blocks(args.repeats)
    if args.only in (None, "loading"):
        loading()
    if args.only in (None, "redraw"):
        redraw(args.repeats)


if __name__ == "__main__":
    main()
