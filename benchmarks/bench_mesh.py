"""Body meshes on the real FIB-SEM cube: a ~1-million-voxel body's first
(coarse) and refined mesh, and a merge's mesh update.

Usage: python -m benchmarks.bench_mesh [--repeats 5] [--json OUT.json]

The demo pyramid (automated segmentation, 64³ blocks, 3 scales) is built from
the shipped cube.  The body: the largest one under 10⁶ voxels merged (untimed)
with the body that brings it nearest 10⁶.  Each repeat reopens the dataset
(cold block cache) with a new :class:`~app.model.meshes.BodyMesher` (empty
mesh cache) and times:

- **first mesh**: the plan (label index) and the mesh at its coarse scale;
- **refined mesh**: then the s0 mesh (no block mesh cached at s0 yet);
- **merge update**: a second shown body (~200k voxels, its s0 mesh made
  untimed) is merged into it; from the merge's commit (``labels_changed``,
  where the app starts re-meshing) to the merged body's s0 mesh ready, made on
  another thread while the merge's cascade runs, as in the app; and the whole
  merge call for reference.  The merge is then undone (untimed).

Reference: the whole body's bounding box at s0 meshed in one call (padded by
one voxel) by scikit-image's marching cubes (what the blocks reproduce
exactly) and by zmesh; the mask is read beforehand, untimed.

Median and range over the repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmesh

from app.model.dataset import Dataset, open_dataset
from app.model.demo import build_demo
from app.model.meshes import BodyMesher, mesh_whole

TARGET = 1_000_000


def pick_bodies(ds: Dataset) -> tuple[int, int, int]:
    """(body, its merge partner making ~10⁶ voxels, a ~200k-voxel body to merge later)."""
    sizes = {b.label: b.voxels for b in ds.bodies()}
    body = max((v for v in sizes if sizes[v] < TARGET), key=lambda v: sizes[v])
    partner = min((v for v in sizes if v != body),
                  key=lambda v: abs(sizes[body] + sizes[v] - TARGET))
    later = min((v for v in sizes if v not in (body, partner)),
                key=lambda v: abs(sizes[v] - 200_000))
    return body, partner, later


def one_run(path: Path, body: int, other: int) -> dict[str, float]:
    """One timed repeat on a freshly opened dataset (see the module docstring)."""
    ds = open_dataset(path, "r+")
    try:
        mesher = BodyMesher(ds)
        mesher.cache.connect(ds.signals)
        start = time.perf_counter()
        plan = mesher.plan(body)
        coarse = mesher.mesh(body, plan[0])
        first = time.perf_counter() - start
        start = time.perf_counter()
        fine = mesher.mesh(body, 0)
        refined = time.perf_counter() - start
        assert coarse is not None and fine is not None
        mesher.mesh(other, 0)

        committed = threading.Event()
        stamps: dict[str, float] = {}
        result: list[Any] = []

        def on_labels(labels: list[int]) -> None:  # the commit thread: hand over at once
            if body in labels and "commit" not in stamps:
                stamps["commit"] = time.perf_counter()
                committed.set()

        def remesh() -> None:
            committed.wait()
            result.append(mesher.mesh(body, 0))
            stamps["ready"] = time.perf_counter()

        ds.signals.labels_changed.connect(on_labels)
        worker = threading.Thread(target=remesh)
        worker.start()
        start = time.perf_counter()
        ds.merge(body, [other])
        merge_call = time.perf_counter() - start
        worker.join()
        ds.signals.labels_changed.disconnect(on_labels)
        merged = result[0]
        assert merged is not None and len(merged.faces) > len(fine.faces)
        ds.undo()
        mesher.cache.disconnect()
        return {
            "coarse_scale": plan[0],
            "first_mesh_s": first,
            "refined_mesh_s": refined,
            "merge_update_s": stamps["ready"] - stamps["commit"],
            "merge_call_s": merge_call,
            "merge_blocks_remeshed": merged.computed,
            "merge_blocks": merged.blocks,
            "triangles_coarse": len(coarse.faces),
            "triangles_s0": len(fine.faces),
            "triangles_merged": len(merged.faces),
        }
    finally:
        ds.close()


def reference(path: Path, body: int) -> dict[str, float]:
    """One marching-cubes call over the body's s0 bounding box (skimage, zmesh)."""
    with open_dataset(path, "r") as ds:
        mask = ds.labels(0)[...] == np.uint64(body)
    idx = np.argwhere(mask)
    lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
    box = np.ascontiguousarray(mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
    start = time.perf_counter()
    whole = mesh_whole(box, lo.tolist())
    skimage_s = time.perf_counter() - start
    padded = np.pad(box, 1).astype(np.uint8)
    start = time.perf_counter()
    mesher = zmesh.Mesher((1, 1, 1))
    mesher.mesh(padded)
    mesher.get(1, normals=False, reduction_factor=0, max_error=0)
    zmesh_s = time.perf_counter() - start
    return {"voxels": int(mask.sum()), "bbox": [int(v) for v in hi - lo],
            "skimage_whole_s": skimage_s, "zmesh_whole_s": zmesh_s,
            "triangles_whole": len(whole.faces)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as tmp:
        path = build_demo(Path(tmp) / "demo.h5", labelmap=False)
        with open_dataset(path, "r+") as ds:
            body, partner, other = pick_bodies(ds)
            ds.merge(body, [partner])
            sizes = {"body": ds.label_size(body), "other": ds.label_size(other)}
        ref = reference(path, body)
        runs = [one_run(path, body, other) for _ in range(args.repeats)]

    def stat(key: str) -> tuple[float, float, float]:
        values = [r[key] * 1000 for r in runs]
        return statistics.median(values), min(values), max(values)

    print(f"body {body} ({sizes['body']:,} voxels, bbox {ref['bbox']}, merged from {partner}); "
          f"merged later: {other} ({sizes['other']:,} voxels); {args.repeats} repeats")
    print(f"{'step':44s} {'median ms':>10s} {'range ms':>16s}")
    rows = [
        (f"first mesh (plan + scale {runs[0]['coarse_scale']})", "first_mesh_s"),
        ("refined mesh (s0, after the coarse one)", "refined_mesh_s"),
        ("merge update (commit -> merged s0 mesh)", "merge_update_s"),
        ("merge call (ds.merge, every level)", "merge_call_s"),
    ]
    for name, key in rows:
        med, lo, hi = stat(key)
        print(f"{name:44s} {med:10.1f} {lo:7.1f} - {hi:6.1f}")
    print(f"{'reference: skimage, whole bbox at s0':44s} {ref['skimage_whole_s'] * 1000:10.1f}")
    print(f"{'reference: zmesh, whole bbox at s0':44s} {ref['zmesh_whole_s'] * 1000:10.1f}")
    r = runs[0]
    print(f"triangles: coarse {r['triangles_coarse']:,}, s0 {r['triangles_s0']:,} "
          f"(whole-bbox reference {ref['triangles_whole']:,}), merged {r['triangles_merged']:,}; "
          f"merge re-meshed {r['merge_blocks_remeshed']} of {r['merge_blocks']} s0 blocks")
    if args.json:
        args.json.write_text(json.dumps({"body": body, "partner": partner, "other": other,
                                         "sizes": sizes, "reference": ref, "runs": runs},
                                        indent=2))


if __name__ == "__main__":
    main()
