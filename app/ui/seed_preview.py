"""A seeded split's preview: computed on a pool thread, shown and described on the GUI thread.

:func:`compute_preview` runs :func:`app.model.seeded_split.seeded_split` (the
watershed, cancellable between its steps) and counts each part's voxels; the
:class:`SeedPreview` it returns is new and nothing on the pool thread keeps
it, so it crosses to the GUI thread as it is.  :func:`preview_text` is the
status line the seed tool shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.model.geometry import Coord
from app.ui.texts import count

if TYPE_CHECKING:
    from app.model.dataset import Dataset
    from app.model.seeded_split import SeededSplit


@dataclass(frozen=True)
class SeedPreview:
    """A computed seeded split, the seeds it was computed from and the voxels of each part.

    ``sizes[k - 1]``: voxels of group k's part; the last group's counts every
    voxel of the body not in another part (outside the computed box too).
    """

    split: SeededSplit
    seeds: list[list[Coord]]
    sizes: tuple[int, ...]


def compute_preview(ds: Dataset, body: int, seeds: list[list[Coord]],
                    cancelled: Callable[[], bool]) -> SeedPreview:
    """The seeded split of ``body`` by ``seeds`` (s0 voxels z, y, x; one list per group),
    without changing anything: in labelmap mode, whole supervoxels.  Runs on a pool thread.

    Raises
    ------
    app.model.errors.InvalidMutationError
        Naming the first seed that is wrong (outside the volume, off the body, in a
        supervoxel holding seeds of another group...).
    app.model.errors.CancelledError
        ``cancelled()`` turned true.
    """
    if ds.labelmap:
        from app.model.labelmap.seeded_split import seeded_cleave

        whole = seeded_cleave(ds, body, seeds, cancelled=cancelled)
        return SeedPreview(whole.split, seeds, whole.sizes)
    from app.model.seeded_split import seeded_split

    split = seeded_split(ds, body, seeds, cancelled=cancelled)
    sizes = [int(n) for n in np.bincount(split.parts.ravel(), minlength=len(seeds) + 1)]
    sizes[-1] = ds.label_size(body) - sum(sizes[1:-1])
    return SeedPreview(split, seeds, tuple(sizes[1:]))


def preview_text(body: int, sizes: tuple[int, ...]) -> str:
    """The status line of a preview: ``"seeded split preview: 1,234 voxels become a new
    body, 5,678 stay 42"``."""
    *new, stay = sizes
    if len(new) == 1:
        parts = f"{count(new[0], 'voxel')} {'becomes' if new[0] == 1 else 'become'} a new body"
    else:
        parts = f"parts of {' / '.join(f'{n:,}' for n in new)} voxels become new bodies"
    return f"seeded split preview: {parts}, {stay:,} stay {body}"
