"""Labelmap mode (issue 16): merge and cleave latency by body size, and the real
agglomeration pass replayed by ``segmend apply``.

Usage: python -m benchmarks.bench_labelmap [--size 512] [--reps 60] [--quick]
[--only latency|agglomeration] [--no-voxel]

- **Latency**: a ``size``³ volume of 8³ box supervoxels (262,144 at 512³;
  64³ blocks), built in labelmap mode with bodies made of consecutive
  supervoxels: pools of bodies of 10, 100, 1,000 and 10,000 supervoxels, the
  rest of the volume in bodies of 100.  For each size, ``reps`` merges of two
  bodies of that size, and ``reps`` cleaves of 3 supervoxels off a body of that
  size, each call timed alone (``time.perf_counter``), durable (journal commit
  fsync'ed) as the API returns, after a warm-up and after a pause of 50 ms
  (``THINK``: back-to-back edits are what the agglomeration pass times).
  Each edit is undone, untimed, before the next, so that every timed edit
  sees bodies of the same size (the pairs of the pool take turns).  p50 and
  p95 per size.  Targets: p50 ≤ 1 ms, p95 ≤ 3 ms, and p50 on
  10,000-supervoxel bodies within 1.5× of the 10-supervoxel ones.  For
  reference: the same edits back to back (no pause: on a shared VM every
  call after a pause runs on cold caches and costs more), the undos' p50
  and p95, and the voxel-mode merge of the same
  bodies (the volume mapped to bodies, built as a plain pyramid: its merge
  rewrites every voxel of the merged body).
- **Agglomeration**: the shipped cube's ground-truth supervoxels (21,317, 0
  included) built with the identity mapping (each supervoxel its own body),
  then ``segmend apply`` run as a user would (a subprocess, timed end to end,
  and each result line as it comes) on the merges that assemble the 525
  non-background ground-truth bodies: for each body, largest first, its
  largest supervoxel is the target and the others are merged into it one at a
  time, largest first (20,791 lines); then the same merges as one line per
  body (522 lines: 3 bodies are a single supervoxel), on a fresh build.
  Target ≤ 20 s for the one-merge-per-line log.  Checks on its result: the
  labels read back equal the expected bodies voxel for voxel, they partition
  the volume exactly as ``groundtruth/bodies`` does (the two ids one-to-one
  over every voxel), and ``verify`` is clean.  ``--quick`` replays the
  assembly of every tenth body only.

Mapping blocks for display is measured by ``bench_mapping``.  Each timed part
runs in a fresh process, after ``os.sync()``, so that neither the heap nor the
disk writes the builds left behind share its time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import h5py
import numpy as np
from numpy.typing import NDArray

from app.model.bulk.build import build_pyramid
from app.model.dataset import open_dataset
from app.model.demo import demo_cube_path
from app.model.labelmap import Mapping

T = TypeVar("T")

BOX = 8
"""Edge of the synthetic volume's box supervoxels (divides the 64³ blocks)."""

SIZES = (10, 100, 1_000, 10_000)
"""Body sizes, in supervoxels, whose edits are timed."""

CLEAVED = 3
"""Supervoxels taken off a body by each timed cleave."""

P50_MS, P95_MS, FLAT = 1.0, 3.0, 1.5
"""Issue 16's latency targets: p50 and p95 in ms; p50 at 10,000 supervoxels ÷
p50 at 10."""

APPLY_S = 20.0
"""Issue 16's target for the agglomeration pass, end to end."""

THINK = 0.05
"""Seconds of pause before each edit of the latency part (a proofreader's
clicks are further apart): an edit's background work (announcing the blocks
its supervoxels are in) does not run into the next one's time."""


# ------------------------------------------------------------------- latency
@dataclass(frozen=True)
class Pools:
    """The bodies of the synthetic volume that timed edits use.

    Attributes
    ----------
    pairs : dict of int to list of (int, int)
        For each body size, the (target, merged) body pairs that take turns.
    """

    pairs: dict[int, list[tuple[int, int]]]

    def bodies(self, size: int) -> list[int]:
        """Every body of the pool of ``size``, pair after pair."""
        return [b for pair in self.pairs[size] for b in pair]


def box_supervoxels(size: int) -> NDArray[np.uint64]:
    """A ``size``³ volume of ``BOX``³ box supervoxels numbered 1, 2, … in
    (z, y, x) order (x fastest), so that consecutive ids are neighbours."""
    n = size // BOX
    z, y, x = (np.arange(size, dtype=np.uint64) // np.uint64(BOX) for _ in range(3))
    return (
        np.uint64(1)
        + z[:, None, None] * np.uint64(n * n)
        + y[None, :, None] * np.uint64(n)
        + x[None, None, :]
    )


def pool_pairs(quick: bool) -> dict[int, int]:
    """The pairs of bodies each size's pool holds (fewer with ``quick``)."""
    return {10: 2, 100: 2, 1_000: 2, 10_000: 1} if quick else {
        10: 8, 100: 8, 1_000: 8, 10_000: 4}


def body_mapping(n_svs: int, pairs_per_size: dict[int, int]) -> tuple[NDArray[np.uint64], Pools]:
    """Rows (supervoxel, body) of supervoxels ``1..n_svs`` grouped into bodies of
    consecutive supervoxels, each named by its first one (an identity-ish
    mapping): ``2 * pairs_per_size[s]`` bodies of each size ``s``, largest
    first, then bodies of 100 (the last one possibly smaller)."""
    starts: list[int] = []
    pairs: dict[int, list[tuple[int, int]]] = {}
    at = 1
    for size in sorted(pairs_per_size, reverse=True):
        pairs[size] = []
        for _ in range(pairs_per_size[size]):
            pairs[size].append((at, at + size))
            starts += [at, at + size]
            at += 2 * size
    if at > n_svs + 1:
        raise ValueError(f"the pools need {at - 1} supervoxels, the volume has {n_svs}")
    starts += list(range(at, n_svs + 1, 100))
    svs = np.arange(1, n_svs + 1, dtype=np.uint64)
    first = np.asarray(starts, np.uint64)
    bodies = first[np.searchsorted(first, svs, side="right") - 1]
    return np.stack([svs, bodies], axis=1), Pools(pairs)


def percentiles(times: Sequence[float]) -> tuple[float, float]:
    """(p50, p95) of ``times`` in milliseconds."""
    return 1e3 * statistics.median(times), 1e3 * float(np.percentile(times, 95))


@dataclass(frozen=True)
class Latency:
    """Per-call seconds of one body size's timed edits.

    Attributes
    ----------
    merge, cleave : list of float
        The timed merges and cleaves.
    undo : list of float
        The (untimed in the above) undos that followed them.
    """

    merge: list[float]
    cleave: list[float]
    undo: list[float]


def _timed(call: Callable[[], Any], think: float) -> float:
    """Seconds of ``call()``, made after a pause of ``think`` seconds."""
    time.sleep(think)
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def edit_latency(
    path: Path, pools: Pools, reps: int, warmup: int, think: float
) -> dict[int, Latency]:
    """For each body size: ``reps`` merges of a pair of the pool (the pairs take
    turns) and ``reps`` cleaves of ``CLEAVED`` supervoxels off one of its bodies,
    each timed alone (after a pause of ``think`` seconds) and undone, after
    ``warmup`` untimed rounds."""
    out: dict[int, Latency] = {}
    with open_dataset(path, "r+") as ds:
        for size in SIZES:
            pairs, bodies = pools.pairs[size], pools.bodies(size)
            cut = {b: [int(v) for v in ds.supervoxels_of(b)[-CLEAVED:]] for b in bodies}
            assert all(ds.supervoxels_of(b).size == size for b in bodies)
            merges, cleaves, undos = [], [], []
            for i in range(warmup + reps):
                target, merged = pairs[i % len(pairs)]
                body = bodies[i % len(bodies)]
                timed = [
                    _timed(partial(ds.merge, target, [merged]), think),
                    _timed(ds.undo, think),
                    _timed(partial(ds.cleave, body, cut[body]), think),
                    _timed(ds.undo, think),
                ]
                if i >= warmup:
                    merges.append(timed[0])
                    cleaves.append(timed[2])
                    undos += [timed[1], timed[3]]
            out[size] = Latency(merges, cleaves, undos)
        assert all(ds.supervoxels_of(b).size == size for size in SIZES
                   for b in pools.bodies(size))
    return out


def voxel_merge_latency(path: Path, pools: Pools, reps: int) -> dict[int, list[float]]:
    """Per-call seconds of voxel-mode merges of the pools' pairs (each undone,
    untimed), after one untimed round per size."""
    out: dict[int, list[float]] = {}
    with open_dataset(path, "r+") as ds:
        for size in SIZES:
            pairs = pools.pairs[size]
            times = []
            for i in range(1 + reps):
                target, merged = pairs[i % len(pairs)]
                seconds = _timed(partial(ds.merge, target, [merged]), THINK)
                _timed(ds.undo, THINK)
                if i:
                    times.append(seconds)
            out[size] = times
    return out


def in_fresh_process(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a new Python process, after ``os.sync()``: the timed
    edits run as a proofreading session would, without the heap the builds
    left here and without their pending disk writes."""
    os.sync()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(fn, *args).result()


@dataclass(frozen=True)
class LatencyResult:
    """What :func:`latency` measured."""

    size: int
    n_svs: int
    reps: int
    build_s: float
    labelmap: dict[int, Latency]
    back_to_back: dict[int, Latency]
    voxel: dict[int, list[float]] | None


def latency(tmp: Path, size: int, reps: int, quick: bool, voxel: bool) -> LatencyResult:
    """Build the synthetic volume (labelmap, and voxel mode if ``voxel``) and
    time edits on it in fresh processes."""
    vol = box_supervoxels(size)
    n_svs = (size // BOX) ** 3
    rows, pools = body_mapping(n_svs, pool_pairs(quick))
    np.save(tmp / "svs.npy", vol)
    t0 = time.perf_counter()
    lm = build_pyramid(tmp / "svs.npy", tmp / "labelmap.h5", mapping=Mapping.from_pairs(rows))
    build_s = time.perf_counter() - t0
    (tmp / "svs.npy").unlink()
    vx = None
    if voxel:
        bodies = rows[:, 1][vol - np.uint64(1)]  # (supervoxel i is row i - 1)
        del vol
        np.save(tmp / "bodies.npy", bodies)
        del bodies
        vx = build_pyramid(tmp / "bodies.npy", tmp / "voxel.h5")
        (tmp / "bodies.npy").unlink()
    else:
        del vol
    timed = in_fresh_process(edit_latency, lm, pools, reps, 3, THINK)
    back_to_back = in_fresh_process(edit_latency, lm, pools, reps, 3, 0.0)
    voxel_times = None
    if vx is not None:
        voxel_times = in_fresh_process(voxel_merge_latency, vx, pools, 3 if quick else 5)
    return LatencyResult(size, n_svs, reps, build_s, timed, back_to_back, voxel_times)


# ------------------------------------------------------------- agglomeration
def assembly_merges(mapping: NDArray[np.uint64], sizes: dict[int, int]) -> list[list[int]]:
    """For each body of ``mapping`` (rows (supervoxel, body); body 0 left out),
    largest first: its supervoxels, largest first (``sizes``: voxels of each
    supervoxel).  The first is the merge target."""
    voxels = np.array([sizes.get(int(s), 0) for s in mapping[:, 0]], np.int64)
    order = np.lexsort((mapping[:, 0], -voxels))  # largest first, then by id
    members: dict[int, list[int]] = {}
    for sv, body in mapping[order].tolist():
        if body:
            members.setdefault(body, []).append(sv)
    body_size = {b: sum(sizes.get(s, 0) for s in svs) for b, svs in members.items()}
    return [members[b] for b in sorted(members, key=lambda b: (-body_size[b], b))]


def segmend_command() -> list[str]:
    """The ``segmend`` console script of this environment (else ``python -m app``)."""
    script = Path(sys.executable).with_name("segmend")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app"]


@dataclass(frozen=True)
class ApplyRun:
    """One ``segmend apply`` run.

    Attributes
    ----------
    lines : int
        Lines of the log.
    merges : int
        Bodies merged by them.
    seconds : float
        End to end (process start to exit).
    first_s : float
        Until its first result was printed (start-up, opening, first edit).
    per_line : list of float
        Seconds between consecutive results (printed a group at a time, as
        each group is durable: mostly 0 within a group).
    """

    lines: int
    merges: int
    seconds: float
    first_s: float
    per_line: list[float]

    @property
    def groups(self) -> int:
        """Groups the results came in (gaps of more than 1 ms between them)."""
        return 1 + sum(gap > 1e-3 for gap in self.per_line)

    @property
    def line_ms(self) -> float:
        """Milliseconds per line after the first result."""
        return 1e3 * sum(self.per_line) / max(1, len(self.per_line))


def timed_apply(path: Path, log: Path, merges: int) -> ApplyRun:
    """Run ``segmend apply path log`` and time it, and each of its results."""
    lines = sum(1 for line in log.read_text().splitlines() if line.strip())
    os.sync()
    stamps = []
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        with subprocess.Popen(
            [*segmend_command(), "apply", str(path), str(log)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                stamps.append(time.perf_counter())
                json.loads(line)
            status = proc.wait()
        seconds = time.perf_counter() - t0
        err.seek(0)
        message = err.read().strip()
    if status != 0 or len(stamps) != lines:
        raise RuntimeError(
            f"segmend apply exited {status} after {len(stamps)} of {lines} lines: {message}"
        )
    return ApplyRun(lines, merges, seconds, stamps[0] - t0, list(np.diff(stamps)))


def one_to_one(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> tuple[bool, int, int]:
    """Whether the ids of ``a`` and ``b`` (same shape) correspond one to one
    over all voxels (the same partition, ids aside); and how many ids each has."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    n_a, n_b = np.unique(pairs[0]).size, np.unique(pairs[1]).size
    return pairs.shape[1] == n_a == n_b, n_a, n_b


@dataclass(frozen=True)
class AgglomerationResult:
    """What :func:`agglomeration` measured and checked.

    Attributes
    ----------
    svs, bodies : int
        Supervoxels of the cube; bodies assembled.
    whole : bool
        Whether every ground-truth body was assembled (not ``--quick``).
    runs : list of ApplyRun
        The one-merge-per-line run, then the one-line-per-body run.
    labels_exact : bool
        The first run's labels equal the expected bodies, voxel for voxel.
    partition : (bool, int, int)
        :func:`one_to_one` of its labels and the ground truth.
    verify_ok, verify_problems
        Its ``verify`` report.
    """

    svs: int
    bodies: int
    whole: bool
    runs: list[ApplyRun]
    labels_exact: bool
    partition: tuple[bool, int, int]
    verify_ok: bool
    verify_problems: list[str]


def agglomeration(tmp: Path, quick: bool) -> AgglomerationResult:
    """Build the cube's supervoxels with the identity mapping, replay the
    assembly of the ground-truth bodies with ``segmend apply`` (one merge per
    line, then one line per body, each on a fresh build), and check the
    first run's result."""
    cube = demo_cube_path()
    with h5py.File(cube, "r") as f:
        svs = f["groundtruth/supervoxels"][...]
        truth = f["groundtruth/bodies"][...]
        mapping = f["groundtruth/mapping"][...]
    ids, counts = np.unique(svs, return_counts=True)
    bodies = assembly_merges(mapping, dict(zip(ids.tolist(), counts.tolist(), strict=True)))
    if quick:  # every tenth body (about 2,000 merges)
        bodies = bodies[::10]
    pair_log, body_log = tmp / "pairs.jsonl", tmp / "bodies.jsonl"
    pair_log.write_text("".join(
        json.dumps({"Action": "merge", "Target": b[0], "Labels": [s]}) + "\n"
        for b in bodies for s in b[1:]
    ))
    body_log.write_text("".join(
        json.dumps({"Action": "merge", "Target": b[0], "Labels": b[1:]}) + "\n"
        for b in bodies if len(b) > 1
    ))
    identity = Mapping.from_pairs(np.stack([mapping[:, 0], mapping[:, 0]], axis=1))
    spec = f"{cube}:/groundtruth/supervoxels"
    built = build_pyramid(spec, tmp / "cube-built.h5", mapping=identity)
    merged = sum(len(b) - 1 for b in bodies)
    runs = []
    for name, log in (("pairs", pair_log), ("bodies", body_log)):
        path = tmp / f"cube-{name}.h5"
        shutil.copy(built, path)
        runs.append(timed_apply(path, log, merged))

    # expected: each supervoxel of an assembled body maps to its target
    expected_of = {s: b[0] for b in bodies for s in b}
    keys = np.array(sorted(expected_of), np.uint64)
    values = np.array([expected_of[k] for k in keys.tolist()], np.uint64)
    at = np.clip(np.searchsorted(keys, svs), 0, keys.size - 1)
    expected = np.where(keys[at] == svs, values[at], svs)
    if quick:  # the assembled bodies' voxels
        done = np.isin(truth, np.unique(truth[np.isin(svs, keys)]))
    else:  # every voxel
        done = np.ones(truth.shape, bool)
    with open_dataset(tmp / "cube-pairs.h5", "r") as ds:
        labels = ds.labels(0)[...]
        report = ds.verify()
    return AgglomerationResult(
        int(ids.size),
        len(bodies),
        not quick,
        runs,
        bool(np.array_equal(labels, expected)),
        one_to_one(labels[done], truth[done]),
        report.ok,
        list(report.problems),
    )


# ------------------------------------------------------------------- report
def met(ok: bool) -> str:
    """A table's "met" cell."""
    return "yes" if ok else "**no**"


def report(lat: LatencyResult | None, agg: AgglomerationResult | None) -> None:
    """Print the one table of results, each target with whether it is met."""
    print("\n## Labelmap mode (issue 16)\n")
    if lat:
        print(
            f"Latency: {lat.size}³ volume of {lat.n_svs:,} box supervoxels ({BOX}³), 64³ blocks "
            f"(built in {lat.build_s:.1f} s); {lat.reps} timed calls per kind and size, "
            f"each durable, each undone before the next."
        )
    if agg:
        print(
            f"Agglomeration: the FIB cube's {agg.svs:,} ground-truth supervoxels, identity "
            f"mapping, {agg.bodies} bodies assembled by `segmend apply` (a subprocess)."
        )
    print("\n| measure | value | target | met |")
    print("|---|---|---|---|")
    if lat:
        for kind in ("merge", "cleave"):
            for size in SIZES:
                p50, p95 = percentiles(getattr(lat.labelmap[size], kind))
                what = f"{kind} of {CLEAVED} supervoxels off" if kind == "cleave" else kind
                print(f"| {what} bodies of {size:,} sv: p50 | {p50:.2f} ms | ≤ {P50_MS:g} ms | "
                      f"{met(p50 <= P50_MS)} |")
                print(f"| {what} bodies of {size:,} sv: p95 | {p95:.2f} ms | ≤ {P95_MS:g} ms | "
                      f"{met(p95 <= P95_MS)} |")
        for kind in ("merge", "cleave"):
            small = percentiles(getattr(lat.labelmap[SIZES[0]], kind))[0]
            large = percentiles(getattr(lat.labelmap[SIZES[-1]], kind))[0]
            print(f"| {kind} p50, {SIZES[-1]:,} sv ÷ {SIZES[0]} sv | {large / small:.2f}× | "
                  f"≤ {FLAT:g}× | {met(large / small <= FLAT)} |")
        for kind in ("merge", "cleave"):
            for size in SIZES:
                p50, p95 = percentiles(getattr(lat.back_to_back[size], kind))
                print(f"| {kind}, bodies of {size:,} sv, back to back (no pause): p50 / p95 | "
                      f"{p50:.2f} / {p95:.2f} ms | (reference) | |")
        for size in SIZES:
            p50, p95 = percentiles(lat.labelmap[size].undo)
            print(f"| undo of those edits, bodies of {size:,} sv: p50 / p95 | "
                  f"{p50:.2f} / {p95:.2f} ms | (reference) | |")
        if lat.voxel:
            for size in SIZES:
                p50, _ = percentiles(lat.voxel[size])
                print(f"| voxel-mode merge of the same bodies of {size:,} sv: p50 "
                      f"({len(lat.voxel[size])} calls) | {p50:.1f} ms | (reference) | |")
    if agg:
        for run in agg.runs:
            what = "one merge per line" if run.lines == run.merges else "one line per body"
            line = (f"| `segmend apply`, {run.merges:,} merges, {what} ({run.lines:,} lines): "
                    f"end to end | {run.seconds:.1f} s (first result at {run.first_s:.2f} s; "
                    f"then {run.line_ms:.2f} ms per line, printed in {run.groups:,} durable "
                    f"groups) |")
            if run is not agg.runs[0]:
                print(f"{line} (reference) | |")
            elif agg.whole:
                print(f"{line} ≤ {APPLY_S:g} s | {met(run.seconds <= APPLY_S)} |")
            else:
                print(f"{line} ≤ {APPLY_S:g} s (the whole pass) | (partial log) |")
        same, n_ours, n_truth = agg.partition
        where = "every voxel" if agg.whole else "the assembled bodies' voxels"
        print(f"| labels read back == expected bodies, voxel for voxel | "
              f"{'equal' if agg.labels_exact else 'DIFFERENT'} | equal | {met(agg.labels_exact)} |")
        print(f"| partition == `groundtruth/bodies` (ids one-to-one over {where}) | "
              f"{n_ours} ↔ {n_truth} ids, {'one-to-one' if same else 'NOT one-to-one'} | "
              f"one-to-one | {met(same)} |")
        problems = "; ".join(agg.verify_problems[:3])
        print(f"| `verify` after the pass | {'clean' if agg.verify_ok else problems or 'FAILED'} | "
              f"clean | {met(agg.verify_ok)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=None,
                        help="edge of the synthetic volume (default 512; 256 with --quick)")
    parser.add_argument("--reps", type=int, default=None,
                        help="timed calls per kind and size (default 60; 20 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller volume, fewer calls, a partial agglomeration")
    parser.add_argument("--only", choices=["latency", "agglomeration"],
                        help="run one part of the benchmark")
    parser.add_argument("--no-voxel", action="store_true",
                        help="leave out the voxel-mode reference")
    args = parser.parse_args()
    size = args.size or (256 if args.quick else 512)
    reps = args.reps or (20 if args.quick else 60)
    if size % 64:
        parser.error("--size must be a multiple of 64")
    with tempfile.TemporaryDirectory() as tmp:
        lat: LatencyResult | None = None
        agg: AgglomerationResult | None = None
        if args.only != "agglomeration":
            lat = latency(Path(tmp), size, reps, args.quick, not args.no_voxel)
        if args.only != "latency":
            agg = agglomeration(Path(tmp), args.quick)
        report(lat, agg)


if __name__ == "__main__":
    main()
