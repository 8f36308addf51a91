"""Bulk jobs on Dask distributed vs the threaded build, and the HDF5 single writer's ceiling.

Usage: python benchmarks/bench_dask.py [--size 512] [--repeats 2]

1. ``build`` of a ``size``³ uint64 supervoxel volume (.npy): threaded (one
   thread per core), ``--workers 2`` (a LocalCluster of 2 processes, started
   and stopped inside the timing, as the command does), the same cluster
   already running (its workers warm), and ``--scheduler`` against a
   ``dask scheduler`` and two ``dask worker`` processes started beforehand.
   Ratios against the threaded build, in one run.
2. The ceiling of an HDF5 output's single writer: raw ``write_direct_chunk``
   of the build's own compressed chunks (GB/s of compressed data, and Gvox/s
   of labels at their compression ratio).
3. The per-task numbers for the README's teravoxel model: bytes read and
   written per stage-0 task, and a worker's throughput.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np

from app.model.bulk.build import build_pyramid, check_task_blocks
from app.model.bulk.cluster import Cluster
from benchmarks.bench_build import best_of
from benchmarks.synthetic import voronoi_labels


def start_cluster(tmp: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """A scheduler and two single-threaded workers, as separate processes."""
    info = tmp / "scheduler.json"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
        stderr=subprocess.DEVNULL,
    )]
    procs += [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(info),
         "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
        stderr=subprocess.DEVNULL,
    ) for _ in range(2)]
    from distributed import Client

    with Client(scheduler_file=str(info), timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
        return client.scheduler.address, procs


def writer_ceiling(pyramid: Path, out: Path, repeats: int) -> tuple[float, float, float]:
    """Seconds to write every s0 chunk of ``pyramid`` raw into a new file, the
    compressed bytes, and the voxels."""
    with h5py.File(pyramid, "r") as f:
        dset = f["labels/s0"]
        chunks = [
            (info.chunk_offset, dset.id.read_direct_chunk(info.chunk_offset)[1])
            for info in (dset.id.get_chunk_info(i) for i in range(dset.id.get_num_chunks()))
        ]
        shape, dtype, chunk_shape = dset.shape, dset.dtype, dset.chunks
        filters = dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.NOSHUFFLE))

    def write() -> None:
        with h5py.File(out, "w") as g:
            target = g.create_dataset("s0", shape=shape, dtype=dtype, chunks=chunk_shape,
                                      **filters)
            for offset, payload in chunks:
                target.id.write_direct_chunk(offset, payload)

    seconds = best_of(write, repeats)
    return seconds, float(sum(len(p) for _, p in chunks)), float(np.prod(shape))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    shape = (args.size,) * 3
    voxels = float(np.prod(shape))
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        src = tmpdir / "src.npy"
        np.save(src, voronoi_labels(shape, n_seeds=20000, seed=1))
        runs: dict[str, float] = {}
        runs["threaded (2 threads)"] = best_of(
            lambda: build_pyramid(src, tmpdir / "threaded.h5"), args.repeats)
        runs["--workers 2 (LocalCluster, incl. start/stop)"] = best_of(
            lambda: build_pyramid(src, tmpdir / "workers.h5", cluster=Cluster(workers=2)),
            args.repeats)
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address="127.0.0.1:0") as local:
            warm = Cluster(scheduler=local.scheduler_address)
            build_pyramid(src, tmpdir / "warm.h5", cluster=warm)  # (loads the kernels)
            runs["LocalCluster of 2 already running"] = best_of(
                lambda: build_pyramid(src, tmpdir / "warm.h5", cluster=warm), args.repeats)
        address, procs = start_cluster(tmpdir)
        try:
            build_pyramid(src, tmpdir / "sched.h5", cluster=Cluster(scheduler=address))
            runs["--scheduler (2 dask worker processes)"] = best_of(
                lambda: build_pyramid(src, tmpdir / "sched.h5", cluster=Cluster(scheduler=address)),
                args.repeats)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
        base = runs["threaded (2 threads)"]
        print(f"## build of a {args.size}³ uint64 supervoxel volume (64³ blocks)\n")
        print("| run | time | Mvox/s | vs threaded |")
        print("|---|---|---|---|")
        for name, seconds in runs.items():
            print(f"| {name} | {seconds:.2f} s | {voxels / seconds / 1e6:.0f} | "
                  f"{base / seconds:.2f}× |")

        seconds, compressed, n = writer_ceiling(tmpdir / "threaded.h5", tmpdir / "raw.h5",
                                                args.repeats)
        print("\n## the HDF5 output's single writer (write_direct_chunk of s0's chunks)\n")
        print(f"{compressed / 1e6:.0f} MB compressed ({n * 8 / compressed:.0f}:1) in "
              f"{seconds:.3f} s: {compressed / seconds / 1e9:.2f} GB/s compressed, "
              f"{n / seconds / 1e9:.1f} Gvox/s of labels")

        edge = check_task_blocks(None, (64, 64, 64)) * 64
        box = float(edge**3)
        ratio = n * 8 / compressed
        per_worker = voxels / runs["--scheduler (2 dask worker processes)"] / 2
        print(f"\n## per stage-0 task (box {edge}³)\n\nreads {box * 8 / 1e6:.0f} MB of uint64, "
              f"writes ~{box * 8 * 8 / 7 / ratio / 1e6:.1f} MB compressed (all its levels); "
              f"one worker: {per_worker / 1e6:.0f} Mvox/s")


if __name__ == "__main__":
    main()
