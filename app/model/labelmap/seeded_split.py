"""The seeded split of a labelmap dataset: the watershed's parts turned into whole
supervoxels (:mod:`app.model.labelmap.seeded_cleave`), committed as cleaves.

:func:`seeded_cleave` computes the groups without changing anything (the app's
preview shows them); :func:`cleave_by_seeds` cleaves every group but the last
off the body, first group first (each cleave its own undo step, as the splits
of a seeded split in voxel mode), and undoes those made if a later one fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from app.model.dataset_reads import DatasetReads
from app.model.error_text import one_line
from app.model.errors import SegmendError
from app.model.labelmap.seeded_cleave import Assignment, assign, seeded_supervoxels
from app.model.seeded_split import (
    SeededSplit,
    Voxel,
    blocks_box,
    check_seeds,
    crop_of,
    seeded_split,
)

if TYPE_CHECKING:
    from app.model.dataset import Dataset, SplitResult


@dataclass(frozen=True)
class SeededCleave:
    """A seeded split of a labelmap body, by whole supervoxels.

    Attributes
    ----------
    split : SeededSplit
        The groups as voxels (what the cleaves commit), in a box that holds
        the watershed's crop and every supervoxel leaving the body; the body's
        voxels outside it stay with the last group.
    assignment : Assignment
        The group of each supervoxel of the crop.
    sizes : tuple of int
        Voxels of each group (the last: every voxel of the body not in another).
    """

    split: SeededSplit
    assignment: Assignment
    sizes: tuple[int, ...]

    def moved(self, group: int) -> NDArray[np.uint64]:
        """The supervoxels that group ``group`` (1-based, not the last) cleaves off."""
        return self.assignment.of_group(group)


def seeded_cleave(
    reads: DatasetReads,
    body: int,
    seeds: Sequence[Sequence[Voxel]],
    *,
    cancelled: Callable[[], bool] | None = None,
) -> SeededCleave:
    """Give each supervoxel of ``body`` to a seed group (labelmap mode); nothing changes.

    The seeds are checked first (as :func:`app.model.seeded_split.check_seeds`,
    then no supervoxel may hold seeds of two groups), then the watershed
    (:func:`app.model.seeded_split.seeded_split`) divides the body in a crop and
    its parts vote (:func:`app.model.labelmap.seeded_cleave.assign`).  The
    returned parts cover every supervoxel that leaves the body, whole: the
    crop grows to the blocks that hold them.

    Raises
    ------
    app.model.errors.InvalidMutationError
        Bad seeds, seeds of two groups in one supervoxel, a group left without
        a supervoxel.
    app.model.errors.CancelledError
        ``cancelled()`` returned True.
    """
    body = int(body)
    with reads.snapshot():
        groups = check_seeds(reads, body, seeds)
        level = reads.supervoxels(0)
        seeded = seeded_supervoxels([[int(level[v]) for v in group] for group in groups])
        watershed = seeded_split(reads, body, groups, cancelled=cancelled)
        crop = crop_of(watershed)
        svs = np.asarray(level[crop])
        n = len(groups)
        assignment = assign(watershed.parts, svs, n, seeded)
        moved = assignment.supervoxels[assignment.groups < n]
        lo, hi = blocks_box(reads, reads.supervoxel_blocks(moved))
        lo = np.minimum(lo, [s.start for s in crop])
        hi = np.maximum(hi, [s.stop for s in crop])
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        if box != crop:
            svs = np.asarray(level[box])
            on_body = np.asarray(reads.labels(0)[box]) == body
        else:
            on_body = watershed.parts > 0
        parts = assignment.paint(svs, on_body)
        sizes = [int(reads.supervoxel_sizes(assignment.of_group(k)).sum()) for k in range(1, n)]
        sizes.append(reads.label_size(body) - sum(sizes))
    origin = (int(lo[0]), int(lo[1]), int(lo[2]))
    return SeededCleave(SeededSplit(body, origin, parts), assignment, tuple(sizes))


def cleave_by_seeds(
    ds: Dataset, body: int, seeds: Sequence[Sequence[Voxel]], labels: Sequence[int | None]
) -> list[SplitResult]:
    """Cleave every seed group but the last off ``body`` (see :func:`seeded_cleave`):
    one cleave per group, first group first; the body keeps the last group's
    supervoxels.

    Parameters
    ----------
    ds : Dataset
        A labelmap dataset open for editing.
    labels : sequence of int or None
        The new body of each group but the last (None: the next free label),
        checked by :func:`app.model.seeded_split.check_new_labels`.

    Returns
    -------
    list of SplitResult
        The new body and the cleave's MutationID of each group but the last.

    Raises
    ------
    app.model.errors.InvalidMutationError
        As :func:`seeded_cleave`: before any cleave, so that nothing changes.
    app.model.errors.SegmendError
        A cleave failed (a full disk...): the cleaves made before it were
        undone (each undo a mutation of the log); if an undo failed too, the
        message names the bodies that stay cleaved off.
    """
    from app.model.dataset import SplitResult

    plan = seeded_cleave(ds, body, seeds)
    made: list[SplitResult] = []
    try:
        for k, label in enumerate(labels, start=1):
            cleaved, mutation_id = ds.cleave(body, plan.moved(k).tolist(), cleaved_label=label,
                                             force=True)  # (the caller checked the status)
            made.append(SplitResult(cleaved, mutation_id))
    except Exception as failure:
        _undo_made(ds, body, made, failure)
        raise
    return made


def _undo_made(ds: Dataset, body: int, made: list[SplitResult], failure: Exception) -> None:
    """Undo the cleaves ``made`` (the last first) after ``failure``; raises a
    SegmendError naming those left if one cannot be undone."""
    for at in range(len(made) - 1, -1, -1):
        try:
            top = ds.engine.history.top("undo")
            if top != made[at].mutation_id:
                raise SegmendError(f"mutation {top} came after cleave {made[at].mutation_id}")
            ds.undo()
        except Exception as exc:
            left = ", ".join(str(r.label) for r in made[: at + 1])
            stay = "body {} stays" if at == 0 else "bodies {} stay"
            raise SegmendError(
                f"seeded split of body {body} failed ({one_line(failure)}) and undoing its "
                f"cleaves failed too ({one_line(exc)}): {stay.format(left)} cleaved off"
            ) from failure
