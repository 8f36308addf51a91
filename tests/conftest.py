"""Shared fixtures: real data from the shipped cube, and pyramids built from it."""

from __future__ import annotations

import ctypes
import errno
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.cli import main
from app.kernels import reference
from app.model.bulk.build import build_pyramid
from app.model.dataset import Dataset, open_dataset
from app.model.demo import demo_cube_path
from app.model.events import blobstore, outbox
from app.model.events.sender import OutboxSender, SenderStatus


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """``segmend ARGS`` in this process → (exit status, stdout, stderr); argparse's
    exits count too."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="session")
def cube_path() -> Path:
    """The real FIB-SEM cube shipped in resources/."""
    return demo_cube_path()


@pytest.fixture(scope="session")
def real_labels(cube_path: Path) -> NDArray[np.uint64]:
    """An odd-shaped crop (37, 70, 101) of the automated segmentation."""
    with h5py.File(cube_path, "r") as f:
        return f["automated/bodies"][100:137, 40:110, 20:121]


@pytest.fixture(scope="session")
def real_image(cube_path: Path) -> NDArray[np.uint8]:
    """The grayscale matching :func:`real_labels`."""
    with h5py.File(cube_path, "r") as f:
        return f["raw"][100:137, 40:110, 20:121]


@pytest.fixture(scope="session")
def real_sources(
    tmp_path_factory: pytest.TempPathFactory,
    real_labels: NDArray[np.uint64],
    real_image: NDArray[np.uint8],
) -> tuple[str, str]:
    """The crop written as plain HDF5 datasets: (labels spec, image spec)."""
    path = tmp_path_factory.mktemp("sources") / "plain.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("seg", data=real_labels, chunks=(16, 16, 16), compression="gzip")
        f.create_dataset("em", data=real_image)
    return f"{path}:/seg", f"{path}:/em"


@pytest.fixture(params=["labelmap", "labelblk"])
def rule(request: pytest.FixtureRequest) -> str:
    """Both downres rules."""
    return str(request.param)


@pytest.fixture
def small_pyramid(tmp_path: Path, real_sources: tuple[str, str], rule: str) -> Path:
    """The real crop built with 16³ blocks (several levels, partial edge blocks)."""
    labels, image = real_sources
    return build_pyramid(
        labels, tmp_path / "small.h5", image=image, block_size=(16, 16, 16), rule=rule
    )


@pytest.fixture
def ds(small_pyramid: Path) -> Iterator[Dataset]:
    """The small real pyramid open for editing, closed after the test."""
    dataset = open_dataset(small_pyramid, "r+", checkpoint_interval=0.2)
    yield dataset
    dataset.close()


@pytest.fixture
def model(real_labels: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """A plain NumPy copy of s0 that tests edit alongside the dataset."""
    return real_labels.copy()


def assert_matches_model(ds: Dataset, model: NDArray[np.uint64]) -> None:
    """s0 equals the model; every level equals a full recompute; the index equals a recount."""
    assert np.array_equal(ds.labels(0)[...], model)
    want = model
    for scale in range(1, ds.n_scales):
        want = reference.downsample_labels_ref(want, ds.store.rule)
        assert np.array_equal(ds.labels(scale)[...], want), f"scale {scale}"
    labels, counts = np.unique(model, return_counts=True)
    for label, count in zip(labels, counts, strict=True):
        if label:
            assert ds.label_size(int(label)) == count, f"label {label}"
    report = ds.verify()
    assert report.ok, report.as_json()


def connect_journal(path: Path) -> sqlite3.Connection:
    """A connection to a test journal, as the app opens it (WAL, waits for locks)."""
    conn = sqlite3.connect(path, timeout=10)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    """A journal holding only the outbox and blob tables."""
    path = tmp_path / "journal.sqlite"
    with connect_journal(path) as conn:
        outbox.create_outbox_schema(conn)
        blobstore.create_blob_schema(conn)
    return path


@pytest.fixture
def conn(journal: Path) -> Iterator[sqlite3.Connection]:
    c = connect_journal(journal)
    yield c
    c.close()


def status_event(
    sender: OutboxSender, predicate: Callable[[SenderStatus], bool]
) -> threading.Event:
    """An event set once the sender's status satisfies ``predicate`` (now, or when it changes)."""
    event = threading.Event()

    def slot(status: SenderStatus) -> None:
        if predicate(status):
            event.set()

    sender.status_changed.connect(slot)
    if predicate(sender.status()):
        event.set()
    return event


def biggest(model: NDArray[np.uint64], n: int) -> list[int]:
    """The ``n`` largest bodies of ``model``, largest first."""
    labels, counts = np.unique(model[model > 0], return_counts=True)
    return [int(v) for v in labels[np.argsort(-counts)][:n]]


SMALL_DISK_BYTES = 8 << 20
"""The size of the :func:`small_disk` file system."""
_MNT_DETACH = 2


def _libc_call(name: str, *args: object) -> int:
    """Call libc's ``name``; returns 0, or the errno of its failure."""
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) == 0:
        return 0
    return ctypes.get_errno()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a fresh 8 MiB tmpfs, unmounted after the test.

    Skipped only when mounting is not permitted (EPERM: not root, or no
    CAP_SYS_ADMIN in this container).
    """
    disk = tmp_path / "small-disk"
    disk.mkdir()
    options = f"size={SMALL_DISK_BYTES}".encode()
    err = _libc_call("mount", b"tmpfs", bytes(disk), b"tmpfs", 0, options)
    if err == errno.EPERM:
        pytest.skip("mounting a tmpfs is not permitted here (EPERM)")
    assert err == 0, f"mount tmpfs on {disk}: {os.strerror(err)}"
    try:
        yield disk
    finally:
        if _libc_call("umount2", bytes(disk), 0) != 0:
            assert _libc_call("umount2", bytes(disk), _MNT_DETACH) == 0, f"umount {disk}"


def fill_disk(path: Path, leave: int = 0) -> Path:
    """Write a filler file in the directory ``path`` leaving about ``leave`` bytes free.

    Returns the filler's path (delete it to give the space back).  With
    ``leave=0`` the file system is full: every later write fails with ENOSPC.
    """
    filler = path / "filler.bin"
    stat = os.statvfs(path)
    todo = max(0, stat.f_bavail * stat.f_frsize - leave)
    chunk = b"\xff" * (1 << 20)
    with filler.open("wb", buffering=0) as fh:
        try:
            while todo > 0:
                todo -= fh.write(chunk[: min(todo, len(chunk))])
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler
