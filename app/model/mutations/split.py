"""The split kind: voxels of a body inside a region become a new body (DVID ``split``).

The region is given as DVID RLE spans or a painted mask
(:class:`app.model.mutations.regions.SplitRegion`); only the s0 blocks the
label index names for the target are read.  Its inverse merges the new label
back (:class:`SplitUndo`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from app.kernels import parse_rles
from app.model.events import messages
from app.model.geometry import Coord
from app.model.mutations.base import EditContext, Editor, Message, Plan, Recording
from app.model.mutations.checks import blocks_of
from app.model.mutations.kinds import register
from app.model.mutations.log_fields import int_field, opt_int_field, rles_field
from app.model.mutations.regions import SplitRegion
from app.model.mutations.splitting import (
    SplitBase,
    SplitUndoBase,
    region_transform,
    require_partial,
    split_block,
    split_plan,
    stored_spans,
)


def _check_region(
    ctx: EditContext,
    target: int,
    label: int,
    region: SplitRegion,
    target_blocks: dict[Coord, int],
    coords: list[Coord],
) -> None:
    """Refuse, before anything changes, a region holding none or all of the voxels
    of ``target`` (its ``target_blocks``); splits the region's blocks of the
    target (``coords``) into ``label`` only until both are known (nothing is kept)."""
    some, rest = False, len(coords) < len(target_blocks)
    for coord in coords:
        if some and rest:
            break
        _, moved = split_block(ctx, coord, target, label, region)
        some = some or moved > 0
        rest = rest or moved < target_blocks[coord]
    require_partial(target, sum(target_blocks.values()), some=some, rest=rest)


@register
@dataclass(frozen=True)
class SplitUndo(SplitUndoBase):
    """A split was undone (journaled as ``{"Action": "undo", "Of": "split"}``)."""

    inverse_of: ClassVar[str | None] = "split"


@register
@dataclass(frozen=True)
class Split(SplitBase):
    """Voxels of ``target`` inside a region became ``new_label`` (fields: see
    :class:`SplitBase`)."""

    action: ClassVar[str] = "split"
    undo_kind: ClassVar[type[SplitUndoBase]] = SplitUndo

    @classmethod
    def plan(
        cls, ctx: EditContext, target: int, region: SplitRegion, new_label: int | None
    ) -> Plan:
        """The plan of a split of checked ``target`` by a bounds-checked ``region``
        (into ``new_label``, or a newly allocated label)."""
        target_blocks = blocks_of(ctx, target, "target")
        coords = [c for c in region.block_coords(ctx.block_size) if c in target_blocks]
        label = ctx.claim_label(new_label)
        try:
            _check_region(ctx, target, label, region, target_blocks, coords)
        except BaseException:
            ctx.release_label(label)
            raise

        def record(rec: Recording, size: int, moved: int, ref: str) -> Split:
            return cls(rec.stamp, rec.touched, target, label, size, moved, ref)

        transform = region_transform(ctx, target, label, region)
        return split_plan(
            target,
            label,
            target_blocks,
            coords,
            transform,
            record,
            region.spans,
            release=lambda: ctx.release_label(label),
        )

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Split:
        return cls(**cls.split_fields(record))

    def start_message(self, **fields: Any) -> Message:
        return messages.split_start(**fields)

    def posted_spans(self, ctx: EditContext) -> NDArray[np.integer[Any]]:
        return stored_spans(ctx, self.split_ref)

    def log_fields(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return {"RLEs": parse_rles(blob(self.split_ref), headered=False).tolist()}

    @staticmethod
    def apply(editor: Editor, op: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a ``segmend log`` split line."""
        result = editor.split(
            int_field(op, "Target"), rles_field(op), new_label=opt_int_field(op, "NewLabel")
        )
        return {"label": result.label, "MutationID": result.mutation_id}
