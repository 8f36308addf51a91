"""Check a pyramid: every level must equal its recompute from the level below."""

from __future__ import annotations

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
    jobs = [
        (kind, lv.scale, coord)
        for kind in (LABELS, IMAGE)
        for lv in store.levels(kind)[1:]
        for coord in lv.coords()
    ]
    lock = threading.Lock()

    def check(job: tuple[str, int, Coord]) -> None:
        if cancel is not None and cancel.is_set():
            raise CancelledError("verify cancelled")
        kind, scale, coord = job
        expected = refresh_block(store, kind, scale, coord)
        found = store.read_block(kind, scale, coord)
        diff = expected != found
        with lock:
            report.blocks_checked += 1
            if diff.any():
                report.mismatched_blocks += 1
                if len(report.mismatches) < max_reports:
                    first = tuple(int(i) for i in np.argwhere(diff)[0])
                    origin = tuple(c * b for c, b in zip(coord, store.block_size, strict=True))
                    report.mismatches.append(
                        BlockMismatch(
                            kind,
                            scale,
                            coord,
                            int(diff.sum()),
                            tuple(o + i for o, i in zip(origin, first, strict=True)),  # type: ignore[arg-type]
                            int(expected[first]),
                            int(found[first]),
                        )
                    )
            done = report.blocks_checked
        if progress is not None:
            progress(done, len(jobs))

    with ThreadPoolExecutor(workers, "segmend-verify") as pool:
        list(pool.map(check, jobs))
    report.mismatches.sort(key=lambda m: (m.kind, m.scale, m.block))
    return report
