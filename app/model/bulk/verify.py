"""Check a pyramid: every level must equal its recompute from the level below."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.model.errors import CancelledError
from app.model.geometry import Coord
from app.model.storage.octants import refresh_block
from app.model.storage.store import IMAGE, LABELS, PyramidStore


@dataclass(frozen=True)
class BlockMismatch:
    """One stored block that differs from its recompute."""

    kind: str
    scale: int
    block: Coord
    voxels: int
    first_voxel: Coord
    expected: int
    found: int

    def describe(self) -> str:
        """One line naming the block, the count and the first differing voxel."""
        return (
            f"{self.kind}/s{self.scale} block {self.block}: {self.voxels} voxels differ; "
            f"first at voxel {self.first_voxel}: expected {self.expected}, found {self.found}"
        )


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_levels` (and of the label-index check)."""

    blocks_checked: int = 0
    mismatched_blocks: int = 0
    mismatches: list[BlockMismatch] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, checked: int, mismatches: list[BlockMismatch], max_reports: int) -> None:
        """Count ``checked`` blocks, of which ``mismatches`` differ; keep the
        first ``max_reports`` mismatches in (kind, scale, block) order, whatever
        order the blocks are checked in."""
        self.blocks_checked += checked
        self.mismatched_blocks += len(mismatches)
        for mismatch in mismatches:
            bisect.insort(self.mismatches, mismatch, key=_order)
        del self.mismatches[max_reports:]

    @property
    def ok(self) -> bool:
        """True if nothing differs."""
        return self.mismatched_blocks == 0 and not self.problems

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "ok": self.ok,
            "blocks_checked": self.blocks_checked,
            "mismatched_blocks": self.mismatched_blocks,
            "mismatches": [m.describe() for m in self.mismatches],
            "problems": list(self.problems),
        }


def verify_levels(
    store: PyramidStore,
    *,
    workers: int = 2,
    max_reports: int = 20,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> VerifyReport:
    """Recompute every level ≥ 1 from the one below, block by block, and compare.

    Parameters
    ----------
    store : PyramidStore
        The pyramid (read through its overlay, so staged edits count).
    workers : int
        Threads comparing blocks.
    max_reports : int
        How many mismatching blocks to describe (all are counted).
    """
    report = VerifyReport()
    jobs = level_jobs(store)
    lock = threading.Lock()

    def check(job: tuple[str, int, Coord]) -> None:
        if cancel is not None and cancel.is_set():
            raise CancelledError("verify cancelled")
        mismatch = compare_block(store, *job)
        with lock:
            report.add(1, [] if mismatch is None else [mismatch], max_reports)
            done = report.blocks_checked
        if progress is not None:
            progress(done, len(jobs))

    with ThreadPoolExecutor(workers, "segmend-verify") as pool:
        list(pool.map(check, jobs))
    return report


def _order(m: BlockMismatch) -> tuple[str, int, Coord]:
    return m.kind, m.scale, m.block


def level_jobs(store: PyramidStore) -> list[tuple[str, int, Coord]]:
    """Every block a verify recomputes: ``(kind, scale ≥ 1, coord)``."""
    return [
        (kind, lv.scale, coord)
        for kind in (LABELS, IMAGE)
        for lv in store.levels(kind)[1:]
        for coord in lv.coords()
    ]


def compare_block(store: PyramidStore, kind: str, scale: int, coord: Coord) -> BlockMismatch | None:
    """Block ``coord`` of ``scale`` against its recompute from the level below:
    None if equal."""
    expected = refresh_block(store, kind, scale, coord)
    found = store.read_block(kind, scale, coord)
    diff = expected != found
    if not diff.any():
        return None
    first = tuple(int(i) for i in np.argwhere(diff)[0])
    origin = tuple(c * b for c, b in zip(coord, store.block_size, strict=True))
    return BlockMismatch(
        kind,
        scale,
        coord,
        int(diff.sum()),
        tuple(o + i for o, i in zip(origin, first, strict=True)),  # type: ignore[arg-type]
        int(expected[first]),
        int(found[first]),
    )
