"""The campaign's one classifier, and the state it compares.

:func:`classify` judges an :class:`Outcome` as ok, refused, traceback, wrong or
lost.  Beside it: what a refused command must not change (:func:`snapshot` of
the HDF5 file's hash, the sidecar folder, the journal's tables, the files
beside; :func:`diff`), what plain readers see (:func:`plain_levels`,
:func:`plain_counts`), and the reading of a process's output (:func:`acks`,
:func:`telling_line`).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc filter for plain h5py reads)
import numpy as np
from numpy.typing import NDArray

from .processes import Proc

OUTCOMES = ("ok", "refused", "traceback", "wrong", "lost")
EXCEPTION_NAME = re.compile(r"\b(?:[A-Z][A-Za-z]*(?:Error|Exception)|KeyboardInterrupt)\b")


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def tracebacks(*errs: str) -> str:
    """The stderr texts that hold a traceback or an exception name (for the classifier)."""
    return "".join(e for e in errs if "Traceback" in e or EXCEPTION_NAME.search(e))


def telling_line(err: str) -> str:
    """The stderr line that says most: the last naming an error, else the first."""
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    telling = [line for line in lines if "error" in line.lower() or EXCEPTION_NAME.search(line)]
    return (telling or lines or [""])[-1 if telling else 0]


def acks(out: str) -> list[dict[str, Any]]:
    """The JSON objects printed with a MutationID (acknowledged edits)."""
    found = []
    for line in out.splitlines():
        with suppress(ValueError):
            obj = json.loads(line)
            if isinstance(obj, dict) and "MutationID" in obj:
                found.append(obj)
    return found


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def journal_tables(journal: Path) -> dict[str, Any]:
    """The journal's tables as plain readers see them (read-only SQLite)."""
    queries = {
        "mutations": "SELECT id, action, state, record FROM mutations ORDER BY id",
        "meta": "SELECT key, value FROM meta ORDER BY key",
        "label_index rows": "SELECT count(*), total(count) FROM label_index",
        "outbox rows": "SELECT count(*), max(seq) FROM outbox",
        "outbox_state": "SELECT * FROM outbox_state",
        "blobs rows": "SELECT count(*) FROM blobs",
    }
    state: dict[str, Any] = {}
    try:
        conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        return {"journal": f"unreadable ({exc})"}
    with conn:
        for name, sql in queries.items():
            try:
                state[name] = conn.execute(sql).fetchall()
            except sqlite3.Error as exc:
                state[name] = f"unreadable ({exc})"
    conn.close()
    return state


def journal_count(h5: Path) -> int:
    """How many mutations the journal holds (-1 if it cannot be read now)."""
    try:
        conn = sqlite3.connect(f"file:{h5}.segmend/journal.sqlite?mode=ro", uri=True, timeout=1)
        with conn:
            n = int(conn.execute("SELECT count(*) FROM mutations").fetchone()[0])
        conn.close()
        return n
    except sqlite3.Error:
        return -1


def snapshot(h5: Path) -> dict[str, Any]:
    """What a refused command must not change."""
    side = Path(f"{h5}.segmend")
    state: dict[str, Any] = {
        "file": sha256(h5) if h5.is_file() else ("a folder" if h5.is_dir() else "absent"),
        "sidecar": side.is_dir(),
    }
    if (side / "journal.sqlite").is_file():
        state.update(journal_tables(side / "journal.sqlite"))
    if h5.parent.is_dir():
        state["beside"] = sorted(p.name for p in h5.parent.iterdir() if p != side)
    return state


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed between two snapshots, one phrase each."""
    changes = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        if key == "file":
            changes.append(f"HDF5 file {'bytes changed' if a and b else f'{a} -> {b}'}")
        elif key == "sidecar":
            changes.append("sidecar folder " + ("created" if b else "removed"))
        elif key == "beside":
            new, gone = sorted(set(b or []) - set(a or [])), sorted(set(a or []) - set(b or []))
            changes.append(f"files beside: new {new} gone {gone}")
        elif key == "meta" and isinstance(a, list) and isinstance(b, list):
            da, db = dict(a), dict(b)
            keys = sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k))
            changes.append(
                "journal meta " + ", ".join(f"{k}: {da.get(k)} -> {db.get(k)}" for k in keys)
            )
        elif key == "mutations" and isinstance(a, list) and isinstance(b, list):
            changes.append(f"journal mutations: {len(a)} -> {len(b)} rows")
        elif a is None:
            changes.append(f"journal created ({key})")
        else:
            changes.append(f"journal {key}: {a} -> {b}")
    return changes


def plain_levels(h5: Path) -> tuple[list[NDArray[Any]], str]:
    """Every label level as a plain h5py reader sees it, and the downres rule."""
    with h5py.File(h5, "r") as f:
        names = sorted(f["labels"], key=lambda n: int(n[1:]))
        rule = f.attrs["downres_rule"]
        rule = rule.decode() if isinstance(rule, bytes) else str(rule)
        return [f[f"labels/{n}"][...] for n in names], rule


def level_problem(levels: Sequence[NDArray[Any]], rule: str) -> str | None:
    """Why the levels are not one consistent pyramid (None if they are)."""
    from app.kernels.downsample import downsample_labels

    for k in range(1, len(levels)):
        want = downsample_labels(np.ascontiguousarray(levels[k - 1]), rule)
        if want.shape != levels[k].shape:
            return f"s{k} has shape {levels[k].shape}, not {want.shape}"
        if not np.array_equal(want, levels[k]):
            n = np.count_nonzero(want != levels[k])
            return f"s{k} differs from the downsampled s{k - 1} in {n} voxels"
    return None


def plain_counts(h5: Path, labels: Iterable[int]) -> dict[int, int]:
    """Voxel counts in s0 as a plain h5py reader sees it."""
    with h5py.File(h5, "r") as f:
        s0 = f["labels/s0"][...]
    return {v: int(np.count_nonzero(s0 == np.uint64(v))) for v in labels}


@dataclass
class Outcome:
    """What one case observed; :func:`classify` judges it."""

    command: str
    expect: str  # "ok", "refused" or "any" (either, each checked as such)
    proc: Proc
    success: bool
    changes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    scenario: bool = False  # several processes: no single exit status or error line to judge
    acknowledged: bool = False  # failed after printing its result: its edit is checked, kept


def classify(o: Outcome) -> tuple[str, str]:
    """The campaign's one classifier: (outcome, what went wrong)."""
    err = o.proc.err
    lines = [line for line in err.splitlines() if line.strip()]
    if o.lost:
        return "lost", "; ".join(o.lost)
    if "Traceback" in err or EXCEPTION_NAME.search(err):
        return "traceback", "a traceback or exception name on stderr"
    if o.proc.rc is None:
        return "wrong", "hung: killed after its time-out"
    if " object at 0x" in err or "Broken pipe" in err:
        return "wrong", "the error names a Python object or a broken pipe"
    if o.scenario:
        return ("wrong", "; ".join(o.problems)) if o.problems else ("ok", "")
    if not o.success:
        if len(lines) > 1:
            return "traceback", f"a {len(lines)}-line error"
        if not lines:
            return "wrong", f"exit {o.proc.rc} without an error message"
        if not lines[0].startswith(("segmend: error:", "segmend: interrupted")):
            return "wrong", "the error line does not start with 'segmend: error:'"
        if o.acknowledged:
            if o.problems:
                return "wrong", "acknowledged, then failed: " + "; ".join(o.problems)
            return "ok", ""
        if o.expect == "ok":
            return "wrong", "a valid command was refused"
        if o.changes or o.problems:
            return "wrong", "refused, yet changed: " + "; ".join(o.changes + o.problems)
        return "refused", ""
    if o.proc.rc == 0 and re.search(r"\berror\b", err, re.IGNORECASE):
        return "wrong", "exit 0 with an error on stderr"
    if o.expect == "refused":
        return "wrong", "an invalid command was accepted" + "".join(f"; {p}" for p in o.problems)
    if o.problems:
        return "wrong", "; ".join(o.problems)
    return "ok", ""
