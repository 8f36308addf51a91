"""How cases are built: :class:`Case`, :func:`cli` (one ``segmend`` command on a
fresh copy of a base), :func:`scenario` (a case of its own), the setups and
values several categories share.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .classify import Outcome, acks, diff, snapshot
from .harness import Run
from .processes import CMD_TIMEOUT, Proc

U64 = 2**64
BAD_INTS = {
    "2^64": str(U64),
    "2^70": str(2**70),
    "10^20": str(10**20),
    "neg": "-1",
    "zero": "0",
    "float": "1.5",
    "nan": "nan",
    "inf": "inf",
    "empty": "",
    "hex": "0x10",
    "word": "seven",
}


@dataclass(frozen=True)
class Case:
    category: str
    name: str
    run: Callable[[Run], Outcome]
    needs_root: bool = False

    @property
    def key(self) -> str:
        return f"{self.category}/{self.name}"


Check = Callable[[Run, Proc], list[str]]
OnRefusal = Callable[[Run, Proc, dict[str, Any], dict[str, Any]], list[str]]


def cli(
    category: str,
    name: str,
    args: Sequence[str],
    *,
    expect: str = "refused",
    base: str | None = "base",
    setup: Callable[[Run], None] | None = None,
    check: Check | None = None,
    stdin: bytes | None = None,
    ok_rc: tuple[int, ...] = (0,),
    readonly: bool = False,
    on_refusal: OnRefusal | None = None,
    timeout: float = CMD_TIMEOUT,
) -> Case:
    """One ``segmend`` command on a fresh copy of ``base``.

    ``{f}`` in ``args`` is the dataset's path and ``{d}`` the case's folder.
    A success must pass ``check``; with ``readonly`` it must also leave the
    HDF5 file and the journal's tables as they were.  A failure must change
    nothing (``on_refusal`` may judge it instead).
    """

    def run(r: Run) -> Outcome:
        r.prepare(base)
        if setup is not None:
            setup(r)
        argv = [r.fill(a) for a in args]
        before = snapshot(r.file)
        p = r.segmend(*argv, stdin=stdin, timeout=timeout)
        after = snapshot(r.file)
        success = p.rc in ok_rc
        o = Outcome(r.show(argv), expect, p, success)
        if success:
            if check is not None:
                o.problems += check(r, p)
            if readonly:
                o.problems += [
                    f"a read-only command changed: {c}"
                    for c in diff(before, after)
                    if not c.startswith(("sidecar", "files beside", "journal created"))
                ]
        else:
            o.changes = (on_refusal or _unchanged)(r, p, before, after)
        return o

    return Case(category, name, run)


def _unchanged(r: Run, p: Proc, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return diff(before, after)


def scenario(category: str, name: str, body: Callable[[Run], Outcome], root: bool = False) -> Case:
    return Case(category, name, body, needs_root=root)


# ---------------------------------------------------------------------------- setups


def writes(name: str, data: bytes | str) -> Callable[[Run], None]:
    """A setup writing ``aux/NAME``."""

    def setup(r: Run) -> None:
        r.write(name, data)

    return setup


def runs(*args: str) -> Callable[[Run], None]:
    """A setup running a ``segmend`` command first (``{f}`` and ``{d}`` filled in)."""

    def setup(r: Run) -> None:
        r.segmend(*(r.fill(a) for a in args))

    return setup


# ---------------------------------------------------------------------------- merges


def merge_op(t: int, v: int) -> str:
    """One ``segmend apply`` line merging ``v`` into ``t``."""
    return json.dumps({"Action": "merge", "Target": t, "Labels": [v]})


def merge_ops(pairs: Sequence[tuple[int, int]]) -> str:
    """``segmend apply`` input merging each pair, one line each."""
    return "".join(merge_op(t, v) + "\n" for t, v in pairs)


def pairs_file(r: Run, name: str, pairs: Sequence[tuple[int, int]]) -> Path:
    """``aux/NAME``: the merges for a ``writer`` helper (JSON pairs)."""
    return r.write(name, json.dumps([list(p) for p in pairs]))


def writer_acks(out: str) -> list[tuple[int, int]]:
    """The merges a ``writer`` helper acknowledged, from its output."""
    return [(int(a["Target"]), int(a["Labels"][0])) for a in acks(out) if "Target" in a]
