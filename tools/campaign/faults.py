"""The ``faults`` cases: kill -9 and Ctrl-C in the middle of edits and builds, a full disk."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

from .bases import CUBE, Facts, rle_bytes
from .checks import no_files, reserved, split_into, verified
from .classify import (
    Outcome,
    acks,
    diff,
    first_line,
    journal_count,
    level_problem,
    plain_levels,
    snapshot,
)
from .harness import Run
from .kinds import Case, merge_ops, pairs_file, scenario, writer_acks
from .processes import CMD_TIMEOUT, Proc, Watched


def fault_cases(facts: Facts) -> Iterator[Case]:
    """kill -9 and Ctrl-C in the middle of edits and builds; a full disk."""
    cat = "faults"
    for after in (3, 12, 30):
        yield scenario(cat, f"kill9-apply-after-{after}", _interrupt_apply(signal.SIGKILL, after))
    for after in (2, 10):
        yield scenario(cat, f"ctrl-c-apply-after-{after}", _interrupt_apply(signal.SIGINT, after))
    for after in (4, 15):
        yield scenario(cat, f"kill9-api-writer-after-{after}", _kill_writer(after))
    for delay in (0.5, 1.5, 2.5):
        yield scenario(cat, f"kill9-merge-at-{delay}s", _kill_merge(delay))
    yield scenario(cat, "kill9-build-then-build", _kill_build)
    for free in (0, 8 << 10, 64 << 10, 256 << 10, 1 << 20):
        for cmd in ("merge", "split", "nextlabel", "apply", "reindex", "build"):
            yield scenario(cat, f"full-disk-{free >> 10}k-{cmd}", _full_disk(cmd, free), root=True)


def _until(w: Watched, done: Callable[[], bool]) -> None:
    """Wait until ``done()`` (asked every 20 ms), ``w`` exits or its time-out passes."""
    deadline = time.monotonic() + CMD_TIMEOUT
    while w.proc.poll() is None and time.monotonic() < deadline and not done():
        time.sleep(0.02)


def _interrupt_apply(sig: int, after: int) -> Callable[[Run], Outcome]:
    """``segmend apply`` of 60 merges, interrupted once ``after`` are journaled."""

    def run(r: Run) -> Outcome:
        r.prepare("base")
        pairs = r.lf.pairs[50:110]
        ops = r.write("ops.jsonl", merge_ops(pairs))
        w = r.watch("apply", str(r.file), str(ops))
        _until(w, lambda: max(len(w.out), journal_count(r.file)) >= after)
        w.signal(sig)
        p = w.finish()
        acked = pairs[: len(acks(p.out))]
        problems = []
        try:
            levels, rule = plain_levels(r.file)
            if problem := level_problem(levels, rule):
                problems.append(f"right after the interrupt, plain readers see: {problem}")
        except OSError as exc:
            problems.append(f"right after the interrupt, plain h5py cannot read: {exc}")
        log = r.segmend("log", str(r.file))
        journaled = [
            (int(x["Target"]), int(x["Labels"][0]))
            for x in map(json.loads, log.out.splitlines())
            if x.get("Action") == "merge"
        ]
        if sig == signal.SIGINT and len(journaled) != len(acked):
            problems.append(f"{len(journaled)} lines applied, {len(acked)} results printed")
        more, lost = r.reopen(acked, journaled)
        counted = f"{len(acked)} acknowledged, {len(journaled)} journaled\n{p.out}"
        return Outcome(
            r.show(["apply", str(r.file), str(ops)]) + f" (signal {sig} after {after})",
            "refused" if sig == signal.SIGINT else "ok",
            Proc(p.rc, counted, p.err, p.seconds),
            p.rc == 0,
            problems=problems + more,
            lost=lost,
            scenario=sig == signal.SIGKILL,
        )

    return run


def _kill_writer(after: int) -> Callable[[Run], Outcome]:
    def run(r: Run) -> Outcome:
        r.prepare("base")
        pairs = r.lf.pairs[50:90]
        w = r.helper(
            "writer", str(r.file), str(pairs_file(r, "w.json", pairs)), "--interval", "0.1"
        )
        for _ in range(after):
            if w.wait_line(lambda line: "MutationID" in line) is None:
                break
        w.signal(signal.SIGKILL)
        p = w.finish()
        problems, lost = r.reopen(writer_acks(p.out))
        return Outcome(
            f"API writer, kill -9 after {after} merges",
            "ok",
            Proc(0, p.out, p.err),
            True,
            problems=problems,
            lost=lost,
            scenario=True,
        )

    return run


def _kill_merge(delay: float) -> Callable[[Run], Outcome]:
    def run(r: Run) -> Outcome:
        r.prepare("base")
        t, v = r.lf.pairs[60]
        w = r.watch("merge", str(r.file), str(t), str(v))
        w.wait_line(lambda line: "MutationID" in line, timeout=delay)
        w.signal(signal.SIGKILL)
        p = w.finish()
        problems, lost = r.reopen([(t, v)] if acks(p.out) else [])
        problems += r.verify_problems()
        return Outcome(
            f"segmend merge FILE {t} {v}, kill -9 at {delay} s",
            "ok",
            Proc(0, p.out, p.err),
            True,
            problems=problems,
            lost=lost,
            scenario=True,
        )

    return run


def _kill_build(r: Run) -> Outcome:
    out = r.data / "out.h5"
    argv = ["build", f"{CUBE}:/automated/bodies", str(out), "--image", f"{CUBE}:/raw"]
    w = r.watch(*argv)
    _until(w, lambda: bool(list(r.data.glob(".*partial*"))))
    w.signal(signal.SIGKILL)
    first = w.finish()
    p = r.segmend("build", str(r.facts.crop_npy), str(out))
    problems = [] if p.rc == 0 else [f"the second build fails: {first_line(p.err)}"]
    problems += no_files(".*partial*")(r, p)
    return Outcome(
        r.show(argv) + ", kill -9, build again",
        "ok",
        Proc(0, p.out, first.err + p.err),
        True,
        problems=problems,
        scenario=True,
    )


def _fill(folder: Path, free: int) -> Path:
    """Write a filler file until ``free`` bytes are left in ``folder``'s file system."""
    filler = folder / "filler"
    st = os.statvfs(folder)
    size = max(0, st.f_bavail * st.f_frsize - free)
    with filler.open("wb", buffering=0) as fh, suppress(OSError):
        while size > 0:
            n = fh.write(b"\0" * min(size, 1 << 20))
            size -= n
    return filler


def _full_disk(cmd: str, free: int) -> Callable[[Run], Outcome]:
    """One command on the small pyramid in an 8 MB tmpfs left with ``free`` bytes."""

    def run(r: Run) -> Outcome:
        disk = r.dir / "disk"
        disk.mkdir()
        r.mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", at=disk)
        r.prepare("small", where=disk / "seg.h5")
        lf = r.lf
        pairs = lf.pairs[:30]
        r.write("split.rle", rle_bytes(lf.split_spans))
        r.write("ops.jsonl", merge_ops(pairs))
        t, v = pairs[0]
        argv = {
            "merge": ["merge", str(r.file), str(t), str(v)],
            "split": [
                "split",
                str(r.file),
                str(lf.split_target),
                "--rles",
                str(r.aux / "split.rle"),
            ],
            "nextlabel": ["nextlabel", str(r.file), "5"],
            "apply": ["apply", str(r.file), str(r.aux / "ops.jsonl")],
            "reindex": ["reindex", str(r.file)],
            "build": ["build", str(r.facts.crop_npy), str(disk / "out.h5"), "--block-size", "32"],
        }[cmd]
        filler = _fill(disk, free)
        before = snapshot(r.file)
        p = r.segmend(*argv)
        after = snapshot(r.file)
        filler.unlink()
        o = Outcome(r.show(argv) + f" ({free >> 10} KB free)", "any", p, p.rc == 0)
        o.acknowledged = p.rc != 0 and first_line(p.out).startswith("{")
        if cmd in ("merge", "apply"):
            merges = [(t, v)] if cmd == "merge" else pairs
            acked = merges[: len(acks(p.out))]
            o.problems, o.lost = r.reopen(acked)
            counts, _ = r.api_counts([v for _, v in merges])
            applied = [m for m in merges if not counts.get(m[1])]
            if len(applied) > len(acked):
                o.problems.append(f"{len(applied)} merges applied, {len(acked)} acknowledged")
            if p.rc == 0 and len(acked) != len(merges):
                o.problems.append(f"exit 0 with {len(acked)} of {len(merges)} acknowledged")
        elif p.rc == 0 or first_line(p.out).startswith("{"):
            # a success, or a failure (the file could not be written) after the edit was
            # acknowledged: either way the edit must reach the file once space returns
            check = {
                "split": split_into(lf.split_target, lf.split_voxels),
                "nextlabel": reserved(5),
                "reindex": verified,
                "build": lambda r2, p2: r2.verify_problems(disk / "out.h5"),
            }[cmd]
            o.problems = check(r, p)
        else:
            o.changes = diff(before, after)
        return o

    return run
