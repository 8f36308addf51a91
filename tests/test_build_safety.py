"""``build`` never clobbers a pyramid being written or edited, and never litters:
partial files of killed builds are removed, a full disk leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.cli import main
from app.model.bulk.build import build_pyramid
from app.model.bulk.output import EditedOutputError
from app.model.bulk.partials import hold_partial, partial_path, remove_stale_partials
from app.model.dataset import open_dataset
from app.model.errors import WriterLockedError
from app.model.journal.sidecar import journal_path, sidecar_dir
from tests.conftest import biggest, fill_disk

REPO = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def listing(folder: Path) -> list[tuple[str, int]]:
    """Every file under ``folder`` (hidden ones too) with its size."""
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*"))


def s0_of(path: Path) -> NDArray[np.uint64]:
    with h5py.File(path, "r", locking=False) as f:
        return np.asarray(f["labels/s0"][...])


# ------------------------------------------------------------- item 2: a live writer


def test_build_refuses_an_out_that_a_live_writer_holds_even_with_force(
    small_pyramid: Path,
    real_sources: tuple[str, str],
    real_labels: NDArray[np.uint64],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    labels, _image = real_sources
    link = tmp_path / "link.h5"
    link.symlink_to(small_pyramid)
    a, b = biggest(real_labels, 2)
    ds = open_dataset(small_pyramid, "r+")
    try:
        before = listing(tmp_path)
        for out, force in [(small_pyramid, []), (small_pyramid, ["--force"]), (link, ["--force"])]:
            code, text, err = run(capsys, "build", labels, out, "--block-size", "16", *force)
            assert code == 1 and text == ""
            assert err.count("\n") == 1 and err.startswith("segmend: error: ")
            assert f"is open for writing by pid {os.getpid()}" in err
            assert listing(tmp_path) == before
        with pytest.raises(WriterLockedError):
            build_pyramid(labels, small_pyramid, block_size=(16, 16, 16), discard_journal=True)
        assert ds.merge(a, [b]) == 1
        assert ds.merge(a, [biggest(real_labels, 3)[2]]) == 2
    finally:
        ds.close()
    s0 = s0_of(small_pyramid)
    assert not np.isin(s0, biggest(real_labels, 3)[1:]).any()
    assert (s0 == a).sum() == np.isin(real_labels, biggest(real_labels, 3)).sum()
    with open_dataset(small_pyramid, "r") as reader:
        assert reader.verify().ok


def test_build_refuses_an_edited_out_unless_force_which_deletes_its_journal(
    small_pyramid: Path,
    real_sources: tuple[str, str],
    real_labels: NDArray[np.uint64],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    labels, _image = real_sources
    a, b = biggest(real_labels, 2)
    with open_dataset(small_pyramid, "r+") as ds:
        ds.merge(a, [b])
    journal = journal_path(small_pyramid)
    assert journal.exists()
    before = listing(tmp_path)
    code, text, err = run(capsys, "build", labels, small_pyramid, "--block-size", "16")
    assert code == 1 and text == ""
    assert err.count("\n") == 1 and err.startswith("segmend: error: ")
    assert "edited pyramid" in err and str(journal) in err and "--force" in err
    assert listing(tmp_path) == before
    with pytest.raises(EditedOutputError):
        build_pyramid(labels, small_pyramid, block_size=(16, 16, 16))
    assert listing(tmp_path) == before

    code, text, err = run(capsys, "build", labels, small_pyramid, "--block-size", "16", "--force")
    assert code == 0 and text.startswith("file:")
    assert err == f"segmend: deleted the journal of the replaced pyramid ({journal})\n"
    assert not sidecar_dir(small_pyramid).exists()
    assert np.array_equal(s0_of(small_pyramid), real_labels)
    with open_dataset(small_pyramid, "r+") as ds:
        assert ds.merge(a, [b]) == 1  # a fresh journal, no "belongs to dataset" error


def test_an_unedited_out_is_replaced_without_force(
    small_pyramid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vol = np.arange(6 * 8 * 10, dtype=np.uint16).reshape(6, 8, 10)
    np.save(tmp_path / "v.npy", vol)
    code, _text, err = run(capsys, "build", tmp_path / "v.npy", small_pyramid, "--block-size", "4")
    assert code == 0 and err == ""
    assert np.array_equal(s0_of(small_pyramid), vol)


# ------------------------------------------------------------- item 10: partial files

_BLOCKED_BUILD = """
import sys
from app.model.bulk.build import build_pyramid

def progress(done, total):
    print("building", flush=True)
    sys.stdin.read()  # blocks until the test kills this process

build_pyramid(sys.argv[1], sys.argv[2], block_size=(16, 16, 16), workers=1, progress=progress)
"""


def test_a_killed_build_leaves_a_partial_that_the_next_build_removes(
    real_sources: tuple[str, str], real_labels: NDArray[np.uint64], tmp_path: Path
) -> None:
    labels, _image = real_sources
    out = tmp_path / "out.h5"
    proc = subprocess.Popen(
        [sys.executable, "-c", _BLOCKED_BUILD, labels, str(out)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        assert proc.stdout.readline() == "building\n"
        partial = partial_path(out, proc.pid)
        assert partial.exists()
        assert remove_stale_partials(out) == []  # never one of a live build
        assert partial.exists()
        proc.send_signal(signal.SIGKILL)
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped
        assert partial.exists() and not out.exists()
        build_pyramid(labels, out, block_size=(16, 16, 16))
        assert not partial.exists()
    finally:
        proc.kill()
        proc.stdin.close()
        proc.stdout.close()
        proc.wait()
    assert np.array_equal(s0_of(out), real_labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def test_remove_stale_partials_keeps_live_builds_and_other_files(tmp_path: Path) -> None:
    out = tmp_path / "v.h5"
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()  # its id names no process now
    names = {
        f".v.h5.partial-{child.pid}": False,  # dead build: removed
        f".v.h5.partial-{os.getpid()}": True,  # live build
        f".v.h5.partial-{2**80}": False,  # no such process
        ".v.h5.partial-abc": True,  # not a partial of a build
        f".w.h5.partial-{child.pid}": True,  # another file's
        "v.h5": True,
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    link = tmp_path / "sub" / "link.h5"
    link.parent.mkdir()
    link.symlink_to(out)  # partials sit beside the real file
    removed = remove_stale_partials(link)
    assert removed == [tmp_path / n for n, keep in sorted(names.items()) if not keep]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(
        n for n, keep in names.items() if keep
    )


def test_a_partial_a_build_holds_is_kept_whatever_its_process_id(tmp_path: Path) -> None:
    """A build on another machine of a shared folder: its process id means
    nothing here, its lock on the partial does."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()  # its id names no process here
    partial = partial_path(tmp_path / "v.h5", child.pid)
    held = hold_partial(partial)
    try:
        assert remove_stale_partials(tmp_path / "v.h5") == []
    finally:
        os.close(held)
    assert remove_stale_partials(tmp_path / "v.h5") == [partial]


@pytest.mark.parametrize("when", ["during the build", "from the start"])
def test_a_build_on_a_full_disk_fails_in_one_line_and_leaves_nothing(
    small_disk: Path,
    cube_path: Path,
    real_sources: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    when: str,
) -> None:
    labels, _image = real_sources
    out = small_disk / "out.h5"
    build_pyramid(labels, out, block_size=(16, 16, 16))
    before = out.read_bytes()
    if when == "during the build":
        src = f"{cube_path}:/automated/bodies"  # 125 MB uncompressed: far more than the disk
        args = ["--compression", "none"]
        expected = ["out.h5"]
    else:
        src, args = labels, []
        expected = ["filler.bin", "out.h5"]
        fill_disk(small_disk)
    code, text, err = run(capsys, "build", src, out, *args)
    assert code == 1 and text == ""
    assert err == f"segmend: error: cannot build {out}: No space left on device\n"
    assert sorted(p.name for p in small_disk.iterdir()) == expected
    assert out.read_bytes() == before
