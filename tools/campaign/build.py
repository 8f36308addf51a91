"""The ``build`` cases: ``segmend build`` and ``demo`` with bad sources, outputs
and options, labels up to 2^64-1, stale partial files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from .bases import CUBE, Facts
from .checks import built, check_all, label_in_s0, no_files, no_journal
from .harness import Run
from .kinds import BAD_INTS, U64, Case, cli, writes


def build_cases(facts: Facts) -> Iterator[Case]:
    """``segmend build`` and ``demo`` with bad sources, outputs and options."""
    cat = "build"
    crop = str(facts.crop_npy)
    out = "{d}/data/out.h5"

    def npy(name: str, array: NDArray[Any]) -> Callable[[Run], None]:
        def setup(r: Run) -> None:
            np.save(r.aux / name, array)

        return setup

    def h5(name: str, array: NDArray[Any]) -> Callable[[Run], None]:
        def setup(r: Run) -> None:
            with h5py.File(r.aux / name, "w") as f:
                f["v"] = array

        return setup

    yield cli(
        cat, "ok", ["build", crop, out, "--block-size", "32"], expect="ok", base=None, check=built()
    )
    yield cli(
        cat,
        "ok-levels-2",
        ["build", crop, out, "--levels", "2"],
        expect="ok",
        base=None,
        check=built(levels=2),
    )
    yield cli(
        cat,
        "ok-labelblk-gzip",
        [
            "build",
            crop,
            out,
            "--rule",
            "labelblk",
            "--compression",
            "gzip",
            "--block-size",
            "16,32,32",
        ],
        expect="ok",
        base=None,
        check=built(),
    )
    yield cli(
        cat,
        "levels-50",
        ["build", crop, out, "--levels", "50"],
        expect="any",
        base=None,
        check=built(),
    )
    for name in ("zero", "neg", "2^64", "nan"):
        yield cli(
            cat, f"levels-{name}", ["build", crop, out, "--levels", BAD_INTS[name]], base=None
        )
    for name, size in (
        ("zero", "0"),
        ("odd", "3"),
        ("neg", "-2"),
        ("2^64", str(U64)),
        ("word", "big"),
        ("empty", ""),
        ("two", "64,64"),
        ("float", "1e3"),
    ):
        yield cli(cat, f"block-size-{name}", ["build", crop, out, "--block-size", size], base=None)
    for name, size in (
        ("nan", "nan"),
        ("inf", "inf"),
        ("neg", "-1"),
        ("zero", "0"),
        ("two", "1,2"),
        ("empty", ""),
        ("nan-in-three", "1,nan,1"),
    ):
        yield cli(cat, f"voxel-size-{name}", ["build", crop, out, "--voxel-size", size], base=None)
    for name in ("zero", "neg", "2^64", "10^20"):
        yield cli(
            cat,
            f"workers-{name}",
            ["build", crop, out, "--workers", BAD_INTS[name]],
            base=None,
            expect="any",
            check=built(),
        )
    yield cli(cat, "compression-bogus", ["build", crop, out, "--compression", "zip"], base=None)
    yield cli(cat, "rule-bogus", ["build", crop, out, "--rule", "mode"], base=None)
    yield cli(cat, "src-missing", ["build", "{d}/aux/nope.npy", out], base=None)
    yield cli(cat, "src-missing-dataset", ["build", f"{CUBE}:/nope", out], base=None)
    yield cli(cat, "src-folder", ["build", "{d}/aux", out], base=None)
    yield cli(
        cat,
        "src-text",
        ["build", "{d}/aux/a.npy", out],
        base=None,
        setup=writes("a.npy", "not numpy\n"),
    )
    for name, array in (
        ("2d", np.ones((8, 8), np.uint64)),
        ("4d", np.ones((2, 4, 4, 4), np.uint64)),
        ("float", np.ones((8, 8, 8), np.float32)),
        ("empty", np.zeros((0, 8, 8), np.uint64)),
        ("complex", np.ones((8, 8, 8), np.complex64)),
        ("object", np.array([[[None]]], dtype=object)),
    ):
        yield cli(
            cat,
            f"src-npy-{name}",
            ["build", "{d}/aux/v.npy", out],
            base=None,
            setup=npy("v.npy", array),
        )
    yield cli(
        cat,
        "src-h5-float",
        ["build", "{d}/aux/v.h5:/v", out],
        base=None,
        setup=h5("v.h5", np.ones((8, 8, 8), np.float64)),
    )
    yield cli(
        cat,
        "src-npy-negative-int",
        ["build", "{d}/aux/v.npy", out],
        base=None,
        setup=npy("v.npy", np.full((8, 8, 8), -3, np.int64)),
        expect="any",
        check=built(),
    )
    top = np.zeros((16, 16, 16), np.uint64)
    top[:8] = U64 - 1
    top[8:, :8] = 7
    yield cli(
        cat,
        "label-2^64-1",
        ["build", "{d}/aux/v.npy", out],
        base=None,
        expect="ok",
        setup=npy("v.npy", top),
        check=built(max_label=U64 - 1),
    )
    yield cli(
        cat, "label-2^64-1-nextlabel", ["nextlabel", "{f}"], base=None, setup=_built_from(top)
    )
    yield cli(
        cat,
        "label-2^64-1-merge",
        ["merge", "{f}", str(U64 - 1), "7"],
        base=None,
        expect="ok",
        setup=_built_from(top),
        check=label_in_s0(7, present=False),
    )
    yield cli(
        cat,
        "label-2^64-1-split-coarse",
        ["split-coarse", "{f}", str(U64 - 1), "--block", "0,0,0"],
        base=None,
        setup=_built_from(top),
    )
    half = np.where(top == U64 - 1, np.uint64(2**63), top)
    yield cli(
        cat,
        "label-2^63-merge",
        ["merge", "{f}", str(2**63), "7"],
        base=None,
        expect="ok",
        setup=_built_from(half),
        check=label_in_s0(7, present=False),
    )
    yield cli(cat, "image-missing", ["build", crop, out, "--image", "{d}/aux/nope.npy"], base=None)
    yield cli(
        cat, "image-shape-mismatch", ["build", crop, out, "--image", f"{CUBE}:/raw"], base=None
    )
    yield cli(cat, "out-missing-folder", ["build", crop, "{d}/data/no/out.h5"], base=None)
    yield cli(cat, "out-is-folder", ["build", crop, "{d}/data"], base=None)
    yield cli(
        cat,
        "out-is-src",
        ["build", "{f}:/labels/s0", "{f}"],
        base="bare",
        expect="any",
        check=built(out="seg.h5"),
    )
    yield cli(cat, "out-has-journal", ["build", crop, "{f}"], base="edited")
    yield cli(
        cat,
        "out-has-journal-force",
        ["build", crop, "{f}", "--force"],
        base="edited",
        expect="ok",
        check=check_all(built(out="seg.h5"), no_journal),
    )
    yield cli(
        cat,
        "stale-partial-cleared-by-build",
        ["build", crop, out],
        base=None,
        expect="ok",
        setup=_stale_partial("out.h5"),
        check=built(),
    )
    yield cli(
        cat,
        "stale-partial-cleared-by-info",
        ["info", "{f}"],
        expect="ok",
        setup=_stale_partial("seg.h5"),
        check=no_files(".*partial*"),
    )
    yield cli(
        cat,
        "demo-no-gui",
        ["demo", "--no-gui", "--json", "--out", "{d}/data/demo.h5"],
        base=None,
        expect="ok",
        check=built(out="demo.h5"),
    )
    yield cli(
        cat,
        "demo-headless",
        ["demo", "--out", "{d}/data/demo.h5"],
        base=None,
        expect="ok",
        check=built(out="demo.h5"),
    )
    yield cli(cat, "demo-out-folder", ["demo", "--no-gui", "--out", "{d}/data"], base=None)
    yield cli(
        cat,
        "demo-out-under-file",
        ["demo", "--no-gui", "--out", "{d}/aux/f/demo.h5"],
        base=None,
        setup=writes("f", "x"),
    )
    yield cli(
        cat,
        "demo-out-text-file",
        ["demo", "--no-gui", "--out", "{d}/data/notes.txt"],
        base=None,
        setup=_notes,
        expect="any",
        check=built(out="notes.txt"),
    )


def _built_from(array: NDArray[Any]) -> Callable[[Run], None]:
    def setup(r: Run) -> None:
        np.save(r.aux / "v.npy", array)
        r.segmend("build", str(r.aux / "v.npy"), str(r.file), "--block-size", "8")

    return setup


def _notes(r: Run) -> None:
    (r.data / "notes.txt").write_text("my notes\n")


def _dead_pid() -> int:
    limit = int(Path("/proc/sys/kernel/pid_max").read_text())
    return next(p for p in range(limit - 1, 1, -1) if not Path(f"/proc/{p}").exists())


def _stale_partial(name: str) -> Callable[[Run], None]:
    def setup(r: Run) -> None:
        (r.data / f".{name}.partial-{_dead_pid()}").write_bytes(b"\0" * 100_000)

    return setup
