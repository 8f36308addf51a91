"""The merge kind: every voxel of some bodies becomes a target body (DVID ``merge``).

A merge works as DVID's labelarray does: a block is relabelled in palette form
(:class:`app.model.storage.palette_block.PaletteBlock`), so only a block's first merge
since the last checkpoint touches its voxels, and each changed block keeps an
undo map (:mod:`app.model.mutations.undo_maps`): per voxel, which of the merged labels it
held.  Its inverse is :class:`app.model.mutations.merge_undo.MergeUndo`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from app.kernels import index_dtype
from app.model.errors import InvalidMutationError
from app.model.events import messages
from app.model.geometry import Coord
from app.model.mutations.base import (
    BlockChange,
    EditContext,
    Editor,
    IndexRow,
    Message,
    Mutation,
    Outcome,
    Plan,
    Recording,
    Transform,
    id_list,
    stamp_of,
    touched_of,
)
from app.model.mutations.checks import blocks_of, require_label
from app.model.mutations.kinds import register
from app.model.mutations.log_fields import int_field, int_list_field
from app.model.mutations.merge_undo import restore_plan
from app.model.mutations.undo_maps import encode_undo_map


def merge_transform(
    ctx: EditContext,
    target: int,
    sources: Sequence[int],
    *,
    keep_undo: bool = False,
    block_sources: Mapping[Coord, Sequence[int]] | None = None,
) -> Transform:
    """``sources`` (sorted) become ``target``; with ``keep_undo`` each changed
    block also gets its undo map.  ``block_sources`` (from the label index)
    names the sources each block holds, so that a merge of many bodies costs
    per block what a merge of one does."""
    keys = np.array(sources, dtype=np.uint64)
    codes = np.arange(1, keys.size + 1, dtype=index_dtype(keys.size))

    def transform(coord: Coord) -> BlockChange:
        block_keys, block_codes = keys, codes
        if block_sources is not None and coord in block_sources:
            block_keys = np.array(block_sources[coord], dtype=np.uint64)
            block_codes = codes[np.searchsorted(keys, block_keys)]
        palette = ctx.read_palette(coord)
        new, n, index = palette.merged(block_keys, block_codes, target, undo=keep_undo)
        undo_map = encode_undo_map(index) if index is not None else None
        return BlockChange(coord, new, n, undo_map=undo_map)

    return transform


def merge_plan(
    ctx: EditContext,
    target: int,
    sources: list[int],
    record: Callable[[Recording, int], Mutation],
    *,
    keep_undo: bool = True,
    undoable: bool = True,
) -> Plan:
    """The plan that merges ``sources`` (sorted, distinct) into ``target``.

    ``record(recording, target_size)`` makes the record (a merge, or the undo
    of a split, which keeps no undo maps and is not ``undoable``).  The index
    must agree with the voxels moved, else nothing is written.
    """
    target_blocks = blocks_of(ctx, target, "target")
    source_blocks = {s: blocks_of(ctx, s, "label") for s in sources}
    coords = sorted(set().union(*source_blocks.values()))
    expected = sum(sum(b.values()) for b in source_blocks.values())
    size = sum(target_blocks.values()) + expected

    def finish(changes: list[BlockChange]) -> Outcome:
        moved = sum(c.changed for c in changes)
        if moved != expected:
            raise InvalidMutationError(
                f"label index disagrees with the voxels ({moved} moved, index says "
                f"{expected}); run 'segmend reindex'"
            )
        rows: list[IndexRow] = []
        for c in coords:
            total = target_blocks.get(c, 0) + sum(b.get(c, 0) for b in source_blocks.values())
            rows.append((target, c, total))
            rows.extend((s, c, 0) for s in sources if c in source_blocks[s])
        return Outcome(rows, lambda rec: record(rec, size))

    block_sources: dict[Coord, list[int]] = {}
    for source in sources:
        for c in source_blocks[source]:
            block_sources.setdefault(c, []).append(source)
    transform = merge_transform(
        ctx, target, sources, keep_undo=keep_undo, block_sources=block_sources
    )
    return Plan(coords, transform, finish, undoable=undoable)


def merge_messages(record: Mutation, target: int, labels: Sequence[int]) -> list[Message]:
    """DVID's ``merge`` message of a record that merged ``labels`` into ``target``."""
    return [messages.merge_start(target=target, labels=list(labels), **record.common())]


def merge_log_line(
    record: Mutation, target: int, labels: Sequence[int], redoes: int | None
) -> dict[str, Any]:
    """The ``segmend log`` line of a merge (voxel or labelmap mode), or of its redo."""
    if redoes is not None:
        return {"Action": "redo", **record.log_head(), "Redoes": redoes}
    return {"Action": "merge", **record.log_head(), "Target": target, "Labels": list(labels)}


def merge_description(target: int, labels: Sequence[int], redoes: int | None, limit: int) -> str:
    """The history panel's text of a merge (voxel or labelmap mode)."""
    text = f"merge {id_list(list(labels), limit)} into {target}"
    return text if redoes is None else f"{text} (redo of #{redoes})"


@register
@dataclass(frozen=True)
class Merge(Mutation):
    """``labels`` were merged into ``target``.

    Attributes
    ----------
    target : int
        The body that remains.
    labels : tuple of int
        The merged bodies, sorted.
    target_size : int
        The target's voxels after the merge.
    redoes : int or None
        The MutationID of the undone merge this one applies again.
    """

    action: ClassVar[str] = "merge"
    target: int
    labels: tuple[int, ...]
    target_size: int
    redoes: int | None = None

    def merged_away(self) -> tuple[int, ...]:
        return self.labels

    @classmethod
    def plan(cls, ctx: EditContext, target: int, labels: list[int], redoes: int | None = None
             ) -> Plan:
        """The plan of a merge of checked, sorted ``labels`` into ``target``."""

        def record(rec: Recording, size: int) -> Merge:
            return cls(rec.stamp, rec.touched, target, tuple(labels), size, redoes)

        return merge_plan(ctx, target, labels, record)

    @staticmethod
    def check(target: Any, labels: Iterable[Any]) -> tuple[int, list[int]]:
        """The target and the sorted, distinct labels of a merge request."""
        target = require_label(target, "target")
        sources = sorted({require_label(v, "label") for v in labels})
        if not sources:
            raise InvalidMutationError("merge needs at least one label to merge into the target")
        if target in sources:
            raise InvalidMutationError(f"target {target} is also among the labels to merge")
        return target, sources

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.redoes is None else {"Redoes": self.redoes}
        out.update(Target=self.target, Labels=list(self.labels), TargetSize=self.target_size)
        return out

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Merge:
        return cls(
            stamp_of(record), touched_of(record), int(record["Target"]),
            tuple(int(v) for v in record["Labels"]), int(record["TargetSize"]),
            record.get("Redoes"),
        )

    def labels_held(self) -> list[int]:
        return [self.target, *self.labels]

    def replay_transform(self, ctx: EditContext) -> Transform:
        return merge_transform(ctx, self.target, self.labels)

    def undo_plan(self, ctx: EditContext) -> Plan:
        return restore_plan(ctx, self.mutation_id, self.target, list(self.labels), self.touched)

    def redo_plan(self, ctx: EditContext) -> Plan:
        return self.plan(ctx, self.target, list(self.labels), redoes=self.mutation_id)

    def start_messages(self) -> list[Message]:
        return merge_messages(self, self.target, self.labels)

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return merge_log_line(self, self.target, self.labels, self.redoes)

    def describe(self, limit: int = 6) -> str:
        return merge_description(self.target, self.labels, self.redoes, limit)

    @staticmethod
    def apply(editor: Editor, op: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a ``segmend log`` merge line."""
        return {"MutationID": editor.merge(int_field(op, "Target"), int_list_field(op, "Labels"))}
