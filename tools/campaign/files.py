"""The ``files`` cases: files that are not (good) pyramids where the dataset should be."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .bases import Facts
from .harness import Run
from .kinds import Case, cli


def file_cases(facts: Facts) -> Iterator[Case]:
    """Files that are not (good) pyramids: every command refuses them, changing nothing."""
    cat = "files"
    lf = facts.lf
    t, v = lf.pairs[3]
    kinds: dict[str, Callable[[Run], None]] = {
        "missing": _nothing,
        "folder": _written(None),
        "empty": _written(b""),
        "text": _written(b"labels\n" * 100),
        "zeros": _written(b"\0" * 1_000_000),
        "npy": _written(NPY_HEADER + b"\0" * 64),
        "truncated-half": _copy_truncated(facts.bare, 0.5),
        "truncated-head": _copy_truncated(facts.bare, 1024),
        "plain-h5": _plain_h5,
        "float32-labels": _relabelled(facts.bare, np.float32),
        "int8-labels": _relabelled(facts.bare, np.int8),
        "no-s0": _edited_h5(facts.bare, _drop_s0),
        "future-version": _edited_h5(facts.bare, _set_attr("format_version", 999)),
        "block-size-zero": _edited_h5(facts.bare, _set_attr("block_size", [0, 0, 0])),
        "max-label-negative": _edited_h5(facts.bare, _set_attr("max_label", -5)),
        "s1-wrong-shape": _edited_h5(facts.bare, _shrink_s1),
        "journal-garbage": _garbage_journal,
        "journal-other-dataset": _foreign_journal,
    }
    commands = {
        "info": ["info", "{f}"],
        "verify": ["verify", "{f}"],
        "merge": ["merge", "{f}", str(t), str(v)],
    }
    readable = {
        "float32-labels",
        "int8-labels",
        "block-size-zero",
        "s1-wrong-shape",
        "journal-garbage",
        "journal-other-dataset",
    }
    for kind, setup in kinds.items():
        for cmd, argv in commands.items():
            tolerable = kind == "max-label-negative" or (cmd != "merge" and kind in readable)
            yield cli(
                cat,
                f"{kind}-{cmd}",
                argv,
                base=None,
                setup=setup,
                expect="any" if tolerable else "refused",
                ok_rc=(0, 1) if tolerable and cmd == "verify" else (0,),
            )
    for kind in ("float32-labels", "int8-labels", "truncated-half"):
        yield cli(
            cat,
            f"{kind}-split-coarse",
            ["split-coarse", "{f}", "1", "--block", "0,0,0"],
            base=None,
            setup=kinds[kind],
        )
        yield cli(cat, f"{kind}-reindex", ["reindex", "{f}"], base=None, setup=kinds[kind])
        yield cli(cat, f"{kind}-log", ["log", "{f}"], base=None, setup=kinds[kind], expect="any")
    yield cli(cat, "fifo-info", ["info", "{f}"], base=None, setup=_fifo, timeout=30)


NPY_HEADER = b"\x93NUMPY\x01\x00v\x00{'descr': '<u8', 'fortran_order': False, 'shape': (2, 2, 2), }"


def _nothing(r: Run) -> None:
    """The dataset is missing."""


def _fifo(r: Run) -> None:
    os.mkfifo(r.file)


def _written(data: bytes | None) -> Callable[[Run], None]:
    """A setup putting ``data`` (None: a folder) where the dataset should be."""

    def setup(r: Run) -> None:
        if data is None:
            r.file.mkdir()
        else:
            r.file.write_bytes(data)

    return setup


def _copy_truncated(src: Path, keep: float) -> Callable[[Run], None]:
    def setup(r: Run) -> None:
        data = src.read_bytes()
        r.file.write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])

    return setup


def _plain_h5(r: Run) -> None:
    with h5py.File(r.file, "w") as f:
        f["volume"] = np.arange(64, dtype=np.uint64).reshape(4, 4, 4)


def _edited_h5(src: Path, edit: Callable[[h5py.File], None]) -> Callable[[Run], None]:
    def setup(r: Run) -> None:
        shutil.copy2(src, r.file)
        with h5py.File(r.file, "r+") as f:
            edit(f)

    return setup


def _relabelled(src: Path, dtype: type[np.generic]) -> Callable[[Run], None]:
    """A copy of ``src`` whose label levels are rewritten as ``dtype`` (attributes kept)."""

    def edit(f: h5py.File) -> None:
        for name in list(f["labels"]):
            old = f[f"labels/{name}"]
            data, chunks = old[...], old.chunks
            del f[f"labels/{name}"]
            f.create_dataset(f"labels/{name}", data=(data % 100).astype(dtype), chunks=chunks)

    return _edited_h5(src, edit)


def _drop_s0(f: h5py.File) -> None:
    del f["labels/s0"]


def _set_attr(name: str, value: Any) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f.attrs[name] = value

    return edit


def _shrink_s1(f: h5py.File) -> None:
    data = f["labels/s1"][...]
    del f["labels/s1"]
    f["labels/s1"] = data[:-1]


def _garbage_journal(r: Run) -> None:
    shutil.copy2(r.facts.bare, r.file)
    side = Path(f"{r.file}.segmend")
    side.mkdir()
    (side / "journal.sqlite").write_bytes(b"SQLite format 3\0" + b"\xff" * 5000)


def _foreign_journal(r: Run) -> None:
    """The cube's pyramid beside the journal of the small crop (another dataset)."""
    shutil.copy2(r.facts.bare, r.file)
    shutil.copytree(
        f"{r.facts.small}.segmend", f"{r.file}.segmend", ignore=shutil.ignore_patterns("*.lock")
    )
