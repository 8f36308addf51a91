"""The ``concurrency`` cases: a second writer through other spellings of the path,
readers beside a writer, racing writers."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .bases import LabelFacts
from .classify import Outcome, acks, first_line, tracebacks
from .harness import Run
from .kinds import Case, pairs_file, scenario, writer_acks
from .processes import Proc


def concurrency_cases(lf: LabelFacts) -> Iterator[Case]:
    """A second writer by other spellings of the path; readers beside a writer; races."""
    cat = "concurrency"
    spellings = (
        "same-path",
        "symlink",
        "relative-symlink",
        "hard-link",
        "relative-path",
        "dot-dot",
        "double-slash",
        "symlinked-folder",
    )
    for spelling in spellings:
        yield scenario(cat, f"second-writer-{spelling}", _second_writer(spelling, cli_second=True))
    yield scenario(cat, "second-writer-bind-mount", _second_writer("bind-mount", True), root=True)
    for spelling in ("symlink", "hard-link"):
        yield scenario(cat, f"second-api-writer-{spelling}", _second_writer(spelling, False))
    yield scenario(cat, "build-over-live-writer", _build_over_writer)
    for readers in (
        ["api-reader"],
        ["h5-reader"],
        ["cli-reader", "verify"],
        ["cli-reader", "info"],
        ["cli-reader", "log"],
    ):
        yield scenario(cat, f"{'-'.join(readers)}-beside-writer", _readers([readers]))
    yield scenario(
        cat,
        "all-readers-beside-writer",
        _readers([["api-reader"], ["h5-reader"], ["cli-reader", "verify"]]),
    )
    yield scenario(cat, "six-cli-writers-race", _race)
    yield scenario(cat, "reindex-beside-readers", _reindex_beside_reader)


def _alt_path(r: Run, spelling: str) -> str:
    """Another name of ``r.file`` (and the writer's own name for it)."""
    name = r.file.name
    if spelling == "symlink":
        (r.dir / "link.h5").symlink_to(r.file)
        return str(r.dir / "link.h5")
    if spelling == "relative-symlink":
        (r.dir / "rel.h5").symlink_to(Path("data") / name)
        return "rel.h5"
    if spelling == "hard-link":
        os.link(r.file, r.dir / "hard.h5")
        return str(r.dir / "hard.h5")
    if spelling == "relative-path":
        return f"./data/{name}"
    if spelling == "dot-dot":
        return f"{r.dir}/aux/../data/{name}"
    if spelling == "double-slash":
        return f"{r.dir}//data//{name}"
    if spelling == "symlinked-folder":
        (r.dir / "folder").symlink_to(r.data)
        return str(r.dir / "folder" / name)
    if spelling == "bind-mount":
        (r.dir / "again").mkdir()
        r.mount("--bind", str(r.data), at=r.dir / "again")
        return str(r.dir / "again" / name)
    return str(r.file)


def _second_writer(spelling: str, cli_second: bool) -> Callable[[Run], Outcome]:
    """A writer (API) edits; a second process writes through ``spelling``; the writer goes on."""

    def run(r: Run) -> Outcome:
        r.prepare("base")
        first, second = r.lf.pairs[10:26], r.lf.pairs[30]
        writer = r.helper(
            "writer", str(r.file), str(pairs_file(r, "w.json", first)), "--pause", "8", stdin=True
        )
        ready = writer.wait_line(lambda line: '"paused"' in line)
        alt = _alt_path(r, spelling)
        t, v = second
        if cli_second:
            argv = ["merge", alt, str(t), str(v)]
            p = r.segmend(*argv)
            shown = r.show(argv)
        else:
            w2 = r.helper("writer", alt, str(pairs_file(r, "w2.json", [second])))
            p = w2.finish()
            shown = f"open_dataset({alt!r}, 'r+').merge({t}, [{v}])"
        writer.send("go\n")
        done = writer.finish()
        problems = [] if ready else ["the first writer did not start"]
        if done.rc != 0:
            problems.append(f"the first writer failed: {first_line(done.err) or done.rc}")
        acked = writer_acks(done.out)
        second_acked = [(t, v)] if acks(p.out) else []
        more, lost = r.reopen([*acked, *second_acked])
        problems += more
        counts, _ = r.api_counts([v])
        changes = [] if counts.get(v) or second_acked else ["the refused merge was applied"]
        proc = Proc(p.rc, p.out, p.err + tracebacks(done.err), p.seconds)
        return Outcome(shown, "refused", proc, p.rc == 0, changes, problems, lost)

    return run


def _build_over_writer(r: Run) -> Outcome:
    r.prepare("base")
    writer = r.helper(
        "writer",
        str(r.file),
        str(pairs_file(r, "w.json", r.lf.pairs[10:20])),
        "--pause",
        "5",
        stdin=True,
    )
    writer.wait_line(lambda line: '"paused"' in line)
    argv = ["build", str(r.facts.crop_npy), str(r.file)]
    p = r.segmend(*argv)
    writer.send("go\n")
    done = writer.finish()
    problems = [] if done.rc == 0 else [f"the writer failed: {first_line(done.err)}"]
    if p.rc != 0:
        more, lost = r.reopen(writer_acks(done.out))
        problems += more
    else:
        n = len(writer_acks(done.out))
        lost = [f"build replaced the file under a live writer: its {n} acknowledged edits are gone"]
    proc = Proc(p.rc, p.out, p.err + tracebacks(done.err), p.seconds)
    return Outcome(r.show(argv), "refused", proc, p.rc == 0, problems=problems, lost=lost)


def _readers(readers: Sequence[Sequence[str]]) -> Callable[[Run], Outcome]:
    """Readers loop while a writer makes 40 merges; none may fail or see a torn state."""

    def run(r: Run) -> Outcome:
        r.prepare("base")
        pairs = pairs_file(r, "w.json", r.lf.pairs[10:50])
        stop = r.aux / "stop"
        writer = r.helper(
            "writer", str(r.file), str(pairs), "--interval", "0.05", "--pause", "0", stdin=True
        )
        writer.wait_line(lambda line: '"paused"' in line)
        running = [
            (" ".join(role), r.helper(role[0], str(r.file), str(stop), str(pairs), *role[1:]))
            for role in readers
        ]
        for _, reader in running:
            reader.wait_line(lambda line: '"ready"' in line)
        writer.send("go\n")
        done = writer.finish(timeout=300)
        stop.touch()
        problems = [] if done.rc == 0 else [f"the writer failed: {first_line(done.err)}"]
        errs, seen = [done.err], []
        for role, reader in running:
            p = reader.finish(timeout=300)
            errs.append(p.err)
            try:
                got = json.loads(p.out.splitlines()[-1])
            except (ValueError, IndexError):
                problems.append(f"{role} died: {first_line(p.err) or p.rc}")
                continue
            seen.append(
                f"{role}: {got['reads']} reads, {len(got['failures'])} failed, "
                f"{len(got['inconsistent'])} inconsistent, {got['refused_at_open']} refused at open"
            )
            if got["reads"] == 0:
                problems.append(f"{role} completed no read")
            for key in ("failures", "inconsistent"):
                if got[key]:
                    problems.append(
                        f"{role}: {len(got[key])} of {got['reads']} reads {key}: {got[key][0]}"
                    )
        more, lost = r.reopen(writer_acks(done.out))
        command = f"writer (40 merges) beside {', '.join(role for role, _ in running)}"
        proc = Proc(0, "\n".join([*seen, done.out]), tracebacks(*errs))
        return Outcome(
            command, "ok", proc, True, problems=problems + more, lost=lost, scenario=True
        )

    return run


def _race(r: Run) -> Outcome:
    """Six ``segmend merge`` started together on disjoint labels: each is acknowledged and
    kept, or refused cleanly and not applied."""
    r.prepare("base")
    pairs = r.lf.pairs[40:46]
    running = [r.watch("merge", str(r.file), str(t), str(v)) for t, v in pairs]
    procs = [w.finish() for w in running]
    acked = [pair for pair, p in zip(pairs, procs, strict=True) if p.rc == 0 and acks(p.out)]
    problems, lost = r.reopen(acked)
    refused = [pair for pair, p in zip(pairs, procs, strict=True) if pair not in acked]
    counts, _ = r.api_counts([v for _, v in refused])
    problems += [f"refused merge {t}<-{v} was applied" for t, v in refused if not counts.get(v)]
    for p in procs:
        lines = [line for line in p.err.splitlines() if line.strip()]
        if p.rc != 0 and (len(lines) != 1 or not lines[0].startswith("segmend: error:")):
            problems.append(f"a refused writer's error: {first_line(p.err) or p.rc}")
    err = tracebacks(*(p.err for p in procs))
    return Outcome(
        f"6 x segmend merge FILE T L at once ({len(acked)} acknowledged)",
        "ok",
        Proc(0, "", err),
        True,
        problems=problems,
        lost=lost,
        scenario=True,
    )


def _reindex_beside_reader(r: Run) -> Outcome:
    r.prepare("base")
    stop = r.aux / "stop"
    pairs = pairs_file(r, "p.json", r.lf.pairs[:4])
    reader = r.helper("api-reader", str(r.file), str(stop), str(pairs))
    p = r.segmend("reindex", str(r.file))
    stop.touch()
    got = reader.finish()
    problems = [] if p.rc == 0 else [f"reindex failed: {first_line(p.err)}"]
    try:
        summary = json.loads(got.out.splitlines()[-1])
        problems += [f"reader: {f}" for f in summary["failures"][:1] + summary["inconsistent"][:1]]
    except (ValueError, IndexError):
        problems.append(f"the reader died: {first_line(got.err)}")
    return Outcome(
        "segmend reindex FILE beside an API reader",
        "ok",
        Proc(0, p.out, p.err + got.err),
        True,
        problems=problems + r.verify_problems(),
        scenario=True,
    )
