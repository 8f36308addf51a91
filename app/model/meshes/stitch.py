"""Block meshes welded into one mesh, placed in s0 voxel coordinates; and the
reference: one marching-cubes call over a whole body.

napari shows a multiscale labels layer with s0's voxel grid as its world
coordinates (no layer scale or translate; voxel centres at integers).  A voxel
``i`` of scale ``s`` covers the s0 voxels ``[i·2^s, (i+1)·2^s)``, so its
centre is at ``(i + 0.5)·2^s - 0.5`` in s0 voxels; mesh vertices are placed by
that rule at every scale, so a coarse and a fine mesh of a body lie on each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from app.model.meshes.blocks import EMPTY, BlockMesh, marching_cubes_doubled


def stitch(parts: Sequence[BlockMesh], shape: Sequence[int]) -> BlockMesh:
    """Concatenate block meshes and weld their equal vertices.

    Parameters
    ----------
    parts : sequence of BlockMesh
        Meshes of distinct blocks of one level (vertices doubled).
    shape : sequence of 3 int
        That level's voxel shape (bounds the doubled vertices: ``[-2, 2·shape]``).

    Returns
    -------
    BlockMesh
        One mesh: unique vertices in ascending (z, y, x) order, every face of
        ``parts`` (in their order) re-indexed to them.
    """
    parts = [p for p in parts if len(p.faces)]
    if not parts:
        return EMPTY
    sizes = [2 * int(n) + 3 for n in shape]
    verts = np.concatenate([p.vertices2 for p in parts]).astype(np.int64) + 2
    keys = (verts[:, 0] * sizes[1] + verts[:, 1]) * sizes[2] + verts[:, 2]
    offsets = np.cumsum([0] + [len(p.vertices2) for p in parts[:-1]])
    faces = np.concatenate([p.faces.astype(np.int64) + o for p, o in zip(parts, offsets,
                                                                          strict=True)])
    unique, inverse = np.unique(keys, return_inverse=True)
    x = unique % sizes[2]
    rest = unique // sizes[2]
    zyx = np.stack([rest // sizes[1], rest % sizes[1], x], axis=1) - 2
    return BlockMesh(zyx.astype(np.int32), inverse.astype(np.int32)[faces])


def to_s0(vertices2: NDArray[np.int32], scale: int) -> NDArray[np.float32]:
    """Doubled vertex positions at ``scale`` → s0 voxel coordinates.

    Parameters
    ----------
    vertices2 : ndarray of int32, shape (n, 3)
        Twice the positions in the scale's voxel coordinates (z, y, x).
    scale : int
        Their scale (factor ``2**scale`` per axis).

    Returns
    -------
    ndarray of float32, shape (n, 3)
        ``(v + 0.5)·2^scale - 0.5`` with ``v = vertices2 / 2`` (exact).
    """
    factor = float(2**scale)
    return ((vertices2.astype(np.float64) + 1.0) * (factor / 2.0) - 0.5).astype(np.float32)


def mesh_whole(mask: NDArray[np.bool_], start: Sequence[int]) -> BlockMesh:
    """The reference: marching cubes over a whole body in one call.

    Parameters
    ----------
    mask : ndarray of bool, shape (z, y, x)
        The body's voxels in a box of its level (nothing of it outside the box).
    start : sequence of 3 int
        Voxel coordinate of ``mask[0, 0, 0]``.

    Returns
    -------
    BlockMesh
        Its surface (vertices doubled, level coordinates), the box padded
        with background so that the surface is closed.
    """
    if not mask.any():
        return EMPTY
    return marching_cubes_doubled(np.pad(mask, 1), [int(s) - 1 for s in start])
