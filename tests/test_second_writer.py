"""A second writer is refused by every name of the file: a symlink, a hard link,
a relative or an absolute spelling; the first writer's edits all stay."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.model.dataset import open_dataset

ROOT = Path(__file__).parent.parent


def other_names(path: Path) -> list[tuple[str, Path]]:
    """A symlink, a hard link in another folder, a relative and a roundabout spelling."""
    link = path.with_name("link.h5")
    link.symlink_to(path)
    (path.parent / "elsewhere").mkdir()
    hard = path.parent / "elsewhere" / "hard.h5"
    os.link(path, hard)
    return [
        ("symlink", link),
        ("hard link", hard),
        ("relative", Path(os.path.relpath(path, ROOT))),
        ("roundabout", path.parent / "elsewhere" / ".." / path.name),
    ]


def test_no_second_writer_by_any_name(small_pyramid: Path) -> None:
    names = other_names(small_pyramid)
    with open_dataset(small_pyramid, "r+") as ds:
        a, b, c = (int(v) for v in np.unique(ds.labels(0)[...])[1:4])
        first = ds.merge(a, [b])
        for kind, name in names:
            run = subprocess.run(
                [sys.executable, "-m", "app",
                 "merge", str(name), str(a), str(c)],
                capture_output=True, text=True, cwd=ROOT,
            )
            assert run.returncode == 1, (kind, run.stdout)
            assert run.stdout == ""
            lines = run.stderr.splitlines()
            assert len(lines) == 1 and "is open for writing by" in lines[0], (kind, lines)
        second = ds.merge(a, [c])
    assert second == first + 1
    with open_dataset(small_pyramid, "r") as ds:
        assert [m["MutationID"] for m in ds.mutations()] == [first, second]
        s0 = ds.labels(0)[...]
        assert not np.isin(s0, [b, c]).any()


@pytest.mark.parametrize("kind", ["symlink", "hard link", "relative", "roundabout"])
def test_the_api_refuses_a_second_writer_by_any_name(small_pyramid: Path, kind: str) -> None:
    name = dict(other_names(small_pyramid))[kind]
    with open_dataset(small_pyramid, "r+"):
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            with pytest.raises(Exception, match="is open for writing by") as refused:
                open_dataset(name, "r+")
        finally:
            os.chdir(cwd)
        assert type(refused.value).__name__ == "WriterLockedError"


def test_a_killed_writers_edits_are_not_lost_through_a_hard_link(
    small_pyramid: Path,
) -> None:
    """The writer of one name dies with edits the file lacks; a writer through
    another name (a hard link) is refused: a new journal there would reuse the
    MutationIDs and the first name's edits would be lost."""
    from app.model.journal.sidecar import sidecar_dir
    from tests.test_file_catches_up import kill_writer_after

    names = dict(other_names(small_pyramid))
    acked = kill_writer_after(small_pyramid, 5)
    hard = names["hard link"]
    with pytest.raises(Exception, match="edited through another name") as refused:
        open_dataset(hard, "r+")
    assert type(refused.value).__name__ == "FormatError"
    assert not sidecar_dir(hard).exists()
    with open_dataset(small_pyramid, "r+") as ds:
        assert [m["MutationID"] for m in ds.mutations()][: len(acked)] == acked
