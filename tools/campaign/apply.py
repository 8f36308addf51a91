"""The ``apply`` cases: hostile ``segmend apply`` input, line by line."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from .bases import LabelFacts
from .checks import check_all, json_field, label_in_s0, merged_all, verified
from .classify import acks, diff, plain_counts
from .harness import Run
from .kinds import U64, Case, Check, cli, merge_op
from .processes import Proc


def apply_cases(lf: LabelFacts) -> Iterator[Case]:
    """Hostile ``segmend apply`` input."""
    cat = "apply"
    (t1, v1), (t2, v2), (t3, v3) = lf.pairs[4:7]

    st, spans = lf.split_target, [list(s) for s in lf.split_spans]
    cz, cy, cx = lf.coarse_block
    bad: dict[str, str] = {
        "nested-brackets": "[" * 100_000,
        "nested-objects": '{"a":' * 100_000,
        "rle-coord-2^70": json.dumps({"Action": "split", "Target": st, "RLEs": [[2**70, 0, 0, 1]]}),
        "rle-length-2^70": json.dumps(
            {"Action": "split", "Target": st, "RLEs": [[0, 0, 0, 2**70]]}
        ),
        "rle-float": json.dumps({"Action": "split", "Target": st, "RLEs": [[0.5, 0, 0, 1]]}),
        "rle-negative-length": json.dumps(
            {"Action": "split", "Target": st, "RLEs": [[0, 0, 0, -4]]}
        ),
        "rles-not-list": json.dumps({"Action": "split", "Target": st, "RLEs": "x"}),
        "rles-empty": json.dumps({"Action": "split", "Target": st, "RLEs": []}),
        "blocks-float": json.dumps(
            {"Action": "splitcoarse", "Target": lf.coarse_target, "Blocks": [[cz + 0.5, cy, cx]]}
        ),
        "blocks-2^70": json.dumps(
            {"Action": "splitcoarse", "Target": lf.coarse_target, "Blocks": [[2**70, 0, 0]]}
        ),
        "blocks-negative": json.dumps(
            {"Action": "splitcoarse", "Target": lf.coarse_target, "Blocks": [[-1, 0, 0]]}
        ),
        "blocks-string": json.dumps(
            {"Action": "splitcoarse", "Target": lf.coarse_target, "Blocks": "abc"}
        ),
        "undo-nothing": json.dumps({"Action": "undo", "Undoes": 5}),
        "undoes-string": json.dumps({"Action": "undo", "Undoes": "x"}),
        "redo-nothing": json.dumps({"Action": "redo"}),
        "target-string": json.dumps({"Action": "merge", "Target": str(t1), "Labels": [v1]}),
        "target-2^64": json.dumps({"Action": "merge", "Target": U64, "Labels": [v1]}),
        "target-bool": json.dumps({"Action": "merge", "Target": True, "Labels": [v1]}),
        "target-nan": json.dumps({"Action": "merge", "Target": float("nan"), "Labels": [v1]}),
        "labels-infinity": json.dumps({"Action": "merge", "Target": t1, "Labels": [float("inf")]}),
        "labels-not-list": json.dumps({"Action": "merge", "Target": t1, "Labels": v1}),
        "labels-empty": json.dumps({"Action": "merge", "Target": t1, "Labels": []}),
        "unknown-action": json.dumps({"Action": "explode", "Target": t1}),
        "no-action": json.dumps({"Target": t1, "Labels": [v1]}),
        "array": json.dumps([1, 2, 3]),
        "null": "null",
        "not-json": "merge 1 2",
        "nextlabel-end-before-start": json.dumps(
            {"Action": "post-nextlabel", "Start Label": 9, "End Label": 3}
        ),
        "maxlabel-10^20": json.dumps({"Action": "post-maxlabel", "MaxLabel": 10**20}),
        "split-new-label-2^64": json.dumps(
            {"Action": "split", "Target": st, "RLEs": spans, "NewLabel": U64}
        ),
        "split-new-label-existing": json.dumps(
            {"Action": "split", "Target": st, "RLEs": spans, "NewLabel": v1}
        ),
        "split-whole-body": json.dumps(
            {"Action": "split", "Target": lf.whole_label, "RLEs": [list(s) for s in lf.whole_spans]}
        ),
    }
    for name, line in bad.items():
        yield _apply(cat, name, [line])
    yield _apply(cat, "binary", [], raw=b"\xff\xfe\x00garbage\x80\n")
    yield cli(cat, "ops-missing", ["apply", "{f}", "{d}/aux/nope.jsonl"])
    yield cli(cat, "ops-folder", ["apply", "{f}", "{d}/aux"])
    yield _apply(
        cat,
        "valid",
        [merge_op(t1, v1), merge_op(t2, v2), merge_op(t3, v3)],
        expect="ok",
        merges=[(t1, v1), (t2, v2), (t3, v3)],
    )
    yield _apply(cat, "valid-stdin", [merge_op(t1, v1)], expect="ok", merges=[(t1, v1)], stdin=True)
    yield _apply(cat, "empty-file", [], expect="ok")
    yield _apply(cat, "blank-lines", ["", "   ", ""], expect="ok")
    yield _apply(
        cat,
        "bad-third-line",
        [merge_op(t1, v1), merge_op(t2, v2), "{oops"],
        partial=((t1, v1), (t2, v2)),
    )
    yield _apply(
        cat,
        "undoes-mismatch",
        [merge_op(t1, v1), merge_op(t2, v2), json.dumps({"Action": "undo", "Undoes": 1})],
        partial=((t1, v1), (t2, v2)),
    )
    start = lf.max_label + 100
    yield _apply(
        cat,
        "post-nextlabel-start",
        [json.dumps({"Action": "post-nextlabel", "Start Label": start, "End Label": start + 4})],
        expect="any",
        check=json_field("start", start),
    )
    yield cli(
        cat,
        "log-replay",
        ["apply", "{f}", "{d}/aux/ops.jsonl"],
        expect="ok",
        setup=_edited_log,
        check=check_all(verified, label_in_s0(lf.split_target)),
    )


def _edited_log(r: Run) -> None:
    r.write("ops.jsonl", r.segmend("log", str(r.facts.edited)).out)


def _apply(
    cat: str,
    name: str,
    lines: list[str],
    *,
    expect: str = "refused",
    raw: bytes | None = None,
    merges: Sequence[tuple[int, int]] = (),
    partial: Sequence[tuple[int, int]] | None = None,
    stdin: bool = False,
    check: Check | None = None,
) -> Case:
    """``segmend apply`` of ``lines``; ``partial``: the merges before the failing last line,
    which stay applied and must be printed."""
    data = raw if raw is not None else "".join(f"{line}\n" for line in lines).encode()

    def setup(r: Run) -> None:
        r.write("ops.jsonl", data)

    def refusal(r: Run, p: Proc, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        if partial is None:
            return diff(before, after)
        problems = []
        n = len(partial)
        if f"line {n + 1}" not in p.err:
            problems.append(f"the error does not name line {n + 1}")
        if len(acks(p.out)) != n:
            problems.append(f"{n} lines applied, {len(acks(p.out))} results printed")
        counts = plain_counts(r.file, [v for _, v in partial])
        if any(counts.values()):
            problems.append("the applied lines are not in the file")
        return problems

    argv = ["apply", "{f}", "-" if stdin else "{d}/aux/ops.jsonl"]
    return cli(
        cat,
        name,
        argv,
        expect=expect,
        setup=setup,
        on_refusal=refusal,
        stdin=data if stdin else None,
        check=check or (merged_all(merges) if merges else None),
    )
