"""The ``pipes`` cases (output into a closed pipe) and the ``readonly`` cases (a
read-only folder, sidecar or file: reads work, writes are refused)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .bases import Facts
from .classify import Outcome, diff, first_line, snapshot
from .harness import Run
from .kinds import Case, merge_op, scenario
from .processes import CMD_TIMEOUT, SEGMEND, Proc

# ---------------------------------------------------------------------------- pipes


def pipe_cases(facts: Facts) -> Iterator[Case]:
    """Output into a pipe its reader closed (``segmend info FILE | head -0``)."""
    for name, argv in (
        ("info", ["info", "{f}"]),
        ("log", ["log", "{f}"]),
        ("verify", ["verify", "{f}"]),
        ("events-tail", ["events", "tail", "{f}"]),
        ("blob-get", ["blob", "get", "{f}", facts.blob_ref]),
        ("help", ["--help"]),
    ):
        yield scenario("pipes", f"{name}-closed-stdout", _closed_pipe(argv))


def _closed_pipe(args: Sequence[str]) -> Callable[[Run], Outcome]:
    def run(r: Run) -> Outcome:
        r.prepare("edited")
        argv = [r.fill(a) for a in args]
        read_end, write_end = os.pipe()
        os.close(read_end)
        start = time.monotonic()
        try:
            p = subprocess.run(
                [*SEGMEND, *argv],
                cwd=r.dir,
                env=r.env,
                stdout=write_end,
                stderr=subprocess.PIPE,
                timeout=CMD_TIMEOUT,
                check=False,
            )
            proc = Proc(
                p.returncode, "", p.stderr.decode(errors="replace"), time.monotonic() - start
            )
        finally:
            os.close(write_end)
        ok = proc.rc in (0, 141, -signal.SIGPIPE)
        problems = [] if ok else [f"exit {proc.rc} when the reader is gone"]
        problems += [f"stderr: {first_line(proc.err)}"] if proc.err.strip() else []
        return Outcome(
            r.show(argv) + " | head -0", "ok", proc, True, problems=problems, scenario=True
        )

    return run


# ---------------------------------------------------------------------------- read-only


def readonly_cases(facts: Facts) -> Iterator[Case]:
    """A dataset in a read-only folder, a read-only sidecar, a read-only file (root)."""
    reads = {
        "info": ["info", "{f}"],
        "log": ["log", "{f}"],
        "verify": ["verify", "{f}"],
        "maxlabel": ["maxlabel", "{f}"],
        "events-status": ["events", "status", "{f}"],
        "events-tail": ["events", "tail", "{f}"],
        "blob-get": ["blob", "get", "{f}", facts.blob_ref, "--out", "{d}/aux/blob"],
    }
    t, v = facts.lf.pairs[9]
    writes = {
        "merge": ["merge", "{f}", str(t), str(v)],
        "nextlabel": ["nextlabel", "{f}"],
        "maxlabel-raise": ["maxlabel", "{f}", str(facts.lf.max_label + 9)],
        "undo": ["undo", "{f}"],
        "reindex": ["reindex", "{f}"],
        "apply": ["apply", "{f}", "-"],
    }
    for what in ("folder", "sidecar", "file"):
        for name, argv in reads.items():
            yield scenario("readonly", f"{what}-{name}", _ro(what, argv, "ok", "edited"), root=True)
        for name, argv in writes.items():
            yield scenario(
                "readonly", f"{what}-{name}", _ro(what, argv, "refused", "edited"), root=True
            )
    for name in ("info", "verify", "log"):
        yield scenario(
            "readonly", f"bare-folder-{name}", _ro("folder", reads[name], "ok", "bare"), root=True
        )
    yield scenario(
        "readonly",
        "bare-folder-merge",
        _ro("folder", writes["merge"], "refused", "bare"),
        root=True,
    )
    yield scenario(
        "readonly",
        "build-into-folder",
        _ro("folder", ["build", str(facts.crop_npy), "{d}/ro/new.h5"], "refused", "bare"),
        root=True,
    )


def _ro(what: str, args: Sequence[str], expect: str, base: str) -> Callable[[Run], Outcome]:
    def run(r: Run) -> Outcome:
        r.prepare(base)
        real = r.file
        if what == "folder":
            r.bind_ro(r.data, r.dir / "ro")
            r.file = r.dir / "ro" / real.name
        elif what == "sidecar":
            side = Path(f"{real}.segmend")
            r.bind_ro(side, side)
        else:
            r.bind_ro(real, real)
        argv = [r.fill(a) for a in args]
        before = snapshot(real)
        t, v = r.lf.pairs[9]
        line = merge_op(t, v)
        p = r.segmend(*argv, stdin=line.encode())
        after = snapshot(real)
        changes = diff(before, after)
        o = Outcome(r.show(argv), expect, p, p.rc == 0)
        if o.success:
            o.problems = [f"a read-only command changed: {c}" for c in changes]
        else:
            o.changes = changes
        return o

    return run
