"""Benchmark the segmend kernels against tinybrain, fastremap and NumPy.

Usage::

    python benchmarks/bench_kernels.py [--size 512] [--repeats 5]

Prints a markdown table: kernel, data, implementation, median time over
``--repeats`` runs after one warm-up run, voxels/s, GB/s (input bytes / time)
and how many times faster segmend is than each competitor, all measured in the
same run. Volumes are ``size**3`` uint64 (1 GiB each at 512).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

if __package__ in (None, ""):  # run as a script: make `app` and `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastremap
import numba
import tinybrain

from app.kernels import (
    downsample_labels,
    downsample_palette_into,
    gather,
    label_counts,
    palettize,
    relabel_indexed,
    relabel_inplace,
)
from app.kernels.reference import downsample_labels_ref
from benchmarks.synthetic import noisy_labels, voronoi_labels


@dataclass
class Row:
    kernel: str
    data: str
    impl: str
    seconds: float
    voxels: int
    nbytes: int
    note: str = ""
    ratio: float | None = None  # segmend speed-up over this row


def measure(fn: Callable[[], Any], repeats: int, setup: Callable[[], None] | None = None) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs after one warm-up run.

    ``setup`` (untimed) runs before each call, e.g. to restore an array that
    ``fn`` modifies in place.
    """
    times = []
    for i in range(repeats + 1):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        if i:
            times.append(dt)
    return statistics.median(times)


def tinybrain_mode(vol: NDArray[Any]) -> NDArray[Any]:
    """tinybrain's 2x2x2 mode pooling; tinybrain assumes Fortran order, so pass
    the transposed (F-ordered) view and transpose the result back."""
    return tinybrain.downsample_segmentation(vol.T, factor=(2, 2, 2), sparse=False)[0].T


def bench_downres(name: str, vol: NDArray[np.uint64], repeats: int, rows: list[Row]) -> None:
    n, nbytes = vol.size, vol.nbytes
    ours = {}
    for rule in ("labelmap", "labelblk"):
        t = measure(lambda rule=rule: downsample_labels(vol, rule), repeats)  # type: ignore[misc]
        ours[rule] = t
        rows.append(Row(f"downsample_labels ({rule})", name, "segmend", t, n, nbytes))
    t_tb = measure(lambda: tinybrain_mode(vol), repeats)
    rows.append(
        Row(
            "downsample_labels",
            name,
            "tinybrain.downsample_segmentation",
            t_tb,
            n,
            nbytes,
            "its rule differs (speed only); speed-up vs segmend labelmap",
            ratio=t_tb / ours["labelmap"],
        )
    )
    crop = np.ascontiguousarray(vol[:128, :128, :128])
    for rule in ("labelmap", "labelblk"):
        t_crop = measure(lambda rule=rule: downsample_labels_ref(crop, rule), 2)  # type: ignore[misc]
        t_ref = t_crop * n / crop.size
        rows.append(
            Row(
                f"downsample_labels ({rule})",
                name,
                "NumPy/Python reference",
                t_ref,
                n,
                nbytes,
                f"measured on a {crop.shape[0]}^3 crop, extrapolated per voxel",
                ratio=t_ref / ours[rule],
            )
        )


def bench_relabel(name: str, vol: NDArray[np.uint64], repeats: int, rows: list[Row]) -> None:
    rng = np.random.default_rng(0)
    present = np.unique(vol)
    present = present[present != 0]
    labels = rng.choice(present, size=10, replace=False)
    target = int(rng.choice(np.setdiff1d(present, labels)))
    work = np.empty_like(vol)

    def restore() -> None:
        np.copyto(work, vol)

    expect = vol.copy()
    expect[np.isin(expect, labels)] = target
    restore()
    relabel_inplace(work, labels, target)
    assert np.array_equal(work, expect), "relabel_inplace result differs from np.isin"
    del expect

    t_ours = measure(lambda: relabel_inplace(work, labels, target), repeats, restore)
    rows.append(Row("relabel_inplace (10 labels)", name, "segmend", t_ours, vol.size, vol.nbytes))
    mapping = {int(v): target for v in labels}
    t_fr = measure(
        lambda: fastremap.remap(work, mapping, preserve_missing_labels=True, in_place=True),
        repeats,
        restore,
    )
    rows.append(
        Row(
            "relabel_inplace (10 labels)",
            name,
            "fastremap.remap(in_place=True)",
            t_fr,
            vol.size,
            vol.nbytes,
            ratio=t_fr / t_ours,
        )
    )

    def numpy_isin() -> None:
        work[np.isin(work, labels)] = target

    t_np = measure(numpy_isin, repeats, restore)
    rows.append(
        Row(
            "relabel_inplace (10 labels)",
            name,
            "arr[np.isin(arr, labels)] = target",
            t_np,
            vol.size,
            vol.nbytes,
            ratio=t_np / t_ours,
        )
    )


def bench_relabel_indexed(
    name: str, vol: NDArray[np.uint64], repeats: int, rows: list[Row]
) -> None:
    """A merge that keeps its undo data: the merged copy plus a uint8 index map."""
    rng = np.random.default_rng(1)
    present = np.unique(vol)
    present = present[present != 0]
    labels = np.sort(rng.choice(present, size=min(40, present.size - 1), replace=False))
    target = int(rng.choice(np.setdiff1d(present, labels)))
    kernel = f"relabel_indexed ({labels.size} labels, copy + undo index)"

    def numpy_way() -> tuple[NDArray[Any], NDArray[Any]]:
        pos = np.searchsorted(labels, vol)
        hit = labels[np.minimum(pos, labels.size - 1)] == vol
        return np.where(hit, np.uint64(target), vol), np.where(hit, pos + 1, 0).astype(np.uint8)

    def fastremap_way() -> tuple[NDArray[Any], NDArray[Any]]:
        new = fastremap.remap(
            vol, dict.fromkeys(labels.tolist(), target), preserve_missing_labels=True
        )
        only = fastremap.mask_except(vol.copy(), labels.tolist())
        index = {0: 0} | {v: k + 1 for k, v in enumerate(labels.tolist())}
        return new, fastremap.remap(only, index, preserve_missing_labels=True).astype(np.uint8)

    new, index, _n = relabel_indexed(vol, labels, target)
    for other in (numpy_way(), fastremap_way()):
        assert np.array_equal(new, other[0]) and np.array_equal(index, other[1]), kernel
    del new, index
    t_ours = measure(lambda: relabel_indexed(vol, labels, target), repeats)
    rows.append(Row(kernel, name, "segmend", t_ours, vol.size, vol.nbytes))
    for impl, fn in (
        ("fastremap.remap + mask_except + remap", fastremap_way),
        ("np.searchsorted + np.where", numpy_way),
    ):
        t = measure(fn, repeats)
        rows.append(Row(kernel, name, impl, t, vol.size, vol.nbytes, ratio=t / t_ours))


def bench_palette(name: str, vol: NDArray[np.uint64], repeats: int, rows: list[Row]) -> None:
    """The palette kernels as the engine uses them: on every 64³ block of a 256³ corner."""
    blocks = [
        np.ascontiguousarray(vol[z : z + 64, y : y + 64, x : x + 64])
        for z in range(0, 256, 64)
        for y in range(0, 256, 64)
        for x in range(0, 256, 64)
    ]
    n = sum(b.size for b in blocks)
    nbytes = sum(b.nbytes for b in blocks)
    palettes = [palettize(b) for b in blocks]
    for b, (labels, index, counts) in zip(blocks, palettes, strict=True):
        assert np.array_equal(labels[index], b) and int(counts.sum()) == b.size

    def each(fn: Callable[..., Any], items: list[Any]) -> Callable[[], None]:
        """A run of ``fn`` on every block."""

        def run() -> None:
            for item in items:
                fn(*item)

        return run

    def runs(kernel: str, ours: Callable[[], None], others: dict[str, Callable[[], None]]) -> None:
        note = "GB/s of the uint64 blocks"
        t_ours = measure(ours, repeats)
        rows.append(Row(kernel, name, "segmend", t_ours, n, nbytes, note))
        for impl, fn in others.items():
            t = measure(fn, repeats)
            rows.append(Row(kernel, name, impl, t, n, nbytes, note, ratio=t / t_ours))

    one = [(b,) for b in blocks]
    runs(
        "palettize (64³ blocks: labels, uint8 index, counts)",
        each(palettize, one),
        {
            "np.unique(return_inverse, return_counts)": each(
                lambda b: np.unique(b, return_inverse=True, return_counts=True), one
            ),
            "fastremap.renumber + fastremap.unique": each(
                lambda b: (fastremap.renumber(b), fastremap.unique(b, return_counts=True)), one
            ),
        },
    )
    pairs = [(labels, index) for labels, index, _ in palettes]
    runs(
        "gather (labels[index], 64³ blocks)",
        each(gather, pairs),
        {"NumPy labels[index]": each(lambda labels, index: labels[index], pairs)},
    )
    out = np.empty((32, 32, 32), np.uint64)
    runs(
        "downsample_palette_into (labelmap, 64³ blocks)",
        each(lambda labels, index: downsample_palette_into(index, labels, out), pairs),
        {
            "segmend gather + downsample_labels": each(
                lambda labels, index: downsample_labels(gather(labels, index)), pairs
            ),
            "labels[index] + tinybrain.downsample_segmentation": each(
                lambda labels, index: tinybrain_mode(labels[index]), pairs
            ),
        },
    )


def bench_counts(name: str, vol: NDArray[np.uint64], repeats: int, rows: list[Row]) -> None:
    u, c = label_counts(vol)
    u2, c2 = np.unique(vol, return_counts=True)
    assert np.array_equal(u, u2) and np.array_equal(c, c2), "label_counts differs from np.unique"
    t_ours = measure(lambda: label_counts(vol), repeats)
    rows.append(Row("label_counts", name, "segmend", t_ours, vol.size, vol.nbytes))
    t_np = measure(lambda: np.unique(vol, return_counts=True), repeats)
    rows.append(
        Row(
            "label_counts",
            name,
            "np.unique(return_counts=True)",
            t_np,
            vol.size,
            vol.nbytes,
            ratio=t_np / t_ours,
        )
    )
    t_fr = measure(lambda: fastremap.unique(vol, return_counts=True), repeats)
    rows.append(
        Row(
            "label_counts",
            name,
            "fastremap.unique(return_counts=True)",
            t_fr,
            vol.size,
            vol.nbytes,
            ratio=t_fr / t_ours,
        )
    )


def render(rows: list[Row]) -> str:
    head = (
        "| kernel | data | implementation | time (ms) | Mvoxel/s | GB/s "
        "| segmend speed-up | note |\n"
        "|---|---|---|---:|---:|---:|---:|---|"
    )
    lines = [head]
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}x"
        lines.append(
            f"| {r.kernel} | {r.data} | {r.impl} | {r.seconds * 1e3:.1f} "
            f"| {r.voxels / r.seconds / 1e6:.0f} | {r.nbytes / r.seconds / 1e9:.2f} "
            f"| {ratio} | {r.note} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=512, help="edge of the cubic volumes")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (>=3)")
    args = parser.parse_args(argv)
    size = int(args.size)
    repeats = max(3, int(args.repeats))
    shape = (size, size, size)
    n_seeds = max(8, size**3 // 48**3)  # supervoxels ~48 voxels across

    print(
        f"# segmend kernel benchmark: {size}^3 uint64, median of {repeats} runs after warm-up\n"
        f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
        f"{platform.machine()}, single-threaded kernels\n",
        flush=True,
    )
    t0 = time.perf_counter()
    volumes = {
        f"voronoi ({n_seeds} supervoxels)": voronoi_labels(shape, n_seeds, seed=1),
        "noisy (16 labels + 10% zeros)": noisy_labels(shape, 16, seed=2),
    }
    print(f"generated volumes in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    rows: list[Row] = []
    for name, vol in volumes.items():
        print(f"downres {name} ...", file=sys.stderr, flush=True)
        bench_downres(name, vol, repeats, rows)
    for name, vol in volumes.items():
        print(f"relabel {name} ...", file=sys.stderr, flush=True)
        bench_relabel(name, vol, repeats, rows)
        bench_relabel_indexed(name, vol, repeats, rows)
        bench_palette(name, vol, repeats, rows)
    for name, vol in volumes.items():
        print(f"label_counts {name} ...", file=sys.stderr, flush=True)
        bench_counts(name, vol, repeats, rows)
    print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
