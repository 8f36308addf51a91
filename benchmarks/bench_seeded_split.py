"""Seeded split on the real FIB-SEM cube: how often two seeds fix a false merge.

Usage: python -m benchmarks.bench_seeded_split [--cube FILE.h5] [--json OUT.json]

- **Bodies**: the automated segmentation (``automated/supervoxels`` mapped by
  ``automated/mapping``) is built into a pyramid with the grayscale (``raw``),
  and again without it, in a temporary folder.
- **False merges**: an automated body overlapping at least two ground-truth
  bodies (``groundtruth/bodies``) by at least :data:`MIN_VOXELS` voxels and
  :data:`MIN_SHARE` of the automated body each.
- **Seeds**: one per ground-truth part for the two largest parts (a part: the
  ground-truth body's voxels inside the automated body), at the voxel of the
  part nearest to its centroid; the largest part's seed is the first group.
- **Score**: the adapted Rand error (CREMI; Arganda-Carreras et al. 2015:
  1 - F-score of Rand precision and recall, :func:`skimage.metrics.adapted_rand_error`)
  of the two-part split against the ground truth over the automated body's
  voxels; a split counts as right below :data:`GOOD_ERROR`.  The error of
  the body left merged, and of the ideal two-part split (the largest part
  against the rest), bound it; so does the same seeded split on a pyramid
  whose grayscale is the ground truth's own boundaries (dark on every voxel
  next to another ground-truth body): the best any image can do for the
  watershed.
- **Time**: :func:`app.model.seeded_split.seeded_split` per body, with and
  without grayscale, and the commit (``Dataset.split_by_seeds``: the same
  computation then an ordinary split, durable), each undone afterwards:
  median and p95.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.metrics import adapted_rand_error

if __package__ in (None, ""):  # run as a script: make `app` and `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.model.bulk.build import build_pyramid
from app.model.dataset import Dataset, open_dataset
from app.model.demo import demo_cube_path
from app.model.seeded_split import SeededSplit, Voxel, seeded_split

CUBE = demo_cube_path()
MIN_VOXELS = 1000
"""Voxels a ground-truth body must share with an automated body to count."""
MIN_SHARE = 0.10
"""Share of the automated body a ground-truth body must hold to count."""
GOOD_ERROR = 0.05
"""Adapted Rand error below which a split counts as right."""


@dataclass
class Case:
    """One false merge: the automated body, its box, its two seeds (z, y, x)."""

    body: int
    voxels: int
    box: tuple[slice, slice, slice]
    seeds: list[list[Voxel]]
    merged_error: float
    ideal_error: float


@dataclass
class Outcome:
    """One seeded split of a case."""

    body: int
    error: float
    seconds: float


def automated_bodies(
    cube: Path,
) -> tuple[NDArray[np.uint64], NDArray[np.uint64], NDArray[np.uint8]]:
    """(automated bodies, ground-truth bodies, grayscale) of the cube, z y x."""
    with h5py.File(cube, "r") as f:
        fragments = f["automated/supervoxels"][...]
        mapping = f["automated/mapping"][...]
        truth = f["groundtruth/bodies"][...]
        raw = f["raw"][...]
    order = np.argsort(mapping[:, 0])
    keys, values = mapping[order, 0], mapping[order, 1]
    where = np.clip(np.searchsorted(keys, fragments), 0, len(keys) - 1)
    bodies = np.where(keys[where] == fragments, values[where], fragments).astype(np.uint64)
    return bodies, truth, raw


def truth_walls(truth: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """A grayscale drawn from the ground truth: 0 on voxels with a 6-neighbour
    of another ground-truth body, 200 elsewhere."""
    wall = np.zeros(truth.shape, bool)
    for axis in range(3):
        step = np.diff(truth, axis=axis) != 0
        low = [slice(None)] * 3
        low[axis] = slice(0, -1)
        high = [slice(None)] * 3
        high[axis] = slice(1, None)
        wall[tuple(low)] |= step
        wall[tuple(high)] |= step
    return np.where(wall, 0, 200).astype(np.uint8)


def false_merges(bodies: NDArray[np.uint64], truth: NDArray[np.uint64]) -> list[Case]:
    """The false merges of ``bodies`` against ``truth`` (see the module's docstring)."""
    pairs, counts = np.unique(np.stack([bodies.ravel(), truth.ravel()]), axis=1,
                              return_counts=True)
    sizes = dict(zip(*np.unique(bodies, return_counts=True), strict=True))
    ids, dense = np.unique(bodies, return_inverse=True)
    boxes = ndimage.find_objects(dense.reshape(bodies.shape).astype(np.int64) + 1)
    cases = []
    for body in ids[ids > 0]:
        sel = pairs[0] == body
        share = counts[sel]
        parts = pairs[1][sel][(share >= MIN_VOXELS) & (share >= MIN_SHARE * sizes[body])]
        if len(parts) < 2:
            continue
        box = boxes[int(np.searchsorted(ids, body))]
        inside, gt = bodies[box] == body, truth[box]
        by_size = sorted(parts, key=lambda p: -int(np.count_nonzero(inside & (gt == p))))
        seeds = [[_centre(inside & (gt == p), box)] for p in by_size[:2]]
        ideal = np.where(gt[inside] == by_size[0], 1, 2)
        cases.append(Case(int(body), int(sizes[body]), box, seeds,
                          _error(gt[inside], np.ones_like(ideal)), _error(gt[inside], ideal)))
    return cases


def _centre(part: NDArray[np.bool_], box: tuple[slice, ...]) -> Voxel:
    """The voxel of ``part`` nearest its centroid, in s0 (z, y, x)."""
    where = np.argwhere(part)
    nearest = where[np.argmin(((where - where.mean(axis=0)) ** 2).sum(axis=1))]
    return (int(nearest[0] + box[0].start), int(nearest[1] + box[1].start),
            int(nearest[2] + box[2].start))


def _error(truth: NDArray[np.uint64], split: NDArray[np.integer]) -> float:
    """Adapted Rand error of ``split`` against ``truth`` (same voxels, 1-D)."""
    return float(adapted_rand_error(truth.astype(np.int64), split.astype(np.int64))[0])


def score(case: Case, split: SeededSplit, bodies: NDArray[np.uint64],
          truth: NDArray[np.uint64]) -> float:
    """The adapted Rand error of ``split`` over the automated body's voxels:
    the first group's part against the rest (the body outside the crop too)."""
    first = np.zeros(bodies.shape, bool)
    crop = tuple(slice(o, o + n) for o, n in zip(split.origin, split.parts.shape, strict=True))
    first[crop] = split.mask(1)
    inside = bodies[case.box] == case.body
    return _error(truth[case.box][inside], np.where(first[case.box][inside], 1, 2))


def run_splits(ds: Dataset, cases: list[Case], bodies: NDArray[np.uint64],
               truth: NDArray[np.uint64]) -> list[Outcome]:
    """Each case's seeded split (computed, not committed), timed and scored."""
    out = []
    for case in cases:
        t0 = time.perf_counter()
        split = seeded_split(ds, case.body, case.seeds)
        seconds = time.perf_counter() - t0
        out.append(Outcome(case.body, score(case, split, bodies, truth), seconds))
    return out


def commit_times(ds: Dataset, cases: list[Case]) -> list[float]:
    """Seconds of each case's ``split_by_seeds`` (durable), undone after."""
    times = []
    for case in cases:
        t0 = time.perf_counter()
        ds.split_by_seeds(case.body, case.seeds)
        times.append(time.perf_counter() - t0)
        ds.undo()
    return times


def error_cells(errors: list[float]) -> str:
    """A table row's error cells: the share right, the mean and the median error."""
    return (f"{np.mean(np.array(errors) < GOOD_ERROR):.0%} | "
            f"{np.mean(errors):.3f} | {np.median(errors):.3f}")


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cube", type=Path, default=CUBE, help="the FIB-SEM cube (HDF5)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    args = parser.parse_args()
    bodies, truth, raw = automated_bodies(args.cube)
    cases = false_merges(bodies, truth)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp, "bodies.npy"), bodies)
        np.save(Path(tmp, "raw.npy"), raw)
        np.save(Path(tmp, "walls.npy"), truth_walls(truth))
        gray = build_pyramid(str(Path(tmp, "bodies.npy")), Path(tmp, "gray.h5"),
                             image=str(Path(tmp, "raw.npy")))
        plain = build_pyramid(str(Path(tmp, "bodies.npy")), Path(tmp, "plain.h5"))
        walls = build_pyramid(str(Path(tmp, "bodies.npy")), Path(tmp, "walls.h5"),
                              image=str(Path(tmp, "walls.npy")))
        results: dict[str, list[Outcome]] = {}
        with open_dataset(gray, "r+") as ds:
            seeded_split(ds, cases[0].body, cases[0].seeds)  # (warm-up: imports, caches)
            results["grayscale"] = run_splits(ds, cases, bodies, truth)
            commits = commit_times(ds, cases)
        with open_dataset(plain, "r+") as ds:
            results["distance (no grayscale)"] = run_splits(ds, cases, bodies, truth)
        with open_dataset(walls, "r+") as ds:
            results["ground-truth boundaries as grayscale"] = run_splits(
                ds, cases, bodies, truth
            )
    merged = [c.merged_error for c in cases]
    ideal = [c.ideal_error for c in cases]
    print(f"False merges of the automated segmentation: {len(cases)} bodies "
          f"(>= {MIN_VOXELS} voxels and >= {MIN_SHARE:.0%} of the body for 2+ GT bodies), "
          f"{sum(c.voxels for c in cases):,} voxels\n")
    print(f"| landscape | right (error < {GOOD_ERROR}) | mean error | median error "
          "| p50 time | p95 time |")
    print("|---|---|---|---|---|---|")
    print(f"| left merged | {error_cells(merged)} | | |")
    print(f"| ideal two-part split | {error_cells(ideal)} | | |")
    for name, outcomes in results.items():
        seconds = [o.seconds for o in outcomes]
        print(f"| {name} | {error_cells([o.error for o in outcomes])} | "
              f"{1000 * statistics.median(seconds):.0f} ms | {1000 * p95(seconds):.0f} ms |")
    print(f"| grayscale, committed (split_by_seeds) | | | | "
          f"{1000 * statistics.median(commits):.0f} ms | {1000 * p95(commits):.0f} ms |")
    if args.json:
        args.json.write_text(json.dumps({
            "cases": [{"body": c.body, "voxels": c.voxels, "seeds_zyx": c.seeds,
                       "merged_error": c.merged_error, "ideal_error": c.ideal_error}
                      for c in cases],
            "splits": {name: [asdict(o) for o in outcomes] for name, outcomes in results.items()},
            "commit_seconds": commits,
        }, indent=1))


if __name__ == "__main__":
    main()
