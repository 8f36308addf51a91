"""One block's share of a body's surface: its mask with a 1-voxel overlap, and
marching cubes over it.

The surface of a body at one scale is the marching-cubes surface of its mask,
padded with background outside the volume.  A marching cube spans 2×2×2
samples; the cube whose lowest sample is ``p`` (per axis, ``-1 <= p < n``)
belongs to the block holding sample ``p + 1``.  Block ``c`` (voxels
``[lo, hi)`` per axis) therefore meshes the samples ``[lo - 1, hi)`` -- one
plane of its lower neighbours -- and, on the volume's last block, one more
plane of padding.  Every cube belongs to exactly one block, so the blocks'
triangles together are those of the whole body, and neighbouring blocks share
the vertices on their common sample plane (:mod:`app.model.meshes.stitch`
welds them).

Vertices are kept as integers, twice the scale's voxel coordinate (marching
cubes over a binary mask puts every vertex at the midpoint of a cube edge), so
that they are exact and shared vertices are equal.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np
from numpy.typing import NDArray
from skimage.measure import marching_cubes

from app.model.geometry import Coord, blocks_in_box

NEIGHBOURS: tuple[Coord, ...] = tuple((z, y, x) for z, y, x in product((0, 1), repeat=3))
"""Offsets from a block to the blocks whose mesh reads it (itself and its upper neighbours)."""


@dataclass(frozen=True)
class BlockMesh:
    """The triangles of one body that one block owns.

    Attributes
    ----------
    vertices2 : ndarray of int32, shape (n, 3)
        Twice the vertex positions in the scale's voxel coordinates (z, y, x);
        between ``-2`` and ``2 * shape``.
    faces : ndarray of int32, shape (m, 3)
        Vertex indices of each triangle (marching cubes' orientation).
    """

    vertices2: NDArray[np.int32]
    faces: NDArray[np.int32]

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return int(self.vertices2.nbytes + self.faces.nbytes)


EMPTY = BlockMesh(np.zeros((0, 3), np.int32), np.zeros((0, 3), np.int32))
"""A block with no surface of the body."""


def sample_box(coord: Coord, block_size: Sequence[int],
               shape: Sequence[int]) -> tuple[Coord, Coord]:
    """The samples block ``coord`` meshes, ``[start, stop)`` per axis (voxel
    coordinates at its scale; ``-1`` and ``shape`` are padding)."""
    start, stop = [], []
    for c, b, n in zip(coord, block_size, shape, strict=True):
        lo, hi = c * b, min((c + 1) * b, n)
        start.append(lo - 1)
        stop.append(hi + 1 if hi == n else hi)
    return (start[0], start[1], start[2]), (stop[0], stop[1], stop[2])


def block_mask(
    label: int, coord: Coord, block_size: Sequence[int], shape: Sequence[int],
    holders: Collection[Coord], read_block: Callable[[Coord], NDArray[np.uint64]],
) -> tuple[NDArray[np.bool_], Coord]:
    """The samples of ``label`` that block ``coord`` meshes.

    Parameters
    ----------
    label : int
        The body.
    coord : (int, int, int)
        The block, at the scale of ``shape``.
    block_size, shape : sequence of 3 int
        Block shape and the level's voxel shape (z, y, x).
    holders : collection of block coords
        Blocks that may hold ``label`` (others are known not to; they are not read).
    read_block : callable
        ``read_block(coord) -> ndarray`` (the level's labels, clipped to the volume).

    Returns
    -------
    mask : ndarray of bool, shape ``stop - start``
        True where a sample holds ``label`` (padding is False).
    start : (int, int, int)
        The voxel coordinate of ``mask[0, 0, 0]`` (see :func:`sample_box`).
    """
    start, stop = sample_box(coord, block_size, shape)
    mask = np.zeros([e - s for s, e in zip(start, stop, strict=True)], dtype=bool)
    inner_lo = [max(s, 0) for s in start]
    inner_hi = [min(e, n) for e, n in zip(stop, shape, strict=True)]
    value = np.uint64(label)
    for b in blocks_in_box(inner_lo, inner_hi, block_size):
        if b not in holders:
            continue
        lo = [max(bc * bs, a) for bc, bs, a in zip(b, block_size, inner_lo, strict=True)]
        hi = [min((bc + 1) * bs, e) for bc, bs, e in zip(b, block_size, inner_hi, strict=True)]
        block = read_block(b)
        src = tuple(slice(a - bc * bs, e - bc * bs)
                    for a, e, bc, bs in zip(lo, hi, b, block_size, strict=True))
        dst = tuple(slice(a - s, e - s) for a, e, s in zip(lo, hi, start, strict=True))
        mask[dst] = block[src] == value
    return mask, start


def mesh_mask(mask: NDArray[np.bool_], start: Sequence[int]) -> BlockMesh:
    """Marching cubes (Lewiner, level 0.5) over every cube of ``mask``.

    Parameters
    ----------
    mask : ndarray of bool, shape (z, y, x), each axis >= 2
        Samples; the cubes are those between them.
    start : sequence of 3 int
        Voxel coordinate of ``mask[0, 0, 0]``.

    Returns
    -------
    BlockMesh
        Its triangles, vertices doubled; :data:`EMPTY` if no cube crosses the surface.
    """
    axes = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != d)))
            for d in range(3)]
    if any(len(a) == 0 for a in axes):
        return EMPTY
    # only cubes touching a True sample have triangles: crop to them
    lo = [max(int(a[0]) - 1, 0) for a in axes]
    hi = [min(int(a[-1]) + 2, n) for a, n in zip(axes, mask.shape, strict=True)]
    crop = mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    if min(crop.shape) < 2 or crop.all():
        return EMPTY
    return marching_cubes_doubled(crop, [int(s) + a for s, a in zip(start, lo, strict=True)])


def marching_cubes_doubled(samples: NDArray[np.bool_], start: Sequence[int]) -> BlockMesh:
    """Marching cubes (Lewiner, level 0.5) over ``samples`` (each axis >= 2, some
    True and some False), vertices doubled, ``samples[0, 0, 0]`` at voxel ``start``."""
    verts, faces, _normals, _values = marching_cubes(samples.view(np.uint8), 0.5,
                                                     method="lewiner")
    origin2 = 2 * np.asarray(start, dtype=np.int64)
    vertices2 = (np.rint(verts * 2).astype(np.int64) + origin2).astype(np.int32)
    return BlockMesh(vertices2, faces.astype(np.int32))
