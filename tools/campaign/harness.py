"""The harness: one case's folder (:class:`Run`), the process pool that runs the
cases (:func:`run_cases`), and the report (:func:`report_line`, :func:`summary`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .bases import Facts, copy_dataset
from .classify import (
    OUTCOMES,
    classify,
    first_line,
    level_problem,
    plain_levels,
    telling_line,
)
from .processes import CAMPAIGN, CMD_TIMEOUT, ROOT, SEGMEND, Proc, Watched, run_proc

if TYPE_CHECKING:
    from .kinds import Case

    CaseTable = Callable[[Facts], Sequence[Case]]  # every case, built from the bases' facts


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
        """A helper process (:mod:`.helpers`): ``python -m tools.campaign --helper ROLE``."""
        path = os.pathsep.join(filter(None, (str(ROOT), self.env.get("PYTHONPATH"))))
        env = {**self.env, "PYTHONPATH": path}
        return Watched([*CAMPAIGN, "--helper", role, *argv], self.dir, env, stdin)

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


_WORKER: dict[str, Any] = {}


def _init_worker(table: CaseTable, facts: Facts, keep: bool) -> None:
    _WORKER.update(cases={c.key: c for c in table(facts)}, facts=facts, keep=keep)


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


def run_cases(
    table: CaseTable, keys: Sequence[str], facts: Facts, workers: int, keep: bool
) -> Iterator[Result]:
    """Run the cases ``keys`` of ``table(facts)`` in a pool of ``workers`` processes,
    yielding each result as it comes."""
    with ProcessPoolExecutor(
        workers, initializer=_init_worker, initargs=(table, facts, keep)
    ) as pool:
        futures = [pool.submit(run_case, key) for key in keys]
        for future in as_completed(futures):
            yield future.result()


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
