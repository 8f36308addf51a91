"""The HDF5 file catches up with its journal by itself, and says when it cannot:
after a kill -9, any command on a dataset nobody writes (read-only ones too)
first writes the journaled edits into the file; beside a live writer, readers
say how far behind the file is and who writes it; a read-only folder reads."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - registers the Blosc filter, as any reader of the file does
import numpy as np
import pytest
from numpy.typing import NDArray

from app.model.bulk.build import build_pyramid
from app.model.dataset import open_dataset
from app.model.journal.journal_db import connect
from app.model.journal.sidecar import journal_path, rollback_path, sidecar_dir
from tests.conftest import _libc_call
from tests.test_durability import replay_model

HERE = Path(__file__).parent
MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096


def segmend(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line in a new process."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True, text=True, cwd=HERE.parent,
    )


def plain_s0(path: Path) -> tuple[NDArray[np.uint64], int]:
    """s0 and the checkpointed MutationID, as a plain h5py reader sees them."""
    with h5py.File(path, "r") as f:
        return f["labels/s0"][...], int(f.attrs["checkpoint_mutation_id"])


def journaled_ids(path: Path) -> list[int]:
    conn = connect(journal_path(path), readonly=True)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM mutations ORDER BY id")]
    finally:
        conn.close()


def log_lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    """``segmend log``: the mutation log with the RLEs of splits."""
    run = segmend("log", str(path))
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


@pytest.fixture
def base(tmp_path: Path, real_labels: NDArray[np.uint64]) -> Path:
    src = tmp_path / "seg.npy"
    np.save(src, real_labels)
    folder = tmp_path / "data"
    folder.mkdir()
    return build_pyramid(str(src), folder / "p.h5", block_size=(16, 16, 16))


def kill_writer_after(path: Path, acks: int, *, inside_a_commit: bool = False) -> list[int]:
    """Let a writer edit ``path`` (rarely checkpointing) and SIGKILL it after
    ``acks`` acknowledged edits — or, ``inside_a_commit``, inside the first
    checkpoint after them, once it has written part of the file; returns the
    acknowledged MutationIDs."""
    mode = str(acks) if inside_a_commit else "--steady"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "fault_writer.py"), str(path), "3", mode],
        stdout=subprocess.PIPE, text=True, cwd=HERE.parent,
    )
    assert proc.stdout is not None
    acked: list[int] = []
    for line in proc.stdout:
        if line.startswith("ACK"):
            acked.append(int(line.split()[1]))
        if line.startswith("TORN") if inside_a_commit else len(acked) == acks:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    return acked


def test_a_read_only_command_brings_the_file_up_to_date_after_a_kill(
    base: Path, real_labels: NDArray[np.uint64]
) -> None:
    acked = kill_writer_after(base, 40)
    journaled = journaled_ids(base)
    assert set(journaled) >= set(acked)
    assert plain_s0(base)[1] < journaled[-1]  # the file is behind
    run = segmend("verify", str(base), "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["ok"]
    s0, checkpointed = plain_s0(base)  # no writer session in between
    assert checkpointed == journaled[-1]
    assert np.array_equal(s0, replay_model(real_labels, log_lines(base)))
    info = json.loads(segmend("info", str(base), "--json").stdout)
    assert info["checkpointed_mutation"] == info["journaled_mutation"] == checkpointed
    assert info["file_note"] is None


def test_beside_a_live_writer_readers_say_how_far_behind_the_file_is(base: Path) -> None:
    with open_dataset(base, "r+", checkpoint_interval=3600.0) as writer:
        labels = np.unique(writer.labels(0)[...])[1:8]
        for label in labels[1:4]:
            writer.merge(int(labels[0]), [int(label)])
        info = json.loads(segmend("info", str(base), "--json").stdout)
        assert info["journaled_mutation"] - info["checkpointed_mutation"] == 3
        assert info["writer"].startswith("pid ")
        assert "3 edits behind" in info["file_note"] and info["writer"] in info["file_note"]
        with open_dataset(base, "r") as reader:  # sees the edits, in memory
            assert reader.label_size(int(labels[0])) == writer.label_size(int(labels[0]))
            assert reader.lag is not None and reader.lag.behind == 3


@pytest.fixture
def read_only_view(base: Path, tmp_path: Path) -> Iterator[Path]:
    """The dataset's folder mounted read-only elsewhere: the folder of a shared
    project that this user cannot write (root included)."""
    view = tmp_path / "view"
    view.mkdir()
    err = _libc_call("mount", bytes(base.parent), bytes(view), None, MS_BIND, None)
    if err == 1:  # EPERM
        pytest.skip("bind mounts are not permitted here (EPERM)")
    assert err == 0
    try:
        assert _libc_call("mount", None, bytes(view), None,
                          MS_BIND | MS_REMOUNT | MS_RDONLY, None) == 0
        yield view / base.name
    finally:
        assert _libc_call("umount2", bytes(view), 0) == 0


def test_a_read_only_folder_reads(base: Path, read_only_view: Path) -> None:
    with open_dataset(base, "r+") as ds:
        labels = np.unique(ds.labels(0)[...])[1:4]
        ds.merge(int(labels[0]), [int(labels[1])])
    before = sorted(p.name for p in sidecar_dir(base).iterdir())
    for command in ("info", "log", "verify"):
        run = segmend(command, str(read_only_view))
        assert run.returncode == 0, (command, run.stderr)
        assert run.stderr == ""
    assert sorted(p.name for p in sidecar_dir(base).iterdir()) == before


@pytest.mark.parametrize("inside_a_commit", [False, True], ids=["between", "inside-a-commit"])
def test_a_read_only_folder_behind_its_journal_reads_and_says_why(
    base: Path, read_only_view: Path, real_labels: NDArray[np.uint64], inside_a_commit: bool
) -> None:
    """A writer killed between checkpoints, or inside one (its file torn, its
    rollback file left): a read-only view reads the file as last committed,
    plus the journal, and says why it cannot repair it."""
    kill_writer_after(base, 20, inside_a_commit=inside_a_commit)
    assert rollback_path(base).exists() == inside_a_commit
    torn = base.read_bytes()
    log = log_lines(read_only_view)
    run = segmend("info", str(read_only_view), "--json")
    assert run.returncode == 0, run.stderr
    note = json.loads(run.stdout)["file_note"]
    assert "Read-only file system" in note
    assert ("mid-checkpoint" in note or "edits behind" in note) if inside_a_commit \
        else "edits behind" in note
    assert segmend("verify", str(read_only_view)).returncode == 0
    with open_dataset(read_only_view, "r") as ds:
        assert np.array_equal(ds.labels(0)[...], replay_model(real_labels, log))
    assert base.read_bytes() == torn


def test_a_reader_of_a_read_only_folder_follows_its_owner_writing(
    base: Path, read_only_view: Path
) -> None:
    """The owner edits through the real path while another user reads the
    folder read-only: the reader's journal (read as an immutable file at first)
    follows the owner's edits, its index and levels from one mutation."""
    with open_dataset(base, "r+") as ds:
        a, b, c = (int(v) for v in np.unique(ds.labels(0)[...])[1:4])
        ds.merge(a, [b])
    with open_dataset(read_only_view, "r") as reader:
        assert reader.mutation_count() == 1
        with open_dataset(base, "r+", checkpoint_interval=3600.0) as owner:
            owner.merge(a, [c])
            owner.checkpoint()  # (waits for the reader to let go of its state)
            with reader.snapshot():
                s0 = reader.labels(0)[...]
                assert reader.mutation_count() == 2
                assert reader.label_size(a) == int((s0 == a).sum())
                assert not np.isin(s0, [b, c]).any()
