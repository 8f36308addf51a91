"""A pyramid cut into block-aligned tasks, for bulk jobs on a Dask cluster.

A *stage* computes up to ``m`` levels, where ``task_blocks = G = 2**m``.
Stage 0 cuts level 0 into boxes of G×G×G blocks; a task reads its box from the
source and computes levels 0..m of it: at level j the box holds G/2**j blocks
per axis, its top (level m) exactly one block.  Stage s ≥ 1 cuts level
``b = s·m`` into boxes of G×G×G blocks; a task assembles its box from the tops
of the G³ stage s-1 tasks below it and computes levels b+1..b+m.  Box origins
are even at every level, so each task's 2× downsampling equals the whole
volume's (the far edges are the volume's own), and every output block is
computed by exactly one task.

The functions here run in worker processes: they take and return only
picklable values (arrays, bytes, frozen dataclasses, paths).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels import downsample_image_into, downsample_labels_into
from app.model.bulk.scratch import scratch_copy
from app.model.errors import FormatError
from app.model.geometry import Coord, blocks_in_box
from app.model.storage.codec import BlockCodec
from app.model.storage.sources import open_source
from app.model.storage.store import LABELS

Shape3 = tuple[int, int, int]

__all__ = ["BoxResult", "TreePlan", "run_box"]


@dataclass(frozen=True)
class TreePlan:
    """How one pyramid (labels or grayscale) is cut into tasks, and where its
    blocks go.

    Attributes
    ----------
    kind : str
        ``"labels"`` or ``"image"``.
    source : str
        The source spec (see :func:`app.model.storage.sources.open_source`),
        readable from every worker.
    shapes : tuple of (int, int, int)
        Voxel shape of each level, s0 first.
    block_size : (int, int, int)
        Even block edges (z, y, x).
    rule : str
        Downres rule for labels.
    task_blocks : int
        G, a power of two ≥ 2: a task's box edge in blocks of its stage's base level.
    codecs : tuple of BlockCodec, optional
        Per level: tasks return encoded HDF5 chunks (an HDF5 output).
    zarr : object, optional
        An :class:`app.model.omezarr.writer.OmeZarrPyramid`: tasks write their
        shards themselves (a Zarr output).
    """

    kind: str
    source: str
    shapes: tuple[Shape3, ...]
    block_size: Shape3
    rule: str
    task_blocks: int
    codecs: tuple[BlockCodec, ...] | None = None
    zarr: Any = None

    @property
    def levels_per_stage(self) -> int:
        """m, with G = 2**m."""
        return self.task_blocks.bit_length() - 1

    def stages(self) -> list[tuple[int, int]]:
        """``(base, top)`` per stage: stage 0 computes levels 0..top, stage s
        levels base+1..top."""
        m, last = self.levels_per_stage, len(self.shapes) - 1
        out = [(0, min(m, last))]
        while out[-1][1] < last:
            base = out[-1][1]
            out.append((base, min(base + m, last)))
        return out

    def shard_blocks(self) -> list[int]:
        """Per level, the edge in blocks of the box one task writes: the shard
        edge of a Zarr output (each shard then has exactly one writer)."""
        return [
            self.task_blocks >> (k - base)
            for stage, (base, top) in enumerate(self.stages())
            for k in range(base if stage == 0 else base + 1, top + 1)
        ]

    def grid(self, level: int) -> Shape3:
        """Blocks per axis of ``level``."""
        return tuple(-(-s // b) for s, b in zip(self.shapes[level], self.block_size, strict=True))  # type: ignore[return-value]

    def boxes(self, base: int) -> list[Coord]:
        """The task boxes of the stage with base level ``base``, in Morton
        (Z-) order: the boxes under one box of the next stage come together,
        so that its inputs are ready early and freed soon."""
        counts = [-(-g // self.task_blocks) for g in self.grid(base)]
        boxes: list[Coord] = [
            (z, y, x) for z in range(counts[0]) for y in range(counts[1]) for x in range(counts[2])
        ]
        return sorted(boxes, key=_morton)

    def children(self, base: int, box: Coord) -> list[Coord]:
        """The boxes of the stage below whose tops make up ``box`` (a level
        ``base`` box): the level-``base`` blocks the box covers."""
        start = [c * self.task_blocks for c in box]
        stop = [min(s + self.task_blocks, g) for s, g in zip(start, self.grid(base), strict=True)]
        return list(blocks_in_box(
            [s * b for s, b in zip(start, self.block_size, strict=True)],
            [s * b for s, b in zip(stop, self.block_size, strict=True)],
            self.block_size,
        ))

    def box_region(self, base: int, level: int, box: Coord) -> tuple[Shape3, Shape3]:
        """Voxel ``(start, stop)`` at ``level`` of the box ``box`` of the stage
        with base ``base`` (clipped to the level)."""
        edge = [b * self.task_blocks >> (level - base) for b in self.block_size]
        start = tuple(c * e for c, e in zip(box, edge, strict=True))
        stop = tuple(
            min(s + e, n) for s, e, n in zip(start, edge, self.shapes[level], strict=True)
        )
        return start, stop  # type: ignore[return-value]


@dataclass(frozen=True)
class BoxResult:
    """What one task hands back.

    Attributes
    ----------
    payloads : list of (level, block coord, bytes)
        Encoded HDF5 chunks (empty for a Zarr output, which the task wrote).
    top : ndarray or None
        The box's top level, for the next stage (None at the last stage).
    max_label : int
        The largest label read (stage 0 of labels; else 0).
    """

    payloads: list[tuple[int, Coord, bytes]]
    top: NDArray[Any] | None
    max_label: int


def run_box(
    plan: TreePlan, stage: int, box: Coord, children: list[NDArray[Any]] | None = None
) -> BoxResult:
    """Compute the levels of one task box.

    Parameters
    ----------
    plan : TreePlan
    stage : int
        Index into ``plan.stages()``.
    box : (int, int, int)
        The box, in boxes of the stage's base level.
    children : list of ndarray, optional
        For stage ≥ 1: the tops of ``plan.children(base, box)``, in that order.

    Raises
    ------
    app.model.errors.FormatError
        If the source cannot be read, or holds negative labels.
    """
    stages = plan.stages()
    base, top = stages[stage]
    start, stop = plan.box_region(base, base, box)
    max_label = 0
    payloads: list[tuple[int, Coord, bytes]] = []
    if stage == 0:
        raw = _read_box(plan, start, stop)
        max_label = int(raw.max()) if plan.kind == LABELS and raw.size else 0
        if plan.zarr is None:  # level 0 encoded and halved block by block
            payloads, arr, at = _encode_and_halve(plan, box, raw, halve=top > 0)
        else:  # (a shard is written whole)
            arr, at = np.ascontiguousarray(raw, _dtype(plan, raw)), 0
            payloads = _store_level(plan, 0, 0, box, arr)
    else:
        assert children is not None
        arr, at = _assemble(plan, base, box, start, children), base
    for level in range(base + 1, top + 1):  # (``arr`` holds level ``at``)
        if level > at:
            arr, at = _downsample(plan, arr), level
        payloads += _store_level(plan, base, level, box, arr)
    return BoxResult(payloads, arr if stage + 1 < len(stages) else None, max_label)


def _read_box(plan: TreePlan, start: Shape3, stop: Shape3) -> NDArray[Any]:
    """The box of level 0 from the source, as it gives it (a memory-mapped
    .npy: a view, not copied); labels never negative."""
    with open_source(plan.source) as src:
        raw = np.asarray(src[tuple(slice(a, e) for a, e in zip(start, stop, strict=True))])
    if plan.kind == LABELS and raw.dtype.kind == "i" and raw.size and int(raw.min()) < 0:
        z = start[0] + int(np.argwhere(raw < 0)[0][0])
        raise FormatError(f"labels must be non-negative; found {int(raw.min())} in plane z={z}")
    return raw


def _dtype(plan: TreePlan, raw: NDArray[Any]) -> np.dtype[Any]:
    """What the pyramid stores: labels as uint64, grayscale as read."""
    return np.dtype(np.uint64) if plan.kind == LABELS else raw.dtype


def _encode_and_halve(
    plan: TreePlan, box: Coord, raw: NDArray[Any], *, halve: bool
) -> tuple[list[tuple[int, Coord, bytes]], NDArray[Any], int]:
    """Level 0 of a stage-0 box in one pass, block by block: each block copied
    once (into this thread's scratch, as the pyramid's dtype), encoded, and
    downsampled into level 1 (blocks are even-aligned: the same as halving
    the box).  Returns the payloads, the box's level 1 (level 0 without
    ``halve``) and that level."""
    start, stop = plan.box_region(0, 0, box)
    dtype = _dtype(plan, raw)
    assert plan.codecs is not None
    codec = plan.codecs[0]
    half = np.empty(tuple(-(-s // 2) for s in raw.shape), dtype) if halve else raw
    payloads = []
    for coord in blocks_in_box(start, stop, plan.block_size):
        lo = [c * b - a for c, b, a in zip(coord, plan.block_size, start, strict=True)]
        block = scratch_copy(
            raw[tuple(slice(o, o + b) for o, b in zip(lo, plan.block_size, strict=True))], dtype
        )
        payloads.append((0, coord, codec.encode_clipped(block)))
        if halve:
            dst = tuple(slice(o // 2, o // 2 + -(-n // 2)) for o, n in zip(lo, block.shape,
                                                                         strict=True))
            _downsample_into(plan, block, half[dst])
    return payloads, half, 1 if halve else 0


def _assemble(
    plan: TreePlan, base: int, box: Coord, start: Shape3, children: list[NDArray[Any]]
) -> NDArray[Any]:
    """The box ``box`` of level ``base`` (its voxels from ``start``) from the
    level-``base`` blocks of its children."""
    stop = plan.box_region(base, base, box)[1]
    arr = np.empty(tuple(e - a for a, e in zip(start, stop, strict=True)), children[0].dtype)
    for block, top in zip(plan.children(base, box), children, strict=True):
        origin = [c * b - a for c, b, a in zip(block, plan.block_size, start, strict=True)]
        arr[tuple(slice(o, o + n) for o, n in zip(origin, top.shape, strict=True))] = top
    return arr


def _downsample(plan: TreePlan, arr: NDArray[Any]) -> NDArray[Any]:
    return _downsample_into(plan, arr, np.empty(tuple(-(-s // 2) for s in arr.shape), arr.dtype))


def _downsample_into(plan: TreePlan, arr: NDArray[Any], out: NDArray[Any]) -> NDArray[Any]:
    if plan.kind == LABELS:
        return downsample_labels_into(arr, out, plan.rule)
    return downsample_image_into(arr, out)


def _store_level(
    plan: TreePlan, base: int, level: int, box: Coord, arr: NDArray[Any]
) -> list[tuple[int, Coord, bytes]]:
    """Write the box's ``arr`` of ``level`` into the Zarr output (one whole
    shard), or encode its blocks for the HDF5 output."""
    start, stop = plan.box_region(base, level, box)
    if plan.zarr is not None:
        target = plan.zarr.open_array(plan.kind, level)
        target[tuple(slice(a, e) for a, e in zip(start, stop, strict=True))] = arr
        return []
    assert plan.codecs is not None
    codec = plan.codecs[level]
    out = []
    for coord in blocks_in_box(start, stop, plan.block_size):
        lo = [c * b - a for c, b, a in zip(coord, plan.block_size, start, strict=True)]
        view = arr[tuple(slice(o, o + b) for o, b in zip(lo, plan.block_size, strict=True))]
        out.append((level, coord, codec.encode_clipped(scratch_copy(view))))
    return out


def _morton(c: Coord) -> int:
    """Interleave the bits of (z, y, x)."""
    code = 0
    for bit in range(21):
        for axis, v in enumerate(c):
            code |= ((v >> bit) & 1) << (3 * bit + 2 - axis)
    return code
