"""The octant cascade: a block at scale k+1 is eight downsampled blocks of scale k.

Block sizes are even, so each 2×2×2 group of a child block lies inside that
child, and the child's downsample is exactly one octant of its parent (DVID's
labelblk does the same).  Refreshing a parent after some children changed
re-downsamples only those children's octants and keeps the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels import downsample_image_into, downsample_labels_into, downsample_palette_into
from app.model.store import LABELS, Coord, PyramidStore


def parent_of(coord: Coord) -> Coord:
    """The block of the next coarser scale that holds ``coord``'s octant."""
    return (coord[0] // 2, coord[1] // 2, coord[2] // 2)


def children_of(store: PyramidStore, kind: str, scale: int, parent: Coord) -> list[Coord]:
    """The (up to eight) blocks of ``scale - 1`` under block ``parent`` of ``scale``."""
    grid = store.level(kind, scale - 1).grid
    return [
        (2 * parent[0] + dz, 2 * parent[1] + dy, 2 * parent[2] + dx)
        for dz in (0, 1)
        for dy in (0, 1)
        for dx in (0, 1)
        if 2 * parent[0] + dz < grid[0]
        and 2 * parent[1] + dy < grid[1]
        and 2 * parent[2] + dx < grid[2]
    ]


def refresh_block(
    store: PyramidStore,
    kind: str,
    scale: int,
    parent: Coord,
    children: Iterable[Coord] | None = None,
    base: NDArray[Any] | None = None,
) -> NDArray[Any]:
    """Block ``parent`` of ``scale`` (≥ 1) recomputed from the blocks below it.

    Parameters
    ----------
    children : iterable of block coords, optional
        Only these children changed: their octants are recomputed and the rest
        is taken from ``base``.  None recomputes every octant.
    base : ndarray, optional
        The parent block as stored (required with ``children``).

    Returns
    -------
    ndarray
        A new array of the parent block's clipped shape and the level's dtype.
    """
    level = store.level(kind, scale)
    shape = tuple(s.stop - s.start for s in level.block_slices(parent))
    if children is None:
        out = np.empty(shape, level.dtype)
        todo = children_of(store, kind, scale, parent)
    else:
        assert base is not None and base.shape == shape
        out = base.copy()
        todo = list(children)
    half = tuple(b // 2 for b in store.block_size)
    for child in todo:
        palette = store.staged_palette(kind, scale - 1, child)
        block = store.read_block(kind, scale - 1, child) if palette is None else palette.index
        lo = [(c % 2) * h for c, h in zip(child, half, strict=True)]
        dst = out[tuple(slice(a, a + (n + 1) // 2) for a, n in zip(lo, block.shape, strict=True))]
        if palette is not None:
            downsample_palette_into(palette.index, palette.labels, dst, store.rule)
        elif kind == LABELS:
            downsample_labels_into(block, dst, store.rule)
        else:
            downsample_image_into(block, dst)
    return out
