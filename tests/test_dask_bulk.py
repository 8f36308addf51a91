"""Bulk jobs on Dask distributed: build, verify and reindex on a local cluster
of worker processes and on a scheduler and workers started as separate
processes; bit-identical to the threaded path, a killed worker costs nothing,
a cancelled or failed job leaves nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - registers the Blosc filter, as any reader of the file does
import numpy as np
import pytest
from numpy.typing import NDArray

from app.model.bulk import box_tree
from app.model.bulk.build import build_pyramid
from app.model.bulk.cluster import Cluster
from app.model.dataset import open_dataset
from app.model.errors import CancelledError, SegmendError
from app.model.journal.journal_db import connect
from app.model.journal.sidecar import journal_path

HERE = Path(__file__).parent


def segmend(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=HERE.parent
    )


def levels_of(path: Path) -> dict[str, NDArray[np.generic]]:
    with h5py.File(path, "r", locking=False) as f:
        out = {f"{g}/{k}": f[g][k][...] for g in ("labels", "image") if g in f for k in f[g]}
        out["max_label"] = np.asarray(f.attrs["max_label"])
        return out


def assert_same_levels(a: Path, b: Path) -> None:
    la, lb = levels_of(a), levels_of(b)
    assert la.keys() == lb.keys()
    for name in la:
        assert la[name].dtype == lb[name].dtype and np.array_equal(la[name], lb[name]), name


@pytest.fixture
def odd_sources(tmp_path: Path, real_labels: NDArray[np.uint64], real_image: NDArray[np.uint8]
                ) -> tuple[str, str]:
    """The real crop (37, 70, 101), as uint32 labels and its grayscale."""
    np.save(tmp_path / "labels.npy", real_labels.astype(np.uint32))
    np.save(tmp_path / "image.npy", real_image)
    return str(tmp_path / "labels.npy"), str(tmp_path / "image.npy")


@pytest.mark.parametrize("rule", ["labelmap", "labelblk"])
@pytest.mark.parametrize(("block_size", "task_blocks"), [((8, 8, 8), 2), ((6, 10, 4), 4)],
                         ids=["8-2", "6x10x4-4"])
def test_a_build_on_worker_processes_equals_the_threaded_build(
    tmp_path: Path, odd_sources: tuple[str, str], rule: str, block_size: tuple[int, int, int],
    task_blocks: int,
) -> None:
    """Stages of one level (task boxes of 2³ blocks) and of two (4³)."""
    labels, image = odd_sources
    kw = dict(image=image, block_size=block_size, rule=rule)
    threaded = build_pyramid(labels, tmp_path / "threaded.h5", **kw)  # type: ignore[arg-type]
    ticks: list[tuple[int, int]] = []
    on_cluster = build_pyramid(
        labels, tmp_path / "cluster.h5", cluster=Cluster(workers=2), task_blocks=task_blocks,
        progress=lambda done, total: ticks.append((done, total)), **kw,  # type: ignore[arg-type]
    )
    assert_same_levels(threaded, on_cluster)
    assert ticks[-1][0] == ticks[-1][1] > 4  # (several stages of several tasks)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["cluster.h5", "threaded.h5", "labels.npy", "image.npy"]
    )


@pytest.fixture
def built(tmp_path: Path, odd_sources: tuple[str, str]) -> Path:
    return build_pyramid(odd_sources[0], tmp_path / "p.h5", image=odd_sources[1],
                         block_size=(8, 8, 8))


def test_verify_on_a_cluster_finds_the_same_first_differences(built: Path) -> None:
    with h5py.File(built, "r+", locking=False) as f:
        f["labels/s1"][3, 4, 5] = 123456
        f["labels/s2"][5:9, 2, 7] = 99
        f["image/s1"][10, 10, 10] ^= 0xFF
    local = segmend("verify", str(built), "--json")
    remote = segmend("verify", str(built), "--json", "--workers", "2")
    assert local.returncode == remote.returncode == 1, remote.stderr
    found = json.loads(remote.stdout)
    assert found == json.loads(local.stdout)
    assert found["mismatched_blocks"] >= 3 and not found["ok"]


def test_reindex_on_a_cluster_builds_the_index_the_threads_build(
    built: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.h5"
    copy.write_bytes(built.read_bytes())
    assert segmend("reindex", str(built)).returncode == 0
    run = segmend("reindex", str(copy), "--workers", "2", "--json")
    assert run.returncode == 0, run.stderr
    rows = index_rows(built)
    assert rows == index_rows(copy)
    assert json.loads(run.stdout)["labels"] == len({r[0] for r in rows}) > 50
    with open_dataset(copy, "r") as ds:
        assert ds.verify(cluster=Cluster(workers=2)).ok


def index_rows(path: Path) -> list[tuple[int, ...]]:
    conn = connect(journal_path(path), readonly=True)
    try:
        return conn.execute("SELECT * FROM label_index ORDER BY z, y, x, label").fetchall()
    finally:
        conn.close()


def test_verify_on_a_cluster_refuses_a_file_behind_its_journal(built: Path) -> None:
    with open_dataset(built, "r+", checkpoint_interval=3600.0) as writer:
        a, b = (int(v) for v in np.unique(writer.labels(0)[...])[1:3])
        writer.merge(a, [b])
        run = segmend("verify", str(built), "--workers", "2")
        assert run.returncode == 1
        assert run.stderr.count("\n") == 1 and "1 edits behind" in run.stderr
        assert "without --workers" in run.stderr


def test_a_cancelled_build_leaves_nothing(tmp_path: Path, odd_sources: tuple[str, str]) -> None:
    cancel = threading.Event()
    with pytest.raises(CancelledError):
        build_pyramid(odd_sources[0], tmp_path / "out.h5", block_size=(8, 8, 8),
                      cluster=Cluster(workers=2), task_blocks=2, cancel=cancel,
                      progress=lambda done, total: cancel.set())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.npy", "labels.npy"]


def test_a_failing_task_is_retried_then_named(
    tmp_path: Path, odd_sources: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """(An in-process cluster, whose worker threads see the patched kernel.)"""
    calls: list[tuple[int, ...]] = []
    real = box_tree._downsample

    def failing(plan: box_tree.TreePlan, arr: NDArray[np.uint64]) -> NDArray[np.uint64]:
        if arr.shape == (16, 16, 16) and plan.kind == "labels":
            calls.append(arr.shape)
            raise RuntimeError("simulated fault")
        return real(plan, arr)

    monkeypatch.setattr(box_tree, "_downsample", failing)
    with pytest.raises(SegmendError) as info:
        build_pyramid(odd_sources[0], tmp_path / "out.h5", block_size=(8, 8, 8),
                      cluster=Cluster(threads=2), task_blocks=2)
    text = str(info.value)
    assert re.fullmatch(
        r"the task for labels/s\d voxels \(\d+, \d+, \d+\)\.\.\(\d+, \d+, \d+\) \(box "
        r"\(\d+, \d+, \d+\) of stage \d\) failed 3 times; last error: RuntimeError: "
        r"simulated fault", text), text
    assert len(calls) >= 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.npy", "labels.npy"]


def test_negative_labels_read_by_a_worker_are_refused_in_one_line(tmp_path: Path) -> None:
    vol = np.ones((20, 20, 20), np.int32)
    vol[17, 3, 3] = -4
    np.save(tmp_path / "neg.npy", vol)
    run = segmend("build", str(tmp_path / "neg.npy"), str(tmp_path / "out.h5"),
                  "--block-size", "8", "--workers", "2")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "segmend: error: labels must be non-negative; found -4 in plane z=17"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neg.npy"]


# ------------------------------------------------ a cluster started by hand
@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, as
    someone starts them on their machines; yields the address and the workers."""
    info = tmp_path / "scheduler.json"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )]
    workers = []
    try:
        for _ in range(2):
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                 str(info), "--nthreads", "1", "--no-nanny", "--no-dashboard",
                 "--host", "127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=HERE.parent,
            ))
        procs += workers
        from distributed import Client

        with Client(scheduler_file=str(info), timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
        yield address, workers
    finally:
        for proc in reversed(procs):  # the workers first: they say goodbye to the scheduler
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:  # a worker still waiting for a lost scheduler
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_a_build_through_a_scheduler_survives_a_killed_worker(
    tmp_path: Path, odd_sources: tuple[str, str],
    scheduler: tuple[str, list[subprocess.Popen[bytes]]],
) -> None:
    address, workers = scheduler
    labels, image = odd_sources
    threaded = build_pyramid(labels, tmp_path / "threaded.h5", image=image, block_size=(8, 8, 8))
    run = segmend("build", labels, str(tmp_path / "cli.h5"), "--image", image,
                  "--block-size", "8", "--scheduler", address)
    assert run.returncode == 0, run.stderr
    assert_same_levels(threaded, tmp_path / "cli.h5")

    killed: list[int] = []

    def kill_one_worker(done: int, total: int) -> None:
        if not killed:
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(done)

    survived = build_pyramid(labels, tmp_path / "killed.h5", image=image, block_size=(8, 8, 8),
                             cluster=Cluster(scheduler=address), task_blocks=2,
                             progress=kill_one_worker)
    assert killed and workers[0].wait(30) == -signal.SIGKILL
    assert_same_levels(threaded, survived)


def test_an_unreachable_scheduler_is_one_line(tmp_path: Path, odd_sources: tuple[str, str]
                                              ) -> None:
    run = segmend("build", odd_sources[0], str(tmp_path / "out.h5"),
                  "--scheduler", "tcp://127.0.0.1:9")
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in run.stderr
    assert not (tmp_path / "out.h5").exists()


# ------------------------------------------------------------ OME-Zarr output
@pytest.mark.parametrize("rule", ["labelmap", "labelblk"])
@pytest.mark.parametrize("cluster", [Cluster(threads=2), Cluster(workers=2)],
                         ids=["threads", "workers"])
def test_a_zarr_build_equals_the_hdf5_build(
    tmp_path: Path, odd_sources: tuple[str, str], rule: str, cluster: Cluster
) -> None:
    """Each task writes its own shards (one writer per shard); every level of
    the OME-Zarr equals the HDF5 build's."""
    import zarr

    labels, image = odd_sources
    kw = dict(image=image, block_size=(6, 10, 4), rule=rule)
    h5 = levels_of(build_pyramid(labels, tmp_path / "p.h5", **kw))  # type: ignore[arg-type]
    out = build_pyramid(labels, tmp_path / "p.zarr", cluster=cluster, task_blocks=2,
                        **kw)  # type: ignore[arg-type]
    group = zarr.open_group(out, mode="r")
    info = json.loads(segmend("info", str(out), "--json").stdout)
    assert info["downres_rule"] == rule and info["max_label"] == int(h5["max_label"])
    assert segmend("verify", str(out)).returncode == 0  # (by the rule it was built with)
    scales = [k for k in h5 if k.startswith("labels/")]
    assert len(scales) >= 4
    for name in scales:
        k = name.removeprefix("labels/s")
        assert np.array_equal(group[f"labels/segmentation/{k}"][...], h5[name]), name
        assert np.array_equal(group[k][...], h5[f"image/s{k}"]), k
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["p.h5", "p.zarr", "labels.npy", "image.npy"]
    )


@pytest.mark.parametrize("cluster", [Cluster(threads=2), Cluster(workers=2)],
                         ids=["threads", "workers"])
def test_a_cancelled_zarr_build_leaves_nothing(
    tmp_path: Path, odd_sources: tuple[str, str], cluster: Cluster
) -> None:
    """Tasks already running when the build is cancelled finish writing their
    shards before the partial folder is removed."""
    cancel = threading.Event()
    with pytest.raises(CancelledError):
        build_pyramid(odd_sources[0], tmp_path / "out.zarr", block_size=(8, 8, 8),
                      task_blocks=2, cancel=cancel, cluster=cluster,
                      progress=lambda done, total: cancel.set())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.npy", "labels.npy"]
