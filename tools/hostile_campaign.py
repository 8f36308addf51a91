"""The hostile campaign of issue 14, as a script anyone can rerun.

It throws a few hundred hostile cases at segmend's command line and API: bad
arguments for every subcommand, bad files, read-only folders, a second writer
through other spellings of the path, readers beside a writer, hostile
``apply`` input, kill -9 and Ctrl-C in the middle of edits, a full disk, a bad
config file, Kafka on a closed port.  Each outcome is one of:

``ok``
    a valid command succeeded and its result is right (checked: voxels in s0
    as a plain HDF5 reader sees them, ``segmend verify``, counters); on a full
    disk, also a command that printed its result (the edit is safe in the
    journal) and then exits non-zero with one clear line because the HDF5 file
    could not be written, when the edit reaches the file once space returns;
``refused``
    an invalid command exited non-zero with one ``segmend: error: ...`` (or
    ``segmend: interrupted``) line on stderr, and changed nothing: the HDF5
    file's bytes, the sidecar folder ``FILE.segmend/``, the journal's tables
    (mutations, meta, label index, outbox, blobs), the files beside it;
``traceback``
    a traceback or a Python exception name on stderr, or a multi-line error;
``wrong``
    a refused command that changed something, a success with a wrong result,
    exit 0 with an error, a hang;
``lost``
    an acknowledged edit (a printed MutationID) missing once the dataset is
    reopened.

Usage (from the repository)::

    .venv/bin/python tools/hostile_campaign.py                 # every case, 10-15 min
    .venv/bin/python tools/hostile_campaign.py --list          # the case names
    .venv/bin/python tools/hostile_campaign.py --only 'apply/*' --only kill
    .venv/bin/python tools/hostile_campaign.py --keep          # keep every case's folder

A base pyramid is built once from the real cube in ``resources/`` (plus a small
crop that fits a small tmpfs); each case runs in a fresh folder holding a copy.
Cases that mount (a read-only bind mount, an 8 MB tmpfs for a full disk, a
second mount point of the same folder) need root and are left out without it.
No display, Kafka broker or network is needed.  It prints one line per case
that is neither ``ok`` nor ``refused`` and a summary table; the folders of those
cases are kept, each with an ``outcome.txt`` (the command, its output, what was
wrong).  The exit status is always 0 (a report, not a test).  The script also runs its own helper
processes (writers and readers beside the command under test) as
``hostile_campaign.py --helper ROLE ...``.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import queue
import re
import shlex
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc filter for plain h5py reads)
import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()
CUBE = ROOT / "resources" / "fib-medulla-250.h5"
PY = sys.executable
SEGMEND = (PY, "-m", "app")
CMD_TIMEOUT = 90.0
SLOW_EDIT_S = 30.0
OUTCOMES = ("ok", "refused", "traceback", "wrong", "lost")
IS_ROOT = os.geteuid() == 0

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
EXCEPTION_NAME = re.compile(r"\b(?:[A-Z][A-Za-z]*(?:Error|Exception)|KeyboardInterrupt)\b")

# ============================================================================ facts


Span = tuple[int, int, int, int]  # x, y, z, length (DVID's RLE order)


@dataclass(frozen=True)
class LabelFacts:
    """What cases need to know of one base pyramid's labels (from its s0)."""

    block: int
    max_label: int
    sizes: dict[int, int]
    pairs: tuple[tuple[int, int], ...]
    absent: int
    split_target: int
    split_spans: tuple[Span, ...]
    split_voxels: int
    whole_label: int
    whole_spans: tuple[Span, ...]
    miss_spans: tuple[Span, ...]
    coarse_target: int
    coarse_block: tuple[int, int, int]
    coarse_voxels: int
    coarse_empty_block: tuple[int, int, int]

    @classmethod
    def placeholder(cls) -> LabelFacts:
        """Facts for listing case names without building anything."""
        one: tuple[Span, ...] = ((0, 0, 0, 1),)
        return cls(
            64, 1, {}, ((1, 2),) * 200, 3, 1, one, 1, 1, one, one, 1, (0, 0, 0), 1, (0, 0, 0)
        )


@dataclass(frozen=True)
class Facts:
    """The prepared base pyramids and what the cases know of them."""

    root: Path
    base: Path
    bare: Path
    small: Path
    edited: Path
    crop_npy: Path
    lf: LabelFacts
    small_lf: LabelFacts
    edited_split_label: int
    blob_ref: str

    @classmethod
    def placeholder(cls) -> Facts:
        p = Path("/nonexistent")
        lf = LabelFacts.placeholder()
        return cls(p, p, p, p, p, p, lf, lf, 1, "0" * 64)


def rle_bytes(spans: Iterable[Span]) -> bytes:
    """DVID binary RLEs with their 12-byte header."""
    spans = list(spans)
    voxels = sum(s[3] for s in spans) % 2**32  # (ignored on read)
    head = bytes([0, 3, 0, 0]) + struct.pack("<II", voxels, len(spans))
    return head + b"".join(struct.pack("<iiii", *s) for s in spans)


def _bbox_spans(mask: NDArray[np.bool_], z_end: int | None = None) -> tuple[Span, ...]:
    """One span per (z, y) row of the bounding box of ``mask`` (z below ``z_end``)."""
    zz, yy, xx = np.nonzero(mask)
    z0, z1 = int(zz.min()), int(zz.max()) + 1 if z_end is None else z_end
    y0, y1, x0, x1 = int(yy.min()), int(yy.max()) + 1, int(xx.min()), int(xx.max()) + 1
    return tuple((x0, y, z, x1 - x0) for z in range(z0, z1) for y in range(y0, y1))


def _voxels_in(s0: NDArray[Any], spans: Iterable[Span], label: int) -> int:
    return sum(int(np.count_nonzero(s0[z, y, x : x + n] == label)) for x, y, z, n in spans)


def label_facts(s0: NDArray[Any], block: int, max_label: int) -> LabelFacts:
    """Pick the labels the cases edit: merge pairs, a split target and region, ..."""
    labels, counts = np.unique(s0, return_counts=True)
    sizes = {int(v): int(c) for v, c in zip(labels, counts, strict=True) if v}
    by_size = sorted(sizes, key=lambda v: (sizes[v], v))
    absent = next(v for v in range(1, max_label) if v not in sizes)
    total = s0.size

    def z_extent(label: int) -> int:
        zz = np.nonzero(np.any(s0 == label, axis=(1, 2)))[0]
        return int(zz.max() - zz.min()) + 1

    split_target = next(
        v for v in reversed(by_size) if sizes[v] <= total // 50 and z_extent(v) >= 4
    )
    mask = s0 == split_target
    zz = np.nonzero(np.any(mask, axis=(1, 2)))[0]
    split_spans = _bbox_spans(mask, z_end=int(zz.min() + (zz.max() - zz.min()) // 2 + 1))
    whole_label = next(v for v in by_size if sizes[v] >= 5)
    whole_spans = _bbox_spans(s0 == whole_label)
    miss = np.argwhere(s0 != split_target)[0]
    miss_spans: tuple[Span, ...] = ((int(miss[2]), int(miss[1]), int(miss[0]), 1),)

    coarse_target, coarse_block, coarse_voxels, coarse_empty = 0, (0, 0, 0), 0, (0, 0, 0)
    grid = [-(-n // block) for n in s0.shape]
    for v in reversed(by_size):
        if v in (split_target, whole_label) or sizes[v] > total // 100:
            continue
        cz, cy, cx = (a // block for a in np.nonzero(s0 == v))
        keys, n = np.unique(np.stack([cz, cy, cx], axis=1), axis=0, return_counts=True)
        if len(keys) >= 2:
            i = int(np.argmin(n))
            coarse_target, coarse_voxels = v, int(n[i])
            coarse_block = (int(keys[i][0]), int(keys[i][1]), int(keys[i][2]))
            held = {tuple(int(c) for c in k) for k in keys}
            coarse_empty = next(
                (z, y, x)
                for z in range(grid[0])
                for y in range(grid[1])
                for x in range(grid[2])
                if (z, y, x) not in held
            )
            break
    used = {split_target, whole_label, coarse_target}
    free = [v for v in by_size if sizes[v] >= 20 and v not in used]
    n_pairs = min(200, len(free) // 2)
    pairs = tuple((free[2 * i], free[2 * i + 1]) for i in range(n_pairs))
    return LabelFacts(
        block=block,
        max_label=max_label,
        sizes=sizes,
        pairs=pairs,
        absent=absent,
        split_target=split_target,
        split_spans=split_spans,
        split_voxels=_voxels_in(s0, split_spans, split_target),
        whole_label=whole_label,
        whole_spans=whole_spans,
        miss_spans=miss_spans,
        coarse_target=coarse_target,
        coarse_block=coarse_block,
        coarse_voxels=coarse_voxels,
        coarse_empty_block=coarse_empty,
    )


def _read_s0(path: Path) -> tuple[NDArray[Any], int, int]:
    with h5py.File(path, "r") as f:
        block = int(f.attrs["block_size"][0])
        return f["labels/s0"][...], block, int(f.attrs["max_label"])


class CampaignError(Exception):
    """The base pyramids could not be prepared."""


def _must(argv: Sequence[str], cwd: Path) -> str:
    p = subprocess.run([*SEGMEND, *argv], cwd=cwd, capture_output=True, text=True, check=False)
    if p.returncode:
        raise CampaignError(f"segmend {' '.join(argv)}: {telling_line(p.stderr)}")
    return p.stdout


def prepare(root: Path) -> Facts:
    """Build the base pyramids (the real cube and a small crop) and an edited copy."""
    cube = f"{CUBE}:/automated/bodies"
    for name in ("base", "bare", "small", "edited"):
        (root / name).mkdir(parents=True)
    base, bare, small, edited = (root / n / "seg.h5" for n in ("base", "bare", "small", "edited"))
    _must(["build", cube, str(bare), "--image", f"{CUBE}:/raw"], root)
    shutil.copy2(bare, base)
    _must(["reindex", str(base)], root)
    with h5py.File(CUBE, "r") as f:
        crop = f["automated/bodies"][:64, :128, :128]
    crop_npy = root / "crop.npy"
    np.save(crop_npy, crop)
    _must(["build", str(crop_npy), str(small), "--block-size", "32"], root)
    _must(["reindex", str(small)], root)
    lf = label_facts(*_read_s0(base))
    small_lf = label_facts(*_read_s0(small))
    copy_dataset(base, edited)
    target, label = lf.pairs[-1]
    _must(["merge", str(edited), str(target), str(label)], root)
    (root / "split.rle").write_bytes(rle_bytes(lf.split_spans))
    out = _must(
        ["split", str(edited), str(lf.split_target), "--rles", str(root / "split.rle")], root
    )
    _must(["nextlabel", str(edited), "3"], root)
    with sqlite3.connect(f"file:{edited}.segmend/journal.sqlite?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT record FROM mutations WHERE action = 'split'").fetchone()
    return Facts(
        root=root,
        base=base,
        bare=bare,
        small=small,
        edited=edited,
        crop_npy=crop_npy,
        lf=lf,
        small_lf=small_lf,
        edited_split_label=int(json.loads(out)["label"]),
        blob_ref=str(json.loads(row[0])["Split"]),
    )


def copy_dataset(src: Path, dst: Path) -> None:
    """Copy a pyramid file and its sidecar folder (journal), not its lock files."""
    shutil.copy2(src, dst)
    side = Path(f"{src}.segmend")
    if side.is_dir():
        shutil.copytree(side, f"{dst}.segmend", ignore=shutil.ignore_patterns("*.lock"))


# ============================================================================ processes


@dataclass(frozen=True)
class Proc:
    """A finished process: exit status (None: hung and killed), output, seconds."""

    rc: int | None
    out: str
    err: str
    seconds: float = 0.0


class Watched:
    """A running process whose stdout lines and stderr are collected by threads."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: dict[str, str], stdin: bool = False):
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            start_new_session=True,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.out: list[str] = []
        self._err: list[bytes] = []
        threading.Thread(target=self._pump_out, daemon=True).start()
        self._err_thread = threading.Thread(target=self._pump_err, daemon=True)
        self._err_thread.start()

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.out.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        self._err.append(self.proc.stderr.read())

    def wait_line(self, pred: Callable[[str], bool], timeout: float = CMD_TIMEOUT) -> str | None:
        """The next stdout line satisfying ``pred``; None at end of output or timeout."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self.lines.put(None)
                return None
            if pred(line):
                return line
        return None

    def send(self, text: str) -> None:
        if self.proc.stdin is not None:
            with suppress(OSError):
                self.proc.stdin.write(text.encode())
                self.proc.stdin.flush()

    def signal(self, sig: int) -> None:
        with suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)

    def finish(self, timeout: float = CMD_TIMEOUT) -> Proc:
        """Close stdin, wait (killing the process group after ``timeout``)."""
        if self.proc.stdin is not None:
            with suppress(OSError):
                self.proc.stdin.close()
        try:
            rc: int | None = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            rc = None
        self._err_thread.join(timeout=30)
        with suppress(queue.Empty):
            while self.lines.get(timeout=30) is not None:
                pass
        self.lines.put(None)
        err = b"".join(self._err).decode(errors="replace")
        return Proc(rc, "\n".join(self.out), err, time.monotonic() - self.start)


def run_proc(
    argv: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    stdin: bytes | None = None,
    timeout: float = CMD_TIMEOUT,
) -> Proc:
    """Run a process to its end (killing its group after ``timeout``)."""
    start = time.monotonic()
    p = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        start_new_session=True,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = p.communicate(stdin, timeout=timeout)
        rc: int | None = p.returncode
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        rc = None
    return Proc(
        rc, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - start
    )


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


# ============================================================================ state


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


# ============================================================================ outcomes


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


# ============================================================================ one case's folder


class Run:
    """One case's folder: ``data/seg.h5`` (the dataset), ``aux/``, ``home/``."""

    def __init__(self, facts: Facts, folder: Path):
        self.facts = facts
        self.dir = folder
        self.data = folder / "data"
        self.aux = folder / "aux"
        self.home = folder / "home"
        for d in (self.data, self.aux, self.home):
            d.mkdir()
        self.file = self.data / "seg.h5"
        self.lf = facts.lf
        self.mounts: list[Path] = []
        drop = ("DISPLAY", "WAYLAND_DISPLAY", "SEGMEND_CONFIG", "QT_QPA_PLATFORM")
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        self.env.update(
            HOME=str(self.home),
            XDG_DATA_HOME=str(self.home / "share"),
            XDG_CONFIG_HOME=str(self.home / ".config"),
        )

    def prepare(self, base: str | None, where: Path | None = None) -> None:
        """Copy a base pyramid to ``where`` (default ``data/seg.h5``)."""
        if where is not None:
            self.file = where
        if base is None:
            return
        src = {
            "base": self.facts.base,
            "bare": self.facts.bare,
            "small": self.facts.small,
            "edited": self.facts.edited,
        }[base]
        copy_dataset(src, self.file)
        if base == "small":
            self.lf = self.facts.small_lf

    def fill(self, arg: str) -> str:
        return arg.replace("{f}", str(self.file)).replace("{d}", str(self.dir))

    def show(self, argv: Sequence[str], prog: str = "segmend") -> str:
        text = " ".join(shlex.quote(a.replace(f"{self.dir}/", "")) for a in argv)
        text = f"{prog} {text}"
        return text if len(text) <= 160 else text[:157] + "..."

    def segmend(
        self,
        *argv: str,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
        timeout: float = CMD_TIMEOUT,
    ) -> Proc:
        return run_proc([*SEGMEND, *argv], self.dir, env or self.env, stdin, timeout)

    def watch(self, *argv: str, stdin: bool = False) -> Watched:
        return Watched([*SEGMEND, *argv], self.dir, self.env, stdin)

    def helper(self, role: str, *argv: str, stdin: bool = False) -> Watched:
        return Watched([PY, str(THIS), "--helper", role, *argv], self.dir, self.env, stdin)

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.aux / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def mount(self, *args: str, at: Path) -> None:
        subprocess.run(["mount", *args, str(at)], check=True, capture_output=True)
        self.mounts.append(at)

    def bind_ro(self, src: Path, at: Path) -> None:
        """A read-only view of ``src`` at ``at`` (a folder or a file)."""
        if not at.exists():
            at.mkdir() if src.is_dir() else at.touch()
        self.mount("--bind", str(src), at=at)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(at)], check=True, capture_output=True)

    def unmount_all(self) -> bool:
        """Unmount what this case mounted; False if something stays mounted."""
        ok = True
        for at in reversed(self.mounts):
            p = subprocess.run(["umount", str(at)], capture_output=True, check=False)
            if p.returncode:
                p = subprocess.run(["umount", "-l", str(at)], capture_output=True, check=False)
                ok = ok and p.returncode == 0
        self.mounts.clear()
        return ok

    # ------------------------------------------------------------------ checks

    def verify_problems(self, path: Path | None = None) -> list[str]:
        p = self.segmend("verify", str(path or self.file))
        if p.rc == 0:
            return []
        return [f"segmend verify exits {p.rc}: {first_line(p.out) or first_line(p.err)}"]

    def api_counts(self, labels: Sequence[int]) -> tuple[dict[int, int], str | None]:
        """Voxel counts through the API after reopening the dataset for writing."""
        w = self.helper("api-counts", str(self.file), *map(str, labels))
        p = w.finish()
        try:
            got = json.loads(p.out.splitlines()[-1])
            return {int(k): int(v) for k, v in got.items()}, None
        except (ValueError, IndexError):
            return {}, first_line(p.err) or f"api-counts exit {p.rc}"

    def reopen(
        self, acked: Sequence[tuple[int, int]], journaled: Sequence[tuple[int, int]] = ()
    ) -> tuple[list[str], list[str]]:
        """(problems, lost) of merges once every writer is gone.

        ``segmend verify`` runs first (a read-only command: the file should catch
        up with the journal); then a plain h5py read shows what plain readers
        see; then the API reopens the dataset for writing: an acknowledged merge
        whose label still has voxels there is lost.
        """
        problems = self.verify_problems()
        everything = list(dict.fromkeys([*acked, *journaled]))
        if not everything:
            return problems, []
        try:
            levels, rule = plain_levels(self.file)
        except OSError as exc:
            return [*problems, f"plain h5py cannot read the file: {exc}"], []
        if problem := level_problem(levels, rule):
            problems.append(f"plain reader sees an inconsistent file: {problem}")
        behind = [v for _, v in everything if np.any(levels[0] == np.uint64(v))]
        if behind:
            problems.append(
                f"the HDF5 file lacks {len(behind)} of {len(everything)} journaled merges "
                "after segmend verify"
            )
        counts, error = self.api_counts([v for _, v in everything])
        if error:
            return [*problems, f"reopening for writing fails: {error}"], []
        lost = [f"{t}<-{v}" for t, v in acked if counts.get(v)]
        gone = [f"{t}<-{v}" for t, v in journaled if counts.get(v) and (t, v) not in acked]
        if gone:
            problems.append(f"{len(gone)} merges listed by the journal are missing after reopening")
        lost_text = [
            f"{len(lost)} of {len(acked)} acknowledged merges lost ({', '.join(lost[:3])})"
        ]
        return problems, lost_text if lost else []


# ============================================================================ case kinds


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


# ---------------------------------------------------------------------------- checks


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


def split_blob(voxels: int) -> Check:
    """``blob get --out aux/b`` wrote the moved voxels as headerless RLE spans."""

    def check(r: Run, p: Proc) -> list[str]:
        data = (r.aux / "b").read_bytes()
        spans = np.frombuffer(data[: len(data) // 16 * 16], dtype="<i4").reshape(-1, 4)
        if len(data) % 16 or int(spans[:, 3].sum()) != voxels:
            return [f"the blob holds {len(data)} bytes, not spans of {voxels} voxels"]
        return []

    return check


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


# ============================================================================ the case table


def all_cases(facts: Facts) -> list[Case]:
    """Every case of the campaign, in order."""
    groups: list[Iterable[Case]] = [
        argument_cases(facts.lf),
        edit_result_cases(facts),
        build_cases(facts),
        file_cases(facts),
        apply_cases(facts.lf),
        config_cases(facts.lf),
        kafka_cases(facts.lf),
        pipe_cases(facts),
        readonly_cases(facts),
        concurrency_cases(facts.lf),
        fault_cases(facts),
    ]
    return [case for group in groups for case in group]


# ---------------------------------------------------------------------------- arguments


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


# ---------------------------------------------------------------------------- valid edits


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
        check=split_blob(lf.split_voxels),
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


# ---------------------------------------------------------------------------- build, demo


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


def no_journal(r: Run, p: Proc) -> list[str]:
    return ["the old journal is still there"] if journal_count(r.file) > 0 else []


def _dead_pid() -> int:
    limit = int(Path("/proc/sys/kernel/pid_max").read_text())
    return next(p for p in range(limit - 1, 1, -1) if not Path(f"/proc/{p}").exists())


def _stale_partial(name: str) -> Callable[[Run], None]:
    def setup(r: Run) -> None:
        (r.data / f".{name}.partial-{_dead_pid()}").write_bytes(b"\0" * 100_000)

    return setup


# ---------------------------------------------------------------------------- bad files


def file_cases(facts: Facts) -> Iterator[Case]:
    """Files that are not (good) pyramids: every command refuses them, changing nothing."""
    cat = "files"
    lf = facts.lf
    t, v = lf.pairs[3]
    kinds: dict[str, Callable[[Run], None]] = {
        "missing": _nothing,
        "folder": _written(None),
        "empty": _written(b""),
        "text": _written(b"labels\n" * 100),
        "zeros": _written(b"\0" * 1_000_000),
        "npy": _written(NPY_HEADER + b"\0" * 64),
        "truncated-half": _copy_truncated(facts.bare, 0.5),
        "truncated-head": _copy_truncated(facts.bare, 1024),
        "plain-h5": _plain_h5,
        "float32-labels": _relabelled(facts.bare, np.float32),
        "int8-labels": _relabelled(facts.bare, np.int8),
        "no-s0": _edited_h5(facts.bare, _drop_s0),
        "future-version": _edited_h5(facts.bare, _set_attr("format_version", 999)),
        "block-size-zero": _edited_h5(facts.bare, _set_attr("block_size", [0, 0, 0])),
        "max-label-negative": _edited_h5(facts.bare, _set_attr("max_label", -5)),
        "s1-wrong-shape": _edited_h5(facts.bare, _shrink_s1),
        "journal-garbage": _garbage_journal,
        "journal-other-dataset": _foreign_journal,
    }
    commands = {
        "info": ["info", "{f}"],
        "verify": ["verify", "{f}"],
        "merge": ["merge", "{f}", str(t), str(v)],
    }
    readable = {
        "float32-labels",
        "int8-labels",
        "block-size-zero",
        "s1-wrong-shape",
        "journal-garbage",
        "journal-other-dataset",
    }
    for kind, setup in kinds.items():
        for cmd, argv in commands.items():
            tolerable = kind == "max-label-negative" or (cmd != "merge" and kind in readable)
            yield cli(
                cat,
                f"{kind}-{cmd}",
                argv,
                base=None,
                setup=setup,
                expect="any" if tolerable else "refused",
                ok_rc=(0, 1) if tolerable and cmd == "verify" else (0,),
            )
    for kind in ("float32-labels", "int8-labels", "truncated-half"):
        yield cli(
            cat,
            f"{kind}-split-coarse",
            ["split-coarse", "{f}", "1", "--block", "0,0,0"],
            base=None,
            setup=kinds[kind],
        )
        yield cli(cat, f"{kind}-reindex", ["reindex", "{f}"], base=None, setup=kinds[kind])
        yield cli(cat, f"{kind}-log", ["log", "{f}"], base=None, setup=kinds[kind], expect="any")
    yield cli(cat, "fifo-info", ["info", "{f}"], base=None, setup=_fifo, timeout=30)


NPY_HEADER = b"\x93NUMPY\x01\x00v\x00{'descr': '<u8', 'fortran_order': False, 'shape': (2, 2, 2), }"


def _nothing(r: Run) -> None:
    """The dataset is missing."""


def _fifo(r: Run) -> None:
    os.mkfifo(r.file)


def _written(data: bytes | None) -> Callable[[Run], None]:
    """A setup putting ``data`` (None: a folder) where the dataset should be."""

    def setup(r: Run) -> None:
        if data is None:
            r.file.mkdir()
        else:
            r.file.write_bytes(data)

    return setup


def _copy_truncated(src: Path, keep: float) -> Callable[[Run], None]:
    def setup(r: Run) -> None:
        data = src.read_bytes()
        r.file.write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])

    return setup


def _plain_h5(r: Run) -> None:
    with h5py.File(r.file, "w") as f:
        f["volume"] = np.arange(64, dtype=np.uint64).reshape(4, 4, 4)


def _edited_h5(src: Path, edit: Callable[[h5py.File], None]) -> Callable[[Run], None]:
    def setup(r: Run) -> None:
        shutil.copy2(src, r.file)
        with h5py.File(r.file, "r+") as f:
            edit(f)

    return setup


def _relabelled(src: Path, dtype: type[np.generic]) -> Callable[[Run], None]:
    """A copy of ``src`` whose label levels are rewritten as ``dtype`` (attributes kept)."""

    def edit(f: h5py.File) -> None:
        for name in list(f["labels"]):
            old = f[f"labels/{name}"]
            data, chunks = old[...], old.chunks
            del f[f"labels/{name}"]
            f.create_dataset(f"labels/{name}", data=(data % 100).astype(dtype), chunks=chunks)

    return _edited_h5(src, edit)


def _drop_s0(f: h5py.File) -> None:
    del f["labels/s0"]


def _set_attr(name: str, value: Any) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f.attrs[name] = value

    return edit


def _shrink_s1(f: h5py.File) -> None:
    data = f["labels/s1"][...]
    del f["labels/s1"]
    f["labels/s1"] = data[:-1]


def _garbage_journal(r: Run) -> None:
    shutil.copy2(r.facts.bare, r.file)
    side = Path(f"{r.file}.segmend")
    side.mkdir()
    (side / "journal.sqlite").write_bytes(b"SQLite format 3\0" + b"\xff" * 5000)


def _foreign_journal(r: Run) -> None:
    """The cube's pyramid beside the journal of the small crop (another dataset)."""
    shutil.copy2(r.facts.bare, r.file)
    shutil.copytree(
        f"{r.facts.small}.segmend", f"{r.file}.segmend", ignore=shutil.ignore_patterns("*.lock")
    )


# ---------------------------------------------------------------------------- apply


def apply_cases(lf: LabelFacts) -> Iterator[Case]:
    """Hostile ``segmend apply`` input."""
    cat = "apply"
    (t1, v1), (t2, v2), (t3, v3) = lf.pairs[4:7]

    def merge(t: int, v: int) -> str:
        return json.dumps({"Action": "merge", "Target": t, "Labels": [v]})

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
        [merge(t1, v1), merge(t2, v2), merge(t3, v3)],
        expect="ok",
        merges=[(t1, v1), (t2, v2), (t3, v3)],
    )
    yield _apply(cat, "valid-stdin", [merge(t1, v1)], expect="ok", merges=[(t1, v1)], stdin=True)
    yield _apply(cat, "empty-file", [], expect="ok")
    yield _apply(cat, "blank-lines", ["", "   ", ""], expect="ok")
    yield _apply(
        cat, "bad-third-line", [merge(t1, v1), merge(t2, v2), "{oops"], partial=((t1, v1), (t2, v2))
    )
    yield _apply(
        cat,
        "undoes-mismatch",
        [merge(t1, v1), merge(t2, v2), json.dumps({"Action": "undo", "Undoes": 1})],
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


def merged_all(merges: Sequence[tuple[int, int]]) -> Check:
    def check(r: Run, p: Proc) -> list[str]:
        return [q for t, v in merges for q in merged(t, [v])(r, p)]

    return check


# ---------------------------------------------------------------------------- config, Kafka


def config_cases(lf: LabelFacts) -> Iterator[Case]:
    """A bad ``~/.config/segmend/config.toml``: edits are refused, changing nothing."""
    cat = "config"
    t, v = lf.pairs[7]
    closed = 'bootstrap_servers = "127.0.0.1:1"\n'
    bad = {
        "connect-timeout-inf": closed + "connect_timeout_s = inf\n",
        "connect-timeout-nan": closed + "connect_timeout_s = nan\n",
        "request-timeout-neg": closed + "request_timeout_s = -1\n",
        "max-backoff-zero": "max_backoff_s = 0\n",
        "max-backoff-inf": closed + "max_backoff_s = inf\n",
        "timeout-string": 'connect_timeout_s = "5"\n',
        "unknown-key": 'bootstrap_server = "127.0.0.1:1"\n',
        "servers-empty": 'bootstrap_servers = ""\n',
        "servers-empty-list": "bootstrap_servers = []\n",
        "servers-mixed-list": 'bootstrap_servers = ["127.0.0.1:1", 5]\n',
        "servers-no-port": 'bootstrap_servers = "localhost"\n',
        "security-bogus": closed + 'security_protocol = "TLS"\n',
        "sasl-no-password": closed + 'security_protocol = "SASL_SSL"\nsasl_mechanism = "PLAIN"\n'
        'sasl_username = "u"\n',
        "password-env-unset": 'sasl_password_env = "SEGMEND_CAMPAIGN_UNSET"\n',
        "topic-prefix-slash": 'topic_prefix = "a/b"\n',
        "check-hostname-string": 'ssl_check_hostname = "yes"\n',
    }
    for name, body in bad.items():
        yield cli(cat, name, ["merge", "{f}", str(t), str(v)], setup=_config("[kafka]\n" + body))
    yield cli(cat, "not-toml", ["merge", "{f}", str(t), str(v)], setup=_config("[kafka\nx = \n"))
    yield cli(
        cat, "kafka-not-table", ["merge", "{f}", str(t), str(v)], setup=_config("kafka = 3\n")
    )
    yield cli(
        cat, "not-utf8", ["merge", "{f}", str(t), str(v)], setup=_config(b"\xff\xfe[kafka]\n")
    )
    yield cli(cat, "config-is-folder", ["merge", "{f}", str(t), str(v)], setup=_config(None))
    yield cli(
        cat,
        "status-connect-timeout-nan",
        ["events", "status", "{f}"],
        setup=_config("[kafka]\n" + closed + "connect_timeout_s = nan\n"),
    )
    yield cli(
        cat,
        "empty-section",
        ["merge", "{f}", str(t), str(v)],
        expect="ok",
        setup=_config("[kafka]\n"),
        check=merged(t, [v]),
    )
    yield cli(
        cat,
        "other-section",
        ["merge", "{f}", str(t), str(v)],
        expect="any",
        setup=_config("[display]\ntheme = 'dark'\n"),
        check=merged(t, [v]),
    )
    yield cli(
        cat,
        "closed-port",
        ["merge", "{f}", str(t), str(v)],
        expect="ok",
        setup=_config("[kafka]\n" + closed + "connect_timeout_s = 0.5\n"),
        check=check_all(merged(t, [v]), quick),
    )


def _config(body: str | bytes | None) -> Callable[[Run], None]:
    """A setup writing ``~/.config/segmend/config.toml`` (None: a folder there)."""

    def setup(r: Run) -> None:
        path = r.home / ".config" / "segmend" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        if body is None:
            path.mkdir()
        else:
            path.write_bytes(body.encode() if isinstance(body, str) else body)

    return setup


def quick(r: Run, p: Proc) -> list[str]:
    return [] if p.seconds < SLOW_EDIT_S else [f"took {p.seconds:.0f} s"]


def kafka_cases(lf: LabelFacts) -> Iterator[Case]:
    """Kafka on a closed port never blocks or fails an edit; bad broker names are refused."""
    cat = "kafka"
    t, v = lf.pairs[8]
    k = ["--kafka", "127.0.0.1:1"]
    yield cli(
        cat,
        "merge-closed-port",
        ["merge", "{f}", str(t), str(v), *k],
        expect="ok",
        check=check_all(merged(t, [v]), quick),
    )
    yield cli(
        cat,
        "split-closed-port",
        ["split", "{f}", str(lf.split_target), "--rles", "{d}/aux/s.rle", *k],
        expect="ok",
        setup=writes("s.rle", rle_bytes(lf.split_spans)),
        check=check_all(split_into(lf.split_target, lf.split_voxels), quick),
    )
    yield cli(
        cat,
        "nextlabel-closed-port",
        ["nextlabel", "{f}", "2", *k],
        expect="ok",
        check=check_all(reserved(2), quick),
    )
    yield cli(
        cat,
        "undo-closed-port",
        ["undo", "{f}", *k],
        base="edited",
        expect="ok",
        check=check_all(verified, quick),
    )
    yield cli(
        cat,
        "merge-ipv6-closed-port",
        ["merge", "{f}", str(t), str(v), "--kafka", "[::1]:1"],
        expect="ok",
        check=check_all(merged(t, [v]), quick),
    )
    yield cli(
        cat,
        "status-closed-port",
        ["events", "status", "{f}", *k],
        base="edited",
        expect="ok",
        readonly=True,
    )
    yield cli(
        cat, "flush-closed-port", ["events", "flush", "{f}", *k, "--timeout", "2"], base="edited"
    )
    for name, broker in (
        ("no-port", "localhost"),
        ("port-zero", "127.0.0.1:0"),
        ("port-99999", "127.0.0.1:99999"),
        ("empty", ""),
        ("half-list", "127.0.0.1:1,"),
        ("spaces", "a b:1"),
    ):
        yield cli(cat, f"merge-broker-{name}", ["merge", "{f}", str(t), str(v), "--kafka", broker])
    yield cli(
        cat,
        "merge-topic-prefix-bad",
        ["merge", "{f}", str(t), str(v), *k, "--topic-prefix", "bad topic!"],
    )
    yield cli(
        cat,
        "merge-topic-prefix-long",
        ["merge", "{f}", str(t), str(v), *k, "--topic-prefix", "p" * 300],
    )


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
        line = json.dumps({"Action": "merge", "Target": t, "Labels": [v]})
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


# ---------------------------------------------------------------------------- concurrency


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


def _pairs_file(r: Run, name: str, pairs: Sequence[tuple[int, int]]) -> Path:
    return r.write(name, json.dumps([list(p) for p in pairs]))


def _writer_acks(out: str) -> list[tuple[int, int]]:
    return [(int(a["Target"]), int(a["Labels"][0])) for a in acks(out) if "Target" in a]


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
            "writer", str(r.file), str(_pairs_file(r, "w.json", first)), "--pause", "8", stdin=True
        )
        ready = writer.wait_line(lambda line: '"paused"' in line)
        alt = _alt_path(r, spelling)
        t, v = second
        if cli_second:
            argv = ["merge", alt, str(t), str(v)]
            p = r.segmend(*argv)
            shown = r.show(argv)
        else:
            w2 = r.helper("writer", alt, str(_pairs_file(r, "w2.json", [second])))
            p = w2.finish()
            shown = f"open_dataset({alt!r}, 'r+').merge({t}, [{v}])"
        writer.send("go\n")
        done = writer.finish()
        problems = [] if ready else ["the first writer did not start"]
        if done.rc != 0:
            problems.append(f"the first writer failed: {first_line(done.err) or done.rc}")
        acked = _writer_acks(done.out)
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
        str(_pairs_file(r, "w.json", r.lf.pairs[10:20])),
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
        more, lost = r.reopen(_writer_acks(done.out))
        problems += more
    else:
        n = len(_writer_acks(done.out))
        lost = [f"build replaced the file under a live writer: its {n} acknowledged edits are gone"]
    proc = Proc(p.rc, p.out, p.err + tracebacks(done.err), p.seconds)
    return Outcome(r.show(argv), "refused", proc, p.rc == 0, problems=problems, lost=lost)


def _readers(readers: Sequence[Sequence[str]]) -> Callable[[Run], Outcome]:
    """Readers loop while a writer makes 40 merges; none may fail or see a torn state."""

    def run(r: Run) -> Outcome:
        r.prepare("base")
        pairs = _pairs_file(r, "w.json", r.lf.pairs[10:50])
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
        more, lost = r.reopen(_writer_acks(done.out))
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
    pairs = _pairs_file(r, "p.json", r.lf.pairs[:4])
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


# ---------------------------------------------------------------------------- faults


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


def _interrupt_apply(sig: int, after: int) -> Callable[[Run], Outcome]:
    """``segmend apply`` of 60 merges, interrupted once ``after`` are journaled."""

    def run(r: Run) -> Outcome:
        r.prepare("base")
        pairs = r.lf.pairs[50:110]
        ops = r.write(
            "ops.jsonl",
            "".join(
                json.dumps({"Action": "merge", "Target": t, "Labels": [v]}) + "\n" for t, v in pairs
            ),
        )
        w = r.watch("apply", str(r.file), str(ops))
        deadline = time.monotonic() + CMD_TIMEOUT
        while (
            w.proc.poll() is None
            and time.monotonic() < deadline
            and max(len(w.out), journal_count(r.file)) < after
        ):
            time.sleep(0.02)
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
        o = Outcome(
            r.show(["apply", str(r.file), str(ops)]) + f" (signal {sig} after {after})",
            "refused" if sig == signal.SIGINT else "ok",
            p,
            p.rc == 0,
            problems=problems + more,
            lost=lost,
            scenario=sig == signal.SIGKILL,
        )
        return o

    return run


def _kill_writer(after: int) -> Callable[[Run], Outcome]:
    def run(r: Run) -> Outcome:
        r.prepare("base")
        pairs = r.lf.pairs[50:90]
        w = r.helper(
            "writer", str(r.file), str(_pairs_file(r, "w.json", pairs)), "--interval", "0.1"
        )
        for _ in range(after):
            if w.wait_line(lambda line: "MutationID" in line) is None:
                break
        w.signal(signal.SIGKILL)
        p = w.finish()
        problems, lost = r.reopen(_writer_acks(p.out))
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
    deadline = time.monotonic() + CMD_TIMEOUT
    while (
        w.proc.poll() is None
        and time.monotonic() < deadline
        and not list(r.data.glob(".*partial*"))
    ):
        time.sleep(0.02)
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
        r.write(
            "ops.jsonl",
            "".join(
                json.dumps({"Action": "merge", "Target": t, "Labels": [v]}) + "\n" for t, v in pairs
            ),
        )
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


# ============================================================================ helpers (processes)


def _say(obj: Any) -> None:
    print(json.dumps(obj), flush=True)


def _error_line(exc: BaseException) -> str:
    from app.model.error_text import one_line
    from app.model.errors import SegmendError

    text = one_line(exc)
    return text if isinstance(exc, SegmendError) else f"{type(exc).__name__}: {text}"


def helper_writer(argv: list[str]) -> int:
    """``writer FILE PAIRS.json [--interval S] [--pause N]``: merge each pair, printing
    each acknowledged MutationID; with ``--pause N`` stop after N merges until a line
    arrives on stdin, and at the end wait for stdin to close."""
    from app.model.dataset import open_dataset

    p = argparse.ArgumentParser(prog="writer")
    p.add_argument("file")
    p.add_argument("pairs", type=Path)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--pause", type=int)
    args = p.parse_args(argv)
    pairs = json.loads(args.pairs.read_text())
    try:
        ds = open_dataset(args.file, "r+", checkpoint_interval=args.interval)
    except Exception as exc:
        print(f"segmend: error: {_error_line(exc)}", file=sys.stderr)
        return 1
    code = 0
    try:
        for i, (target, label) in enumerate(pairs):
            if i == args.pause:
                _say({"paused": i})
                sys.stdin.readline()
            _say({"MutationID": ds.merge(target, [label]), "Target": target, "Labels": [label]})
        if args.pause is not None:
            sys.stdin.read()
    except Exception as exc:
        print(f"segmend: error: {_error_line(exc)}", file=sys.stderr)
        code = 1
    finally:
        try:
            ds.close()
        except Exception as exc:
            print(f"segmend: error: close: {_error_line(exc)}", file=sys.stderr)
            code = 1
    return code


def helper_reader(role: str, argv: list[str]) -> int:
    """``api-reader|h5-reader|cli-reader FILE STOP PAIRS.json [COMMAND]``: read the whole
    dataset over and over until STOP exists; print a JSON summary."""
    from app.model.dataset import open_dataset

    file, stop, pairs_path = argv[0], Path(argv[1]), Path(argv[2])
    labels = sorted({v for pair in json.loads(pairs_path.read_text())[:8] for v in pair})
    reads, failures, inconsistent, refused = 0, [], [], 0
    _say({"ready": True})
    while True:
        try:
            if role == "api-reader":
                with open_dataset(file, "r") as ds:
                    levels = [np.asarray(ds.labels(s)[...]) for s in range(ds.n_scales)]
                    sizes = {v: ds.label_size(v) for v in labels}
                    rule = ds.store.rule
                problem = level_problem(levels, rule) or next(
                    (
                        f"index says label {v} has {n} voxels, s0 holds "
                        f"{np.count_nonzero(levels[0] == np.uint64(v))}"
                        for v, n in sizes.items()
                        if n != np.count_nonzero(levels[0] == np.uint64(v))
                    ),
                    None,
                )
            elif role == "h5-reader":
                try:
                    levels, rule = plain_levels(Path(file))
                except OSError as exc:
                    if "lock" not in str(exc).lower():
                        raise
                    refused += 1
                    levels = []
                problem = level_problem(levels, rule) if levels else None
            else:
                p = subprocess.run(
                    [*SEGMEND, argv[3], file], capture_output=True, text=True, check=False
                )
                if p.returncode:
                    text = first_line(p.stdout + "\n" + p.stderr)
                    raise RuntimeError(text or f"exit {p.returncode}")
                problem = None
            if problem:
                inconsistent.append(problem)
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}"[:300])
        reads += 1
        if stop.exists():
            break
    _say(
        {
            "reads": reads,
            "failures": failures,
            "inconsistent": inconsistent,
            "refused_at_open": refused,
        }
    )
    return 0


def helper_api_counts(argv: list[str]) -> int:
    """``api-counts FILE LABEL...``: open for writing, print each label's voxels in s0."""
    from app.model.dataset import open_dataset

    try:
        with open_dataset(argv[0], "r+") as ds:
            s0 = np.asarray(ds.labels(0)[...])
    except Exception as exc:
        print(f"segmend: error: {_error_line(exc)}", file=sys.stderr)
        return 1
    _say({v: int(np.count_nonzero(s0 == np.uint64(int(v)))) for v in argv[1:]})
    return 0


def helper_main(role: str, argv: list[str]) -> int:
    if role == "writer":
        return helper_writer(argv)
    if role in ("api-reader", "h5-reader", "cli-reader"):
        return helper_reader(role, argv)
    if role == "api-counts":
        return helper_api_counts(argv)
    raise SystemExit(f"unknown helper role {role!r}")


# ============================================================================ running


_WORKER: dict[str, Any] = {}


def _init_worker(facts: Facts, keep: bool) -> None:
    _WORKER.update(cases={c.key: c for c in all_cases(facts)}, facts=facts, keep=keep)


@dataclass(frozen=True)
class Result:
    key: str
    outcome: str
    reason: str
    command: str
    stderr: str
    seconds: float
    folder: str


def run_case(key: str) -> Result:
    """Run one case in a fresh folder; classify it; remove the folder unless it is kept."""
    case: Case = _WORKER["cases"][key]
    facts: Facts = _WORKER["facts"]
    folder = Path(tempfile.mkdtemp(prefix=key.replace("/", "-") + "-", dir=facts.root / "cases"))
    r = Run(facts, folder)
    start = time.monotonic()
    try:
        o = case.run(r)
        outcome, reason = classify(o)
        command, stderr = o.command, telling_line(o.proc.err)
        record = [
            f"{outcome}: {reason}",
            f"$ {command}",
            f"exit {o.proc.rc}",
            *o.changes,
            *o.problems,
            *o.lost,
            "--- stdout",
            o.proc.out[-20_000:],
            "--- stderr",
            o.proc.err[-20_000:],
        ]
    except Exception as exc:
        outcome, reason = "harness", f"the campaign itself failed: {type(exc).__name__}: {exc}"
        command, stderr, record = "", "", [traceback.format_exc()]
    finally:
        unmounted = r.unmount_all()
    (folder / "outcome.txt").write_text("\n".join(record) + "\n")
    if unmounted and not _WORKER["keep"] and outcome in ("ok", "refused"):
        shutil.rmtree(folder, ignore_errors=True)
    return Result(key, outcome, reason, command, stderr, time.monotonic() - start, str(folder))


def selected(cases: Sequence[Case], patterns: Sequence[str]) -> list[Case]:
    if not patterns:
        return list(cases)
    return [
        c
        for c in cases
        if any(
            fnmatch.fnmatch(c.key, p) if any(ch in p for ch in "*?[") else p in c.key
            for p in patterns
        )
    ]


def report_line(res: Result) -> str:
    text = f"{res.outcome:9} {res.key}: {res.reason}\n          $ {res.command}"
    if res.stderr:
        text += f"\n          stderr: {res.stderr[:300]}"
    return text


def summary(results: Sequence[Result]) -> str:
    columns = [*OUTCOMES, *(["harness"] if any(r.outcome == "harness" for r in results) else [])]
    categories = sorted({r.key.split("/")[0] for r in results})
    rows = [(cat, [r for r in results if r.key.startswith(cat + "/")]) for cat in categories]
    rows.append(("total", list(results)))
    head = f"{'category':14} {'cases':>6} " + " ".join(f"{c:>9}" for c in columns)
    lines = [head, "-" * len(head)]
    for name, rs in rows:
        counts = [sum(r.outcome == c for r in rs) for c in columns]
        lines.append(f"{name:14} {len(rs):>6} " + " ".join(f"{n:>9}" for n in counts))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run the cases whose name matches (glob, or a substring); repeatable",
    )
    parser.add_argument("--list", action="store_true", help="list the case names and exit")
    parser.add_argument("--keep", action="store_true", help="keep every case's folder")
    parser.add_argument("--workers", type=int, default=2, help="cases at once (default 2)")
    args = parser.parse_args(argv)
    cases = [c for c in all_cases(Facts.placeholder()) if IS_ROOT or not c.needs_root]
    chosen = selected(cases, args.only)
    if args.list:
        print("\n".join(c.key for c in chosen))
        return 0
    if not IS_ROOT:
        print(
            "campaign: not root: the cases that mount (read-only folders, full disks) are left out"
        )
    root = Path(tempfile.mkdtemp(prefix="segmend-campaign-"))
    (root / "cases").mkdir()
    print(f"campaign: {len(chosen)} cases in {root}; preparing the base pyramids", flush=True)
    try:
        facts = prepare(root)
    except (CampaignError, OSError, ValueError, KeyError, sqlite3.Error) as exc:
        print(f"campaign: cannot prepare the base pyramids: {exc}")
        return 0
    results: list[Result] = []
    with ProcessPoolExecutor(
        args.workers, initializer=_init_worker, initargs=(facts, args.keep)
    ) as pool:
        futures = [pool.submit(run_case, c.key) for c in chosen]
        for future in as_completed(futures):
            res = future.result()
            results.append(res)
            if res.outcome not in ("ok", "refused"):
                print(report_line(res), flush=True)
    results.sort(key=lambda res: res.key)
    print()
    print(summary(results))
    kept = [res for res in results if Path(res.folder).exists()]
    if kept:
        print(f"\nthe folders of {len(kept)} cases are kept under {root}/cases")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--helper"]:
        sys.exit(helper_main(sys.argv[2], sys.argv[3:]))
    sys.exit(main())
