"""Checks of a success: each a ``Check`` (``(Run, Proc) -> problems``) built by a
function here (``merged(t, labels)``, ``reserved(n)``, ``built()``, ...).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import numpy as np

from app.kernels import canonical_rles

from .classify import first_line, journal_count, plain_counts
from .harness import Run
from .kinds import Check
from .processes import Proc

SLOW_EDIT_S = 30.0


def check_all(*checks: Check) -> Check:
    def check(r: Run, p: Proc) -> list[str]:
        return [problem for c in checks for problem in c(r, p)]

    return check


def verified(r: Run, p: Proc) -> list[str]:
    return r.verify_problems()


def merged(target: int, labels: Sequence[int]) -> Check:
    """Every voxel of ``labels`` is now ``target``'s in s0, and every level verifies."""

    def check(r: Run, p: Proc) -> list[str]:
        problems = r.verify_problems()
        counts = plain_counts(r.file, [target, *labels])
        left = {v: counts[v] for v in labels if counts[v]}
        if left:
            problems.append(f"merged labels still in s0: {left}")
        want = sum(r.lf.sizes.get(v, 0) for v in {target, *labels})
        if counts[target] != want:
            problems.append(f"target {target} has {counts[target]} voxels, not {want}")
        return problems

    return check


def split_into(target: int, moved: int, new_label: int | None = None) -> Check:
    """The printed new label holds ``moved`` voxels taken from ``target``."""

    def check(r: Run, p: Proc) -> list[str]:
        try:
            label = int(json.loads(first_line(p.out))["label"])
        except (ValueError, KeyError, TypeError):
            return [f"no new label printed: {first_line(p.out)!r}"]
        problems = r.verify_problems()
        if new_label is not None and label != new_label:
            problems.append(f"new label {label}, not the requested {new_label}")
        counts = plain_counts(r.file, [target, label])
        if counts[label] != moved:
            problems.append(f"new label {label} has {counts[label]} voxels, not {moved}")
        if counts[target] != r.lf.sizes[target] - moved:
            problems.append(
                f"target keeps {counts[target]} voxels, not {r.lf.sizes[target] - moved}"
            )
        return problems

    return check


def json_field(key: str, want: Any) -> Check:
    def check(r: Run, p: Proc) -> list[str]:
        try:
            got = json.loads(first_line(p.out))[key]
        except (ValueError, KeyError, TypeError):
            return [f"no {key!r} in the output: {first_line(p.out)!r}"]
        return [] if got == want else [f"{key} is {got}, not {want}"]

    return check


def reserved(n: int) -> Check:
    """``nextlabel N`` printed N fresh labels above the max label; the next call goes on."""

    def check(r: Run, p: Proc) -> list[str]:
        try:
            got = json.loads(first_line(p.out))
            start, end = int(got["start"]), int(got["end"])
        except (ValueError, KeyError, TypeError):
            return [f"no start/end printed: {first_line(p.out)!r}"]
        problems = []
        if end - start + 1 != n or start <= r.lf.max_label:
            problems.append(f"reserved {start}..{end} for n={n} over max label {r.lf.max_label}")
        again = r.segmend("nextlabel", str(r.file))
        with suppress(ValueError, KeyError, TypeError):
            if int(json.loads(first_line(again.out))["start"]) <= end:
                problems.append("the next reservation reuses a reserved label")
        return problems

    return check


def max_label_below(value: int) -> Check:
    """A label was allocated: the max label must not have been ``value`` already."""

    def check(r: Run, p: Proc) -> list[str]:
        got = r.segmend("maxlabel", str(r.file))
        with suppress(ValueError, KeyError, TypeError):
            if int(json.loads(first_line(got.out))["maxlabel"]) >= value:
                return [f"allocated a label past {value}"]
        return []

    return check


def max_label_is(value: int) -> Check:
    def check(r: Run, p: Proc) -> list[str]:
        got = r.segmend("maxlabel", str(r.file))
        return json_field("maxlabel", value)(r, got)

    return check


def output_has(*words: str) -> Check:
    def check(r: Run, p: Proc) -> list[str]:
        return [f"output lacks {w!r}" for w in words if w not in p.out]

    return check


def no_files(pattern: str) -> Check:
    def check(r: Run, p: Proc) -> list[str]:
        left = sorted(q.name for q in r.file.parent.glob(pattern))
        return [f"left behind: {left}"] if left else []

    return check


def label_in_s0(label: int, present: bool = True) -> Check:
    def check(r: Run, p: Proc) -> list[str]:
        if bool(plain_counts(r.file, [label])[label]) == present:
            return []
        return [f"label {label} {'is missing from' if present else 'is still in'} s0"]

    return check


def out_lines(n: int) -> Check:
    def check(r: Run, p: Proc) -> list[str]:
        got = len(p.out.splitlines())
        return [] if got == n else [f"{got} lines of output, not {n}"]

    return check


def split_blob(posted: Sequence[Sequence[int]]) -> Check:
    """``blob get --out aux/b`` wrote the posted region (``posted`` spans) as
    headerless canonical RLE spans."""
    want = canonical_rles(np.array(posted, dtype=np.int64).reshape(-1, 4))

    def check(r: Run, p: Proc) -> list[str]:
        data = (r.aux / "b").read_bytes()
        spans = np.frombuffer(data[: len(data) // 16 * 16], dtype="<i4").reshape(-1, 4)
        if len(data) % 16 or not np.array_equal(spans, want):
            return [f"the blob holds {len(data)} bytes, not the {len(want)} posted spans"]
        return []

    return check


def merged_all(merges: Sequence[tuple[int, int]]) -> Check:
    def check(r: Run, p: Proc) -> list[str]:
        return [q for t, v in merges for q in merged(t, [v])(r, p)]

    return check


def built(levels: int | None = None, max_label: int | None = None, out: str = "out.h5") -> Check:
    """``segmend build`` wrote a pyramid that verifies, with distinct level shapes."""

    def check(r: Run, p: Proc) -> list[str]:
        path = r.data / out
        problems = r.verify_problems(path)
        got = r.segmend("info", "--json", str(path))
        try:
            info = json.loads(got.out)
        except ValueError:
            return [*problems, f"segmend info fails: {first_line(got.err)}"]
        shapes = [tuple(s) for s in info["levels"]]
        if len(set(shapes)) != len(shapes):
            problems.append(f"{len(shapes)} levels, repeating shapes {shapes[-1]}")
        if levels is not None and len(shapes) != levels:
            problems.append(f"{len(shapes)} levels, not {levels}")
        if max_label is not None and info["max_label"] != max_label:
            problems.append(f"max label {info['max_label']}, not {max_label}")
        return problems + no_files(".*partial*")(r, p)

    return check


def no_journal(r: Run, p: Proc) -> list[str]:
    return ["the old journal is still there"] if journal_count(r.file) > 0 else []


def quick(r: Run, p: Proc) -> list[str]:
    return [] if p.seconds < SLOW_EDIT_S else [f"took {p.seconds:.0f} s"]
