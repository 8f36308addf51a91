"""The inverse of a merge: the merged labels get their voxels back.

The merge kept, per changed block, an undo map (:mod:`app.model.mutations.undo_maps`);
the undo puts back each voxel's label from it.  DVID has no undo: consumers
see one ``split`` per restored label, each with its own MutationID (the undo
reserves one per label), so that de-duplicating by MutationID + Action keeps
them all.  Journaled as ``{"Action": "undo", "Of": "merge", ...}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from app.kernels import count_in, mask_to_rles
from app.model.events import messages
from app.model.geometry import Coord
from app.model.mutations.base import (
    BlockChange,
    EditContext,
    Message,
    Mutation,
    Outcome,
    Plan,
    Recording,
    Transform,
    stamp_of,
    touched_of,
)
from app.model.mutations.checks import block_origin
from app.model.mutations.kinds import register
from app.model.mutations.undo_maps import decode_undo_map


def restore_transform(
    ctx: EditContext, target: int, sources: list[int], undone: int
) -> Transform:
    """Put back the labels merge ``undone`` changed (from its undo maps)."""
    maps = ctx.undo_maps(undone)
    labels = np.array(sources, dtype=np.uint64)
    count_keys = np.array([target, *sources], dtype=np.uint64)

    def transform(coord: Coord) -> BlockChange:
        block = ctx.read_block(coord)
        index = decode_undo_map(maps[coord], block.shape, len(sources))
        restore = (index != 0) & (block == target)
        new = block.copy()
        new[restore] = labels[index[restore].astype(np.intp) - 1]
        n = int(restore.sum())
        counts = dict(
            zip([target, *sources], (int(v) for v in count_in(new, count_keys)), strict=True)
        )
        origin = block_origin(coord, ctx.block_size)
        spans = {
            s: mask_to_rles(restore & (index == k + 1), origin)
            for k, s in enumerate(sources)
            if counts[s]
        }
        return BlockChange(coord, new if n else None, n, counts=counts, label_spans=spans)

    return transform


def restore_plan(
    ctx: EditContext, undone: int, target: int, sources: list[int], touched: tuple[Coord, ...]
) -> Plan:
    """The plan that undoes merge ``undone`` of ``sources`` into ``target``."""
    target_size = ctx.label_size(target)

    def finish(changes: list[BlockChange]) -> Outcome:
        rows = [(label, c.coord, n) for c in changes for label, n in c.counts.items()]
        sizes = tuple((s, sum(c.counts.get(s, 0) for c in changes)) for s in sources)
        restored = sorted({label for c in changes for label in c.label_spans})
        remaining = target_size - sum(c.changed for c in changes)

        def record(rec: Recording) -> MergeUndo:
            splits = tuple(
                (label, rec.put_spans(np.concatenate(
                    [c.label_spans[label] for c in changes if label in c.label_spans]
                )))
                for label in restored
            )
            return MergeUndo(rec.stamp, rec.touched, undone, target, tuple(sources), remaining,
                             sizes, splits)

        return Outcome(rows, record, max(1, len(restored)))

    transform = restore_transform(ctx, target, sources, undone)
    return Plan(list(touched), transform, finish, undoable=False)


@register
@dataclass(frozen=True)
class MergeUndo(Mutation):
    """Merge ``undoes`` was undone: ``labels`` hold their voxels again.

    Attributes
    ----------
    undoes : int
        The undone merge's MutationID.
    target : int
        The merge's target.
    labels : tuple of int
        The labels given back their voxels.
    target_size : int
        The target's voxels after the undo.
    label_sizes : tuple of (int, int)
        Each label's voxels after the undo, in ``labels`` order (the journal's
        ``LabelSizes``, for people: no message carries them).
    splits : tuple of (int, str)
        Per restored label (those that got voxels back, sorted), the blob
        reference of its voxels as RLE spans; its split message takes
        MutationID ``mutation_id + i``.
    """

    action: ClassVar[str] = "undo"
    inverse_of: ClassVar[str | None] = "merge"
    undoes: int
    target: int
    labels: tuple[int, ...]
    target_size: int
    label_sizes: tuple[tuple[int, int], ...]
    splits: tuple[tuple[int, str], ...]

    def undone(self) -> int | None:
        return self.undoes

    def fields(self) -> dict[str, Any]:
        return {
            "Undoes": self.undoes,
            "Of": "merge",
            "Target": self.target,
            "Labels": list(self.labels),
            "TargetSize": self.target_size,
            "LabelSizes": {str(k): v for k, v in self.label_sizes},
        }

    def tail_fields(self) -> dict[str, Any]:
        if not self.splits:
            return {}
        mid = self.mutation_id
        return {
            "MutationIDs": list(range(mid, mid + len(self.splits))),
            "Splits": [[label, ref] for label, ref in self.splits],
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> MergeUndo:
        return cls(
            stamp_of(record), touched_of(record), int(record["Undoes"]), int(record["Target"]),
            tuple(int(v) for v in record["Labels"]), int(record["TargetSize"]),
            tuple((int(k), int(v)) for k, v in record["LabelSizes"].items()),
            tuple((int(label), str(ref)) for label, ref in record.get("Splits", [])),
        )

    def replay_transform(self, ctx: EditContext) -> Transform:
        return restore_transform(ctx, self.target, list(self.labels), self.undoes)

    def start_messages(self) -> list[Message]:
        return [
            messages.split_start(target=self.target, new_label=label, split_ref=ref,
                                 **{**self.common(), "mutation_id": self.mutation_id + i})
            for i, (label, ref) in enumerate(self.splits)
        ]

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return {"Action": "undo", **self.log_head(), "Undoes": self.undoes}

    def describe(self, limit: int = 6) -> str:
        return f"undo #{self.undoes} (merge)"
