"""The octant cascade: a block at scale k+1 is eight downsampled blocks of scale k.

Block sizes are even, so each 2×2×2 group of a child block lies inside that
child, and the child's downsample is exactly one octant of its parent (DVID's
labelblk does the same).  Refreshing a parent after some children changed
re-downsamples only those children's octants and keeps the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels import downsample_image_into, downsample_labels_into, downsample_palette_into
from app.model.geometry import Coord
from app.model.storage.store import LABELS, PyramidStore


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


def refresh_block(store: PyramidStore, kind: str, scale: int, parent: Coord) -> NDArray[Any]:
    """Block ``parent`` of ``scale`` (≥ 1) recomputed from every block below it.

    Returns
    -------
    ndarray
        A new array of the parent block's clipped shape and the level's dtype.
    """
    level = store.level(kind, scale)
    out = np.empty(tuple(s.stop - s.start for s in level.block_slices(parent)), level.dtype)
    half = tuple(b // 2 for b in store.block_size)
    for child in children_of(store, kind, scale, parent):
        block = store.read_block(kind, scale - 1, child)
        dst = out[_octant(child, half, out.shape)]
        if kind == LABELS:
            downsample_labels_into(block, dst, store.rule)
        else:
            downsample_image_into(block, dst)
    return out


def refresh_octants(
    store: PyramidStore,
    scale: int,
    parent: Coord,
    base: NDArray[Any],
    children: Mapping[Coord, Sequence[Coord] | None],
) -> tuple[NDArray[Any], list[Coord]]:
    """Labels block ``parent`` of ``scale`` (≥ 1) with the octants of ``children``
    recomputed and the rest taken from ``base`` (the block as stored).

    Parameters
    ----------
    children : mapping from child coord to its changed children, or None
        For a child mapped to a list of its own children (blocks of
        ``scale - 2``), only the parts of its octant below those are
        recomputed: the rest of the child did not change.  None recomputes
        the child's whole octant.

    Returns
    -------
    block : ndarray
        A new array, ``base``'s shape and dtype.
    changed : list of coords
        The children whose octant now differs from ``base``.
    """
    whole = all(g is None for g in children.values()) and len(children) == len(
        children_of(store, LABELS, scale, parent)
    )
    out = np.empty_like(base) if whole else base.copy()  # (whole: every octant is rewritten)
    half = tuple(b // 2 for b in store.block_size)
    changed: list[Coord] = []
    for child, grandchildren in children.items():
        palette = store.staged_palette(LABELS, scale - 1, child)
        src = store.read_block(LABELS, scale - 1, child) if palette is None else palette.index
        boxes = [tuple(slice(0, n) for n in src.shape)]
        if grandchildren is not None:  # their octants inside the child
            boxes = [_octant(g, half, src.shape) for g in grandchildren]
        at = _octant(child, half, base.shape)
        differs = False
        for box in boxes:
            dst_box = tuple(
                slice(a.start + b.start // 2, a.start + (b.stop + 1) // 2)
                for a, b in zip(at, box, strict=True)
            )
            dst = out[dst_box]
            if palette is not None:
                downsample_palette_into(palette.index[box], palette.labels, dst, store.rule)
            else:
                downsample_labels_into(src[box], dst, store.rule)
            differs = differs or not np.array_equal(dst, base[dst_box])
        if differs:
            changed.append(child)
    return out, changed


def _octant(child: Coord, half: tuple[int, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """Where block ``child`` lands in its parent of (clipped) ``shape``: the
    half-size box at its octant, clipped to the parent (at the volume's far
    edge that is exactly the child's ``ceil(shape / 2)``)."""
    lo = [(c % 2) * h for c, h in zip(child, half, strict=True)]
    return tuple(slice(a, min(a + h, n)) for a, h, n in zip(lo, half, shape, strict=True))
