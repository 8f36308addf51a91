"""The ``edits`` cases: valid edits, their results checked, and the splits' own
argument cases (bad RLEs, blocks, new labels)."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import h5py

from .bases import Facts, rle_bytes
from .checks import (
    check_all,
    json_field,
    label_in_s0,
    max_label_below,
    max_label_is,
    merged,
    out_lines,
    output_has,
    reserved,
    split_blob,
    split_into,
    verified,
)
from .harness import Run
from .kinds import U64, Case, cli, runs, writes


def edit_result_cases(facts: Facts) -> Iterator[Case]:
    """Valid edits, checked, and the splits' own argument cases."""
    cat, lf = "edits", facts.lf
    t, v = lf.pairs[1]
    v2 = lf.pairs[2][1]
    st = str(lf.split_target)

    split_rle = writes("split.rle", rle_bytes(lf.split_spans))
    moved = lf.split_voxels
    yield cli(cat, "merge", ["merge", "{f}", str(t), str(v)], expect="ok", check=merged(t, [v]))
    yield cli(
        cat,
        "merge-two",
        ["merge", "{f}", str(t), str(v), str(v2)],
        expect="ok",
        check=merged(t, [v, v2]),
    )
    yield cli(
        cat,
        "merge-duplicate-labels",
        ["merge", "{f}", str(t), str(v), str(v)],
        expect="any",
        check=merged(t, [v]),
    )
    yield cli(
        cat,
        "split",
        ["split", "{f}", st, "--rles", "{d}/aux/split.rle"],
        expect="ok",
        setup=split_rle,
        check=split_into(lf.split_target, moved),
    )
    yield cli(
        cat,
        "split-new-label",
        [
            "split",
            "{f}",
            st,
            "--rles",
            "{d}/aux/split.rle",
            "--new-label",
            str(lf.max_label + 1000),
        ],
        expect="ok",
        setup=split_rle,
        check=split_into(lf.split_target, moved, lf.max_label + 1000),
    )
    bad_rles = {
        "missing": None,
        "empty": b"",
        "header-only": rle_bytes([]),
        "short-spans": rle_bytes(lf.split_spans[:1])[:-4],
        "claims-more": rle_bytes(lf.split_spans[:1])[:8]
        + struct.pack("<I", 1000)
        + rle_bytes(lf.split_spans[:1])[12:],
        "text": b"hello, world\n",
        "negative-coords": rle_bytes([(-5, -5, -5, 3)]),
        "outside": rle_bytes([(10_000, 10_000, 10_000, 4)]),
        "zero-length": rle_bytes([(0, 0, 0, 0)]),
        "negative-length": rle_bytes([(0, 0, 0, -5)]),
        "huge-length": rle_bytes([(0, 0, 0, 2**31 - 1)]),
        "no-target-voxel": rle_bytes(lf.miss_spans),
        "whole-body": rle_bytes(lf.whole_spans),
    }
    for name, data in bad_rles.items():
        target = str(lf.whole_label) if name == "whole-body" else st
        setup = None if data is None else writes("bad.rle", data)
        yield cli(
            cat,
            f"split-rles-{name}",
            ["split", "{f}", target, "--rles", "{d}/aux/bad.rle"],
            setup=setup,
        )
    yield cli(cat, "split-rles-folder", ["split", "{f}", st, "--rles", "{d}/aux"])
    whole = writes("whole.rle", rle_bytes(lf.whole_spans))
    for name, label in (("2^64-1", U64 - 1), ("10^19", 10**19), ("next", lf.max_label + 1)):
        yield cli(
            cat,
            f"split-whole-body-new-label-{name}",
            [
                "split",
                "{f}",
                str(lf.whole_label),
                "--rles",
                "{d}/aux/whole.rle",
                "--new-label",
                str(label),
            ],
            setup=whole,
        )
    for name, given in (
        ("2^64", str(U64)),
        ("neg", "-1"),
        ("zero", "0"),
        ("existing", str(v)),
        ("target", st),
        ("nan", "nan"),
    ):
        yield cli(
            cat,
            f"split-new-label-{name}",
            ["split", "{f}", st, "--rles", "{d}/aux/split.rle", "--new-label", given],
            setup=split_rle,
        )
    z, y, x = lf.coarse_block
    ct = str(lf.coarse_target)
    block = f"{z},{y},{x}"
    yield cli(
        cat,
        "split-coarse",
        ["split-coarse", "{f}", ct, "--block", block],
        expect="ok",
        check=split_into(lf.coarse_target, lf.coarse_voxels),
    )
    ez, ey, ex = lf.coarse_empty_block
    for name, b in (
        ("two-parts", "1,2"),
        ("letters", "a,b,c"),
        ("float", "0.5,0,3"),
        ("negative", "-1,0,0"),
        ("outside", "99,99,99"),
        ("2^64", f"{U64},0,0"),
        ("empty", ""),
        ("four-parts", "0,0,0,0"),
        ("no-target", f"{ez},{ey},{ex}"),
    ):
        yield cli(cat, f"split-coarse-block-{name}", ["split-coarse", "{f}", ct, "--block", b])
    yield cli(
        cat,
        "split-coarse-new-label-existing",
        ["split-coarse", "{f}", ct, "--block", block, "--new-label", str(v)],
    )
    yield cli(cat, "nextlabel", ["nextlabel", "{f}"], expect="ok", check=reserved(1))
    yield cli(cat, "nextlabel-5", ["nextlabel", "{f}", "5"], expect="ok", check=reserved(5))
    yield cli(
        cat,
        "maxlabel-read",
        ["maxlabel", "{f}"],
        expect="ok",
        check=json_field("maxlabel", lf.max_label),
        readonly=True,
    )
    yield cli(
        cat,
        "maxlabel-raise",
        ["maxlabel", "{f}", str(lf.max_label + 50)],
        expect="ok",
        check=max_label_is(lf.max_label + 50),
    )
    yield cli(
        cat,
        "maxlabel-2^64-1",
        ["maxlabel", "{f}", str(U64 - 1)],
        expect="any",
        check=max_label_is(U64 - 1),
    )
    yield cli(
        cat,
        "nextlabel-after-max-2^64-1",
        ["nextlabel", "{f}"],
        expect="any",
        setup=runs("maxlabel", "{f}", str(U64 - 1)),
        check=max_label_below(U64 - 1),
    )
    split_label = facts.edited_split_label
    yield cli(
        cat,
        "undo-split",
        ["undo", "{f}"],
        base="edited",
        expect="ok",
        check=check_all(verified, label_in_s0(split_label, present=False)),
    )
    yield cli(
        cat,
        "undo-redo",
        ["redo", "{f}"],
        base="edited",
        expect="ok",
        setup=runs("undo", "{f}"),
        check=check_all(verified, label_in_s0(split_label)),
    )
    yield cli(
        cat, "log", ["log", "{f}"], base="edited", expect="ok", check=out_lines(3), readonly=True
    )
    yield cli(
        cat,
        "log-since-2",
        ["log", "{f}", "--since", "2"],
        base="edited",
        expect="ok",
        check=out_lines(1),
        readonly=True,
    )
    yield cli(
        cat,
        "reindex",
        ["reindex", "--json", "{f}"],
        expect="ok",
        check=check_all(json_field("labels", len(lf.sizes)), verified),
    )
    yield cli(
        cat,
        "info",
        ["info", "--json", "{f}"],
        expect="ok",
        check=json_field("max_label", lf.max_label),
        readonly=True,
    )
    yield cli(cat, "verify", ["verify", "{f}"], expect="ok", check=output_has("OK"), readonly=True)
    yield cli(
        cat,
        "verify-bare",
        ["verify", "{f}"],
        base="bare",
        expect="ok",
        check=output_has("OK"),
        readonly=True,
    )
    yield cli(cat, "info-bare", ["info", "{f}"], base="bare", expect="ok", readonly=True)
    yield cli(cat, "log-bare", ["log", "{f}"], base="bare", expect="ok", readonly=True)
    yield cli(cat, "merge-refused-bare", ["merge", "{f}", str(lf.absent), str(v)], base="bare")
    yield cli(
        cat,
        "verify-corrupt-s1",
        ["verify", "{f}"],
        base="bare",
        ok_rc=(1,),
        expect="ok",
        setup=_corrupt_s1,
        check=output_has("FAILED"),
    )
    yield cli(cat, "events-status", ["events", "status", "{f}"], expect="ok", readonly=True)
    yield cli(
        cat,
        "events-tail",
        ["events", "tail", "--json", "{f}"],
        base="edited",
        expect="ok",
        readonly=True,
        check=output_has("merge", "split"),
    )
    yield cli(cat, "events-flush-empty", ["events", "flush", "{f}"], expect="ok")
    yield cli(cat, "events-flush-no-broker", ["events", "flush", "{f}"], base="edited")
    yield cli(
        cat,
        "blob-get",
        ["blob", "get", "{f}", facts.blob_ref, "--out", "{d}/aux/b"],
        base="edited",
        expect="ok",
        check=split_blob(lf.split_spans),
    )
    yield cli(
        cat,
        "blob-get-out-folder",
        ["blob", "get", "{f}", facts.blob_ref, "--out", "{d}/aux"],
        base="edited",
    )
    yield cli(
        cat,
        "blob-get-out-missing-folder",
        ["blob", "get", "{f}", facts.blob_ref, "--out", "{d}/no/such/b"],
        base="edited",
    )


def _corrupt_s1(r: Run) -> None:
    with h5py.File(r.file, "r+") as f:
        s1 = f["labels/s1"]
        s1[0, 0, 0] = int(s1[0, 0, 0]) + 1
