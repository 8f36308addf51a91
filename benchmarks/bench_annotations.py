"""Synced point annotations (issue 17): what 100,000 synapses add to an edit,
importing 1,000,000 elements, and ``get BODY``.

Usage: python -m benchmarks.bench_annotations [--quick] [--only latency|import]
[--size 512] [--reps 40] [--synapses 100000] [--elements 1000000] [--no-voxel]

The elements are synapses as real exports hold them, made here uniformly over a
volume: PreSyn sites at random voxels, each with 1–4 PostSyn partners (drawn
15 / 35 / 30 / 20 %, as :mod:`app.model.annotations.synthetic` draws them)
at random offsets of at most 6 voxels per axis, a ``conf`` property each, and
the relationships both ways (``PreSynTo`` each partner, ``PostSynTo`` the
PreSyn); a synapse with a position another element has is left out.  Each
timed part runs in a fresh process, after ``os.sync()``; the table's header
gives the machine's cores and its load averages at the start and at the end.

- **Edit latency** (target 1): the synthetic volume of ``bench_labelmap``
  (``size``³, 8³ box supervoxels, 64³ blocks; pools of bodies of 10, 100,
  1,000 and 10,000 supervoxels) built in labelmap mode, copied three times:
  ``synapses`` (100,000) posted over the whole volume into one copy, as many
  elsewhere (none on a body of the pools) into another, none into the third.
  One process opens the three copies and makes the same edits on each, in
  turns (each copy first in every third round), so that the machine's load
  weighs on all alike: for each body size, ``reps`` merges of a pair of the
  pool and ``reps`` cleaves of 3 supervoxels off one of its bodies, each timed alone,
  durable as the API returns, after a pause of 50 ms, and undone before the
  next (the undos timed too, for reference), after 3 untimed rounds.  How many
  synapses each edit moved is counted on the copies that have them (the
  merged body's elements before a merge, the cleaved body's after a cleave:
  none on the copy with the synapses elsewhere).  Then
  the same in voxel mode (the volume mapped to its bodies, built as a plain
  pyramid: a merge rewrites every voxel of the merged body), merges only,
  fewer of them.  Target: p50 and p95 of each edit with the synapses within
  10 % (≤ 1.10×) of the same edits without; reported for both copies that
  have them (the one with the synapses elsewhere shows what the set's size
  costs an edit that moves none of them).
- **Import** (target 2): the shipped FIB-SEM cube (250³; its automated
  supervoxels and mapping, labelmap mode; 64³ blocks) and ``elements``
  (1,000,000) elements over it, as one DVID JSON list; ``post`` of that text
  timed end to end (parsing, the labels at the positions, the journal rows,
  the event, the durable commit).  For reference: posting the same text again
  (every element replaced).  Target ≤ 10 s (``--quick``: fewer elements, the
  target scaled to them).
- **get BODY** (target 3): on the imported cube, opened read-only in a fresh
  process, ``annotations.body`` of the body whose element count is closest to
  10,000 (its count is reported), 20 calls, without and with relationships.
  Target p50 ≤ 50 ms.  For reference: the largest body, and ``top`` (the 100
  bodies with the most PostSyn).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from app.model.bulk.build import build_pyramid
from app.model.dataset import Dataset, open_dataset
from app.model.demo import demo_cube_path
from app.model.labelmap import Mapping
from benchmarks.bench_labelmap import (
    BOX,
    CLEAVED,
    SIZES,
    THINK,
    Pools,
    body_mapping,
    box_supervoxels,
    in_fresh_process,
    met,
    percentiles,
    pool_pairs,
)

NAME = "synapses"
"""The annotation set."""

PARTNER_ODDS = {1: 0.15, 2: 0.35, 3: 0.30, 4: 0.20}
"""Probability of each number of PostSyn partners of a PreSyn."""

REACH = 6
"""Greatest offset (voxels, per axis) of a partner from its PreSyn."""

EDIT_RATIO = 1.10
"""Target 1: an edit's p50 and p95 with the synapses ÷ without."""

IMPORT_S, IMPORT_N = 10.0, 1_000_000
"""Target 2: seconds to import this many elements."""

GET_MS, GET_N = 50.0, 10_000
"""Target 3: p50 of ``get BODY`` (ms) for a body of this many elements."""


# ------------------------------------------------------------------ synapses
Allowed = Callable[[NDArray[np.int64]], NDArray[np.bool_]]
"""Which positions ``(z, y, x)`` (n, 3) synapses may take."""


def off_bodies(size: int, rows: NDArray[np.uint64], bodies: list[int]) -> Allowed:
    """The positions of the ``size``³ box-supervoxel volume
    (:func:`box_supervoxels`, mapped by ``rows`` (supervoxel, body)) on none of
    ``bodies``."""
    body_of, banned, n = rows[:, 1], np.asarray(bodies, np.uint64), size // BOX

    def allowed(zyx: NDArray[np.int64]) -> NDArray[np.bool_]:
        box = zyx // BOX
        return ~np.isin(body_of[(box[:, 0] * n + box[:, 1]) * n + box[:, 2]], banned)

    return allowed


def synapse_positions(n: int, shape: tuple[int, int, int], seed: int,
                      allowed: Allowed | None = None
                      ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``n`` distinct positions ``(x, y, z)`` inside ``shape`` ``(z, y, x)``, in
    synapses (a PreSyn, then its partners), and each one's synapse number
    (``allowed``: only synapses whose every position it allows)."""
    rng = np.random.default_rng(seed)
    size = np.asarray(shape, np.int64)
    taken = np.zeros(0, np.int64)
    pos, group = np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
    first = 0
    while pos.shape[0] < n:
        m = int((n - pos.shape[0]) / 3) + 64
        pre = (rng.random((m, 3)) * size).astype(np.int64)
        k = rng.choice(list(PARTNER_ODDS), m, p=list(PARTNER_ODDS.values()))
        owner = np.repeat(np.arange(m), k)
        post = np.clip(pre[owner] + rng.integers(-REACH, REACH + 1, (owner.size, 3)), 0,
                       size - 1)
        # each synapse's PreSyn, then its partners
        order = np.argsort(np.concatenate([np.arange(m), owner]), kind="stable")
        zyx = np.concatenate([pre, post])[order]
        grp = np.concatenate([np.arange(m), owner])[order]
        lin = np.ravel_multi_index(zyx.T, shape)
        _, once = np.unique(lin, return_index=True)
        dup = np.ones(lin.size, bool)
        dup[once] = False
        dup |= np.isin(lin, taken)
        if allowed is not None:
            dup |= ~allowed(zyx)
        keep = ~np.isin(grp, grp[dup])
        taken = np.concatenate([taken, lin[keep]])
        pos = np.concatenate([pos, zyx[keep][:, ::-1]])
        group = np.concatenate([group, first + grp[keep]])
        first += m
    return pos[:n], group[:n]


def synapse_json(n: int, shape: tuple[int, int, int], seed: int = 0,
                 allowed: Allowed | None = None) -> str:
    """``n`` synapse elements over a volume of ``shape`` (where ``allowed``), as
    a DVID JSON list (the last synapse may have lost partners to the count)."""
    pos, group = synapse_positions(n, shape, seed, allowed)
    conf = np.random.default_rng(seed + 1).integers(900, 1000, n)
    out: list[dict[str, Any]] = []
    pre: dict[str, Any] = {}
    starts = np.r_[True, group[1:] != group[:-1]]
    for p, c, new in zip(pos.tolist(), conf.tolist(), starts.tolist(), strict=True):
        element: dict[str, Any] = {"Pos": p, "Kind": "PreSyn" if new else "PostSyn",
                                   "Tags": [], "Prop": {"conf": f"0.{c}"}, "Rels": []}
        if new:
            pre = element
        else:
            pre["Rels"].append({"Rel": "PreSynTo", "To": p})
            element["Rels"].append({"Rel": "PostSynTo", "To": pre["Pos"]})
        out.append(element)
    return json.dumps(out)


def post_file(path: Path, text_file: Path) -> float:
    """Post the JSON of ``text_file`` into set :data:`NAME` of ``path``; seconds."""
    text = text_file.read_text()
    with open_dataset(path, "r+") as ds:
        t0 = time.perf_counter()
        ds.annotations.post(NAME, text)
        return time.perf_counter() - t0


# ------------------------------------------------------------- edit latency
@dataclass
class Paired:
    """Per-call seconds of one kind of edit, without the synapses, with them,
    and with them elsewhere (none on the edited bodies), and how many
    synapses each call moved."""

    bare: list[float]
    loaded: list[float]
    away: list[float]
    moved: list[int]
    moved_away: list[int]

    def ratios(self, times: list[float]) -> tuple[float, float]:
        """p50 and p95 of ``times`` (``loaded`` or ``away``) ÷ ``bare``'s."""
        (b50, b95), (l50, l95) = percentiles(self.bare), percentiles(times)
        return l50 / b50, l95 / b95


def _timed(call: Callable[[], Any]) -> float:
    time.sleep(THINK)
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def _elements_on(ds: Dataset, body: int) -> int:
    return sum(ds.annotations.counts(NAME, body).values())


def paired_latency(bare: Path, loaded: Path, away: Path, pools: Pools, reps: int,
                   warmup: int, cleave: bool) -> dict[str, Paired]:
    """``{"<kind> <size>": Paired}`` (kinds ``merge``, and with ``cleave``
    ``cleave`` and ``undo``): the same edits on ``bare``, ``loaded`` and
    ``away`` in turns, after ``warmup`` untimed rounds (see the module's
    docstring)."""
    out: dict[str, Paired] = {}
    with (open_dataset(bare, "r+") as b, open_dataset(loaded, "r+") as s,
          open_dataset(away, "r+") as a):
        for size in SIZES:
            pairs, bodies = pools.pairs[size], pools.bodies(size)
            cut = ({x: [int(v) for v in s.supervoxels_of(x)[-CLEAVED:]] for x in bodies}
                   if cleave else {})
            kinds = ("merge", "cleave", "undo") if cleave else ("merge",)
            runs = {k: Paired([], [], [], [], []) for k in kinds}
            for i in range(warmup + reps):
                target, merged = pairs[i % len(pairs)]
                body = bodies[i % len(bodies)]
                for copy in (0, 1, 2)[i % 3:] + (0, 1, 2)[:i % 3]:
                    ds = (b, s, a)[copy]
                    times: dict[str, list[float]] = {}
                    moved = {"merge": _elements_on(ds, merged)}
                    times["merge"] = [_timed(partial(ds.merge, target, [merged]))]
                    times["undo"] = [_timed(ds.undo)]
                    if cleave:
                        time.sleep(THINK)
                        t0 = time.perf_counter()
                        cleaved = ds.cleave(body, cut[body])[0]
                        times["cleave"] = [time.perf_counter() - t0]
                        moved["cleave"] = _elements_on(ds, cleaved)
                        times["undo"].append(_timed(ds.undo))
                    if i < warmup:
                        continue
                    for kind, run in runs.items():
                        (run.bare, run.loaded, run.away)[copy].extend(times[kind])
                        if copy and kind in moved:
                            (run.moved, run.moved_away)[copy - 1].append(moved[kind])
            out.update({f"{kind} {size}": run for kind, run in runs.items()})
    return out


@dataclass(frozen=True)
class LatencyResult:
    """What :func:`latency` measured."""

    size: int
    n_svs: int
    synapses: int
    post_s: float
    labelmap: dict[str, Paired]
    voxel: dict[str, Paired] | None


def latency(tmp: Path, size: int, reps: int, n: int, quick: bool, voxel: bool
            ) -> LatencyResult:
    """Build the synthetic volume (and its voxel-mode twin), post ``n``
    synapses into a copy of each, and time paired edits in fresh processes."""
    vol = box_supervoxels(size)
    n_svs = (size // BOX) ** 3
    rows, pools = body_mapping(n_svs, pool_pairs(quick))
    np.save(tmp / "svs.npy", vol)
    built = {"labelmap": build_pyramid(tmp / "svs.npy", tmp / "labelmap.h5",
                                       mapping=Mapping.from_pairs(rows))}
    (tmp / "svs.npy").unlink()
    if voxel:
        np.save(tmp / "bodies.npy", rows[:, 1][vol - np.uint64(1)])
        built["voxel"] = build_pyramid(tmp / "bodies.npy", tmp / "voxel.h5")
        (tmp / "bodies.npy").unlink()
    del vol
    text, elsewhere = tmp / "synapses.json", tmp / "elsewhere.json"
    text.write_text(synapse_json(n, (size, size, size)))
    edited = [b for s in SIZES for b in pools.bodies(s)]
    elsewhere.write_text(synapse_json(n, (size, size, size),
                                      allowed=off_bodies(size, rows, edited)))
    copies: dict[str, tuple[Path, Path, Path]] = {}
    post_s = 0.0
    for mode, path in built.items():
        bare, loaded, away = (tmp / f"{mode}-{what}.h5" for what in ("bare", "synapses", "away"))
        shutil.copy(path, bare)
        shutil.copy(path, away)
        path.rename(loaded)
        seconds = in_fresh_process(post_file, loaded, text)
        in_fresh_process(post_file, away, elsewhere)
        post_s = post_s or seconds
        copies[mode] = (bare, loaded, away)
    lm = in_fresh_process(paired_latency, *copies["labelmap"], pools, reps, 3, True)
    vx = None
    if voxel:
        vx = in_fresh_process(paired_latency, *copies["voxel"], pools, 3 if quick else 5, 1,
                              False)
    return LatencyResult(size, n_svs, n, post_s, lm, vx)


# ------------------------------------------------------------ import and get
def elements_per_body(pos: NDArray[np.int64], bodies: NDArray[np.uint64]
                      ) -> dict[int, int]:
    """How many of the positions ``(x, y, z)`` each body of ``bodies`` holds."""
    at = bodies[pos[:, 2], pos[:, 1], pos[:, 0]]
    ids, counts = np.unique(at, return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist(), strict=True))


def timed_import(path: Path, text_file: Path) -> tuple[float, float]:
    """Seconds of posting the JSON of ``text_file`` into a fresh set, then of
    posting it again (every element replaced)."""
    text = text_file.read_text()
    with open_dataset(path, "r+") as ds:
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            ds.annotations.post(NAME, text)
            times.append(time.perf_counter() - t0)
    return times[0], times[1]


def timed_reads(path: Path, bodies: list[int], calls: int) -> dict[str, list[float]]:
    """Per-call seconds of ``get BODY`` of each of ``bodies`` (without and with
    relationships), and of ``top`` 100, read-only."""
    out: dict[str, list[float]] = {}
    with open_dataset(path, "r") as ds:
        reads: dict[str, Callable[[], Any]] = {
            "top 100": partial(ds.annotations.top, NAME, 100)}
        for body in bodies:
            reads[f"get {body}"] = partial(ds.annotations.body, NAME, body)
            reads[f"get {body} rels"] = partial(ds.annotations.body, NAME, body,
                                                relationships=True)
        for key, read in reads.items():
            read()  # (warm)
            times = []
            for _ in range(calls):
                t0 = time.perf_counter()
                read()
                times.append(time.perf_counter() - t0)
            out[key] = times
    return out


@dataclass(frozen=True)
class ImportResult:
    """What :func:`importing` measured."""

    elements: int
    chars: int
    seconds: tuple[float, float]
    bodies: list[tuple[int, int]]
    reads: dict[str, list[float]]


def importing(tmp: Path, n: int) -> ImportResult:
    """Build the cube (labelmap mode), import ``n`` elements over it in a fresh
    process, then time reads in another."""
    cube = demo_cube_path()
    path = build_pyramid(f"{cube}:/automated/supervoxels", tmp / "cube.h5",
                         mapping=f"{cube}:/automated/mapping")
    with h5py.File(cube, "r") as f:
        bodies = f["automated/bodies"][...]
    text = synapse_json(n, bodies.shape, seed=1)
    source = tmp / "elements.json"
    source.write_text(text)
    counts = elements_per_body(synapse_positions(n, bodies.shape, 1)[0], bodies)
    near = min(counts, key=lambda b: (abs(counts[b] - GET_N), b))
    largest = max(counts, key=lambda b: (counts[b], -b))
    seconds = in_fresh_process(timed_import, path, source)
    reads = in_fresh_process(timed_reads, path, [near, largest], 20)
    return ImportResult(n, len(text), seconds,
                        [(near, counts[near]), (largest, counts[largest])], reads)


# ------------------------------------------------------------------- report
def _ms(times: list[float]) -> str:
    p50, p95 = percentiles(times)
    return f"{p50:.2f} / {p95:.2f} ms"


def report(lat: LatencyResult | None, imp: ImportResult | None,
           load: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
    """Print the one table of results, each target with whether it is met
    (``load``: the load averages at the start and at the end)."""
    print("\n## Synced point annotations (issue 17)\n")
    print(f"Machine: {os.cpu_count()} cores; load average (1, 5, 15 min) "
          f"{' / '.join(f'{v:.1f}' for v in load[0])} at the start, "
          f"{' / '.join(f'{v:.1f}' for v in load[1])} at the end.")
    if lat:
        print(f"Edit latency: {lat.size}³ volume of {lat.n_svs:,} box supervoxels, 64³ blocks; "
              f"{lat.synapses:,} synapses posted in {lat.post_s:.1f} s into one of three "
              f"copies, as many off the edited bodies into another; the same edits on the "
              f"three in turns, each after {THINK * 1e3:g} ms, durable, undone before the next.")
    if imp:
        print(f"Import: the FIB cube (250³, labelmap mode), {imp.elements:,} elements in one "
              f"JSON list of {imp.chars / 1e6:.0f} MB.")
    print("\n| measure | without → with synapses → with them elsewhere (p50 / p95) | "
          "with ÷ without | elsewhere ÷ without | synapses moved per edit (median, max; "
          "elsewhere: max) | target | met (with / elsewhere) |")
    print("|---|---|---|---|---|---|---|")
    parts = [("labelmap", lat.labelmap)] if lat else []
    if lat and lat.voxel:
        parts.append(("voxel-mode", lat.voxel))
    for mode, runs in parts:
        for key, run in runs.items():
            kind, size = key.split()
            what = f"cleave of {CLEAVED} sv off" if kind == "cleave" else kind
            (r50, r95), (a50, a95) = run.ratios(run.loaded), run.ratios(run.away)
            reference = kind == "undo"
            moved = (f"{statistics.median(run.moved):g}, {max(run.moved)}; "
                     f"{max(run.moved_away)}" if not reference else "(as the edit)")
            oks = (met(max(r) <= EDIT_RATIO) for r in ((r50, r95), (a50, a95)))
            print(f"| {mode} {what} bodies of {int(size):,} sv ({len(run.bare)} calls) | "
                  f"{_ms(run.bare)} → {_ms(run.loaded)} → {_ms(run.away)} | "
                  f"{r50:.2f}× / {r95:.2f}× | {a50:.2f}× / {a95:.2f}× | {moved} | "
                  + ("(reference) | |" if reference else
                     f"≤ {EDIT_RATIO:.2f}× | {' / '.join(oks)} |"))
    if imp:
        target = IMPORT_S * imp.elements / IMPORT_N
        first, again = imp.seconds
        scaled = "" if imp.elements == IMPORT_N else " (scaled)"
        print(f"| import {imp.elements:,} elements (one `post`, end to end) | {first:.1f} s "
              f"| | | | ≤ {target:g} s{scaled} | {met(first <= target)} |")
        print(f"| the same `post` again (every element replaced) | {again:.1f} s | | | | "
              f"(reference) | |")
        (near, n_near), (largest, n_largest) = imp.bodies
        for body, n, is_target in ((near, n_near, True), (largest, n_largest, False)):
            for rels in (False, True):
                times = imp.reads[f"get {body}{' rels' if rels else ''}"]
                p50 = percentiles(times)[0]
                what = f"`get` body {body} ({n:,} elements){', relationships' if rels else ''}"
                print(f"| {what}: p50 / p95 | {_ms(times)} | | | | "
                      + (f"≤ {GET_MS:g} ms | {met(p50 <= GET_MS)} |" if is_target
                         else "(reference) | |"))
        print(f"| `top` 100 PostSyn: p50 / p95 | {_ms(imp.reads['top 100'])} | | | | "
              f"(reference) | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a 256³ volume, fewer edits, 200,000 elements imported")
    parser.add_argument("--only", choices=["latency", "import"], help="run one part")
    parser.add_argument("--size", type=int, default=None,
                        help="edge of the synthetic volume (default 512; 256 with --quick)")
    parser.add_argument("--reps", type=int, default=None,
                        help="timed calls per kind and size (default 40; 15 with --quick)")
    parser.add_argument("--synapses", type=int, default=100_000,
                        help="elements loaded for the edit latency (default 100,000)")
    parser.add_argument("--elements", type=int, default=None,
                        help="elements imported (default 1,000,000; 200,000 with --quick)")
    parser.add_argument("--no-voxel", action="store_true", help="leave out voxel-mode merges")
    args = parser.parse_args()
    size = args.size or (256 if args.quick else 512)
    if size % 64:
        parser.error("--size must be a multiple of 64")
    reps = args.reps or (15 if args.quick else 40)
    elements = args.elements or (200_000 if args.quick else IMPORT_N)
    start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        lat = imp = None
        if args.only != "import":
            lat = latency(Path(tmp), size, reps, args.synapses, args.quick, not args.no_voxel)
        if args.only != "latency":
            imp = importing(Path(tmp), elements)
        report(lat, imp, (start, os.getloadavg()))


if __name__ == "__main__":
    main()
