"""A body's surface mesh at one scale, made block by block through a
:class:`~app.model.meshes.cache.MeshCache`, and the coarse-to-fine plan.

Which blocks hold a body comes from the label index (s0 blocks; block ``c`` of
scale ``s`` covers s0 blocks ``c·2^s ...``, every level having the same block
shape).  The blocks meshed are those and their upper neighbours (which own the
cubes across the body's upper faces); a block's mask reads only blocks that
hold the body.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from app.model.geometry import Coord
from app.model.meshes.blocks import NEIGHBOURS, block_mask, mesh_mask
from app.model.meshes.cache import MeshCache, holders_bits
from app.model.meshes.stitch import stitch, to_s0
from app.model.storage.store import LABELS

if TYPE_CHECKING:
    from app.model.dataset_reads import DatasetReads

COARSE_VOXELS = 1 << 17
"""A body's first mesh is made at the finest scale where it has at most about
this many voxels (s0 voxels / 8^scale): fast whatever its size."""


@dataclass(frozen=True)
class BodyMesh:
    """One body's surface at one scale.

    Attributes
    ----------
    label, scale : int
        The body and the scale it was meshed at.
    vertices : ndarray of float32, shape (n, 3)
        Positions in s0 voxel coordinates (z, y, x; voxel centres at integers,
        napari's world coordinates of the dataset's layers).
    faces : ndarray of int32, shape (m, 3)
        Vertex indices of each triangle; every edge is shared by exactly two.
    blocks : int
        Blocks of the scale meshed.
    computed : int
        Of those, the blocks meshed now (the others came from the cache).
    """

    label: int
    scale: int
    vertices: NDArray[np.float32]
    faces: NDArray[np.int32]
    blocks: int
    computed: int

    @property
    def empty(self) -> bool:
        """True if the body has no voxels at this scale."""
        return len(self.faces) == 0


def mesh_plan(voxels: int, n_scales: int, coarse_voxels: int = COARSE_VOXELS) -> list[int]:
    """The scales to mesh a body at, coarse first: ``[first, 0]``, or ``[0]``.

    ``first`` is the finest scale at which ``voxels`` s0 voxels make at most
    ``coarse_voxels`` (the coarsest scale if none does).
    """
    first = 0
    while first < n_scales - 1 and voxels > coarse_voxels * 8**first:
        first += 1
    return [first, 0] if first else [0]


def holder_blocks(s0_blocks: Collection[Coord], scale: int) -> set[Coord]:
    """The blocks of ``scale`` covering these s0 blocks."""
    return {(c[0] >> scale, c[1] >> scale, c[2] >> scale) for c in s0_blocks}


def meshed_blocks(holders: Collection[Coord], grid: Sequence[int]) -> list[Coord]:
    """The holders and their upper neighbours inside a ``grid`` of blocks, in z, y, x order."""
    out = {(c[0] + d[0], c[1] + d[1], c[2] + d[2]) for c in holders for d in NEIGHBOURS}
    return sorted(c for c in out if all(v < g for v, g in zip(c, grid, strict=True)))


class BodyMesher:
    """Meshes bodies of a dataset, reusing unchanged block meshes.

    Parameters
    ----------
    reads : DatasetReads
        The dataset (label index and labels levels).
    cache : MeshCache, optional
        Where block meshes are kept (a new one by default).  Connect it to
        the dataset's ``signals`` (:meth:`MeshCache.connect`) so that edits
        drop what they change.
    """

    def __init__(self, reads: DatasetReads, cache: MeshCache | None = None) -> None:
        self.reads = reads
        self.cache = cache if cache is not None else MeshCache()

    def plan(self, label: int) -> list[int]:
        """The scales to mesh ``label`` at, coarse first (see :func:`mesh_plan`)."""
        return mesh_plan(self.reads.label_size(int(label)), self.reads.n_scales)

    def mesh(self, label: int, scale: int,
             cancelled: Callable[[], bool] | None = None) -> BodyMesh | None:
        """The surface of ``label`` at ``scale``; None if ``cancelled()`` turned
        true (it is asked before each block).

        Reads the label index and the level as of one state (a reader's
        snapshot); blocks not in the cache are meshed and kept.
        """
        label, scale = int(label), int(scale)
        reads = self.reads
        bs = reads.block_size
        with reads.snapshot():
            holders = holder_blocks(reads.label_blocks(label), scale)
            shape = reads.labels(scale).shape
            grid = [-(-n // b) for n, b in zip(shape, bs, strict=True)]
            coords = meshed_blocks(holders, grid)

            def read(b: Coord) -> NDArray[np.uint64]:
                return reads.read_block(LABELS, scale, b)

            parts, computed = [], 0
            for c in coords:
                if cancelled is not None and cancelled():
                    return None
                bits = holders_bits(c, holders)
                part = self.cache.get(label, scale, c, bits)
                if part is None:
                    epoch = self.cache.epoch(scale, c)
                    mask, start = block_mask(label, c, bs, shape, holders, read)
                    part = mesh_mask(mask, start)
                    self.cache.put(label, scale, c, part, bits, epoch)
                    computed += 1
                parts.append(part)
        whole = stitch(parts, shape)
        return BodyMesh(label, scale, to_s0(whole.vertices2, scale), whole.faces,
                        len(coords), computed)
