"""The ``args`` cases: bad arguments for every subcommand."""

from __future__ import annotations

from collections.abc import Iterator

from .bases import LabelFacts
from .checks import merged, output_has, reserved
from .kinds import BAD_INTS, U64, Case, cli


def argument_cases(lf: LabelFacts) -> Iterator[Case]:
    """Bad arguments for every subcommand: each must be refused, changing nothing."""
    cat = "args"
    t, v = lf.pairs[0]
    for name, bad in BAD_INTS.items():
        yield cli(cat, f"merge-target-{name}", ["merge", "{f}", bad, str(v)])
    for name in ("2^64", "2^70", "10^20", "neg", "zero", "nan", "empty"):
        yield cli(cat, f"merge-label-{name}", ["merge", "{f}", str(t), BAD_INTS[name]])
    yield cli(cat, "merge-target-in-labels", ["merge", "{f}", str(t), str(v), str(t)])
    yield cli(cat, "merge-absent-label", ["merge", "{f}", str(t), str(lf.absent)])
    yield cli(cat, "merge-absent-target", ["merge", "{f}", str(lf.absent), str(v)])
    yield cli(cat, "merge-above-max", ["merge", "{f}", str(t), str(lf.max_label + 10)])
    yield cli(cat, "merge-2^64-1", ["merge", "{f}", str(t), str(U64 - 1)])
    yield cli(cat, "merge-no-labels", ["merge", "{f}", str(t)])
    yield cli(
        cat,
        "merge-500-absent-labels",
        ["merge", "{f}", str(t), *map(str, range(lf.max_label + 1, lf.max_label + 501))],
    )
    yield cli(cat, "merge-missing-file", ["merge", "{d}/nope.h5", str(t), str(v)], base=None)
    for name in ("2^64", "10^20", "neg", "zero", "nan", "word"):
        yield cli(cat, f"nextlabel-{name}", ["nextlabel", "{f}", BAD_INTS[name]])
    yield cli(
        cat, "nextlabel-2^63", ["nextlabel", "{f}", str(2**63)], expect="any", check=reserved(2**63)
    )
    for name in ("2^64", "10^20", "neg", "zero", "nan", "float"):
        yield cli(cat, f"maxlabel-{name}", ["maxlabel", "{f}", BAD_INTS[name]])
    yield cli(cat, "maxlabel-lower", ["maxlabel", "{f}", str(lf.max_label - 1)])
    for name in ("2^64", "10^20", "neg", "nan", "word"):
        yield cli(
            cat,
            f"log-since-{name}",
            ["log", "{f}", "--since", BAD_INTS[name]],
            expect="any",
            check=output_has(""),
            readonly=True,
        )
    yield cli(cat, "undo-nothing", ["undo", "{f}"])
    yield cli(cat, "redo-nothing", ["redo", "{f}"])
    yield cli(cat, "undo-extra-arg", ["undo", "{f}", "3"])
    yield cli(cat, "reindex-extra-arg", ["reindex", "{f}", "now"])
    for name in ("2^64", "10^20", "neg", "zero", "word"):
        yield cli(
            cat,
            f"events-tail-n-{name}",
            ["events", "tail", "{f}", "-n", BAD_INTS[name]],
            expect="any",
            readonly=True,
        )
    for name in ("zero", "neg", "nan", "inf", "word"):
        yield cli(
            cat,
            f"events-flush-timeout-{name}",
            ["events", "flush", "{f}", "--timeout", BAD_INTS[name]],
            expect="any",
            base="edited",
        )
    for name, ref in (
        ("short", "ab12"),
        ("not-hex", "z" * 64),
        ("absent", "0" * 64),
        ("path", "../../../etc/passwd"),
        ("empty", ""),
    ):
        yield cli(cat, f"blob-get-{name}", ["blob", "get", "{f}", ref], base="edited")
    for name, argv in (
        ("bogus-option", ["--bogus"]),
        ("merge-no-args", ["merge"]),
        ("events-no-action", ["events"]),
        ("blob-no-action", ["blob"]),
        ("events-bogus-action", ["events", "bogus", "{f}"]),
        ("build-no-args", ["build"]),
        ("split-no-rles", ["split", "{f}", str(t)]),
        ("info-no-file", ["info"]),
        ("verify-two-files", ["verify", "{f}", "{f}"]),
    ):
        yield cli(cat, f"usage-{name}", argv)
    yield cli(cat, "top-missing-file-opens-app", ["{d}/nope.h5"], base=None)
    yield cli(
        cat,
        "merge-user-huge",
        ["merge", "{f}", str(t), str(v), "--user", "u" * 100_000],
        expect="any",
        check=merged(t, [v]),
    )
