"""The split-coarse kind: every voxel of a body in some s0 blocks becomes a new
body (DVID ``split-coarse``, action ``splitcoarse``).  Its ``Split`` keeps the
posted blocks as DVID does: RLE spans in block coordinates, one span per run of
blocks along x.  Its inverse merges the new label back (:class:`SplitCoarseUndo`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from app.model.errors import InvalidMutationError
from app.model.events import messages
from app.model.geometry import Coord
from app.model.mutations.base import (
    BlockChange,
    EditContext,
    Editor,
    Message,
    Plan,
    Recording,
    Transform,
)
from app.model.mutations.checks import blocks_of
from app.model.mutations.kinds import register
from app.model.mutations.log_fields import int_field, opt_int_field
from app.model.mutations.regions import SplitRegion
from app.model.mutations.splitting import (
    SplitBase,
    SplitUndoBase,
    split_plan,
)


def check_blocks(blocks: Sequence[Sequence[int]], grid: tuple[int, int, int]) -> list[Coord]:
    """The s0 block coordinates (z, y, x) of a split-coarse request, each in the grid."""
    chosen: list[Coord] = []
    for b in blocks:
        values = tuple(b)
        if len(values) != 3 or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values
        ):
            raise InvalidMutationError(f"a block is three integers (z, y, x), got {values}")
        if any(not 0 <= int(c) < g for c, g in zip(values, grid, strict=True)):
            raise InvalidMutationError(f"block {values} is outside the block grid {grid}")
        chosen.append((int(values[0]), int(values[1]), int(values[2])))
    if not chosen:
        raise InvalidMutationError("split-coarse needs at least one block")
    return chosen


def block_rles(blocks: Sequence[Coord]) -> NDArray[np.int64]:
    """Blocks (z, y, x) as RLE spans ``(x, y, z, 1)`` in block coordinates
    (:meth:`Recording.put_spans` merges the runs along x)."""
    zyx = np.array(blocks, dtype=np.int64).reshape(-1, 3)
    return np.column_stack([zyx[:, 2], zyx[:, 1], zyx[:, 0], np.ones(len(zyx), np.int64)])


def _whole_block_transform(ctx: EditContext, target: int, label: int) -> Transform:
    keys = np.array([target], dtype=np.uint64)
    codes = np.ones(1, np.uint8)

    def transform(coord: Coord) -> BlockChange:
        new, n, _ = ctx.read_palette(coord).merged(keys, codes, label, undo=False)
        return BlockChange(coord, new, n)

    return transform


@register
@dataclass(frozen=True)
class SplitCoarseUndo(SplitUndoBase):
    """A split-coarse was undone (journaled as ``{"Action": "undo", "Of": "splitcoarse"}``)."""

    inverse_of: ClassVar[str | None] = "splitcoarse"


@register
@dataclass(frozen=True)
class SplitCoarse(SplitBase):
    """Every voxel of ``target`` in ``blocks`` became ``new_label``.

    Attributes
    ----------
    blocks : tuple of Coord
        The s0 blocks (z, y, x) asked for, sorted, each once.
    target, new_label, target_size, new_label_size, split_ref, redoes
        See :class:`SplitBase`.
    """

    action: ClassVar[str] = "splitcoarse"
    undo_kind: ClassVar[type[SplitUndoBase]] = SplitCoarseUndo
    blocks: tuple[Coord, ...] = ()

    @classmethod
    def plan(cls, ctx: EditContext, target: int, chosen: list[Coord], new_label: int | None
             ) -> Plan:
        """The plan of a split-coarse of checked ``target`` over checked blocks."""
        target_blocks = blocks_of(ctx, target, "target")
        posted = sorted(set(chosen))
        coords = [c for c in posted if c in target_blocks]
        if not coords:
            raise InvalidMutationError(f"the split blocks hold no voxel of target {target}")
        if len(coords) == len(target_blocks):
            raise InvalidMutationError(
                f"the split blocks hold all of target {target}; nothing would remain"
            )
        label = ctx.claim_label(new_label)

        def record(rec: Recording, size: int, moved: int, ref: str) -> SplitCoarse:
            return cls(rec.stamp, rec.touched, target, label, size, moved, ref,
                       blocks=tuple(posted))

        transform = _whole_block_transform(ctx, target, label)
        return split_plan(target, label, target_blocks, coords, transform, record,
                          block_rles(posted), release=lambda: ctx.release_label(label))

    def posted_transform(self, ctx: EditContext, posted: NDArray[np.integer[Any]]) -> Transform:
        return _whole_block_transform(ctx, self.target, self.new_label)  # (the touched blocks)

    def posted_spans(self, ctx: EditContext) -> NDArray[np.integer[Any]]:
        return block_rles(self.blocks)  # (not the blob: older records kept voxels there)

    def fields(self) -> dict[str, Any]:
        fields = super().fields()
        redoes = {"Redoes": fields.pop("Redoes")} if "Redoes" in fields else {}
        return {**redoes, "Blocks": [list(c) for c in self.blocks], **fields}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> SplitCoarse:
        blocks = tuple((int(z), int(y), int(x)) for z, y, x in record["Blocks"])
        return cls(**cls.split_fields(record), blocks=blocks)

    def start_message(self, **fields: Any) -> Message:
        return messages.splitcoarse_start(**fields)

    def log_fields(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return {"Blocks": [list(c) for c in self.blocks]}

    @staticmethod
    def apply(editor: Editor, op: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a ``segmend log`` split-coarse line."""
        blocks = op["Blocks"]
        if not isinstance(blocks, list):
            raise InvalidMutationError("Blocks must be a list of [z, y, x] lists")
        result = editor.split_coarse(int_field(op, "Target"), blocks,
                                     new_label=opt_int_field(op, "NewLabel"))
        return {"label": result.label, "MutationID": result.mutation_id}


def blocks_region(blocks: Sequence[Coord], ctx: EditContext) -> SplitRegion:
    """The voxels of s0 ``blocks`` (z, y, x), clipped to the volume, as a region
    (the split of a labelmap dataset's split-coarse)."""
    (bz, by, bx), (nz, ny, nx) = ctx.block_size, ctx.shape
    rows = []
    for z0, y0, x0 in blocks:
        x, length = x0 * bx, min((x0 + 1) * bx, nx) - x0 * bx
        rows += [(x, y, z, length) for z in range(z0 * bz, min((z0 + 1) * bz, nz))
                 for y in range(y0 * by, min((y0 + 1) * by, ny))]
    return SplitRegion(np.array(rows, np.int64).reshape(-1, 4))
