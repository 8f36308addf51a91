"""The labelmap merge: every supervoxel of some bodies is mapped to a target body
(DVID labelmap's ``merge``): no voxel and no label index row changes.

The record keeps the merged bodies' supervoxels (a blob), so that its undo
gives each body back exactly its own.  The undo is published as one DVID
``cleave`` per restored body (each with its own MutationID: DVID has no undo).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from app.model.events import messages
from app.model.mutations.base import (
    EditContext,
    Message,
    Move,
    Mutation,
    Plan,
    Recording,
    stamp_of,
)
from app.model.mutations.kinds import register
from app.model.mutations.merge import merge_description, merge_log_line, merge_messages
from app.model.mutations.remapping import (
    body_supervoxels,
    decode_groups,
    encode_groups,
    remap_plan,
)


@register
@dataclass(frozen=True)
class BodyMerge(Mutation):
    """Bodies ``labels`` were merged into ``target`` (labelmap mode).

    Attributes
    ----------
    target : int
        The body that remains.
    labels : tuple of int
        The merged bodies, sorted.
    counts : tuple of int
        How many supervoxels each of ``labels`` had.
    supervoxels : str
        Blob reference of their supervoxels, body after body (uint64).
    sizes : tuple of int
        The voxels of each of ``labels``.
    target_size : int
        The target's voxels after the merge.
    redoes : int or None
        The MutationID of the undone merge this one applies again.
    """

    action: ClassVar[str] = "merge"
    mode: ClassVar[str] = "labelmap"
    target: int
    labels: tuple[int, ...]
    counts: tuple[int, ...]
    supervoxels: str
    sizes: tuple[int, ...]
    target_size: int
    redoes: int | None = None

    def merged_away(self) -> tuple[int, ...]:
        return self.labels

    @classmethod
    def plan(cls, ctx: EditContext, target: int, labels: list[int], redoes: int | None = None
             ) -> Plan:
        """The plan of a merge of checked, sorted ``labels`` into ``target``."""
        body_supervoxels(ctx, target, "target")
        groups = [body_supervoxels(ctx, label, "label") for label in labels]
        sizes = tuple(ctx.body_size(label) for label in labels)
        target_size = ctx.body_size(target) + sum(sizes)

        def record(rec: Recording) -> BodyMerge:
            ref = rec.put_bytes(encode_groups(groups))
            counts = tuple(g.size for g in groups)
            return cls(rec.stamp, rec.touched, target, tuple(labels), counts, ref, sizes,
                       target_size, redoes)

        return remap_plan(record)

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.redoes is None else {"Redoes": self.redoes}
        out.update(Target=self.target, Labels=list(self.labels),
                   SupervoxelCounts=list(self.counts), Supervoxels=self.supervoxels,
                   LabelSizes=list(self.sizes), TargetSize=self.target_size)
        return out

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> BodyMerge:
        return cls(
            stamp_of(record), (), int(record["Target"]),
            tuple(int(v) for v in record["Labels"]),
            tuple(int(v) for v in record["SupervoxelCounts"]), str(record["Supervoxels"]),
            tuple(int(v) for v in record["LabelSizes"]), int(record["TargetSize"]),
            record.get("Redoes"),
        )

    def body_sizes(self) -> dict[int, int | None]:
        return {**dict.fromkeys(self.labels, 0), self.target: self.target_size}

    def groups(self, blob: Callable[[str], bytes]) -> list[np.ndarray]:
        """Each merged body's supervoxels, in ``labels`` order."""
        return decode_groups(blob(self.supervoxels), self.counts)

    def moves(self, blob: Callable[[str], bytes]) -> list[Move]:
        return [
            Move(svs, label, self.target)
            for label, svs in zip(self.labels, self.groups(blob), strict=True)
        ]

    def labels_held(self) -> list[int]:
        return [self.target, *self.labels]

    def undo_plan(self, ctx: EditContext) -> Plan:
        groups = self.groups(ctx.blob)

        def record(rec: Recording) -> BodyMergeUndo:
            return BodyMergeUndo(
                rec.stamp, (), self.mutation_id, self.target, self.labels,
                tuple(tuple(g.tolist()) for g in groups), self.sizes,
                self.target_size - sum(self.sizes),
            )

        return remap_plan(record, n_ids=len(self.labels), undoable=False)

    def redo_plan(self, ctx: EditContext) -> Plan:
        return self.plan(ctx, self.target, list(self.labels), redoes=self.mutation_id)

    def start_messages(self) -> list[Message]:
        return merge_messages(self, self.target, self.labels)

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return merge_log_line(self, self.target, self.labels, self.redoes)

    def describe(self, limit: int = 6) -> str:
        return merge_description(self.target, self.labels, self.redoes, limit)


@register
@dataclass(frozen=True)
class BodyMergeUndo(Mutation):
    """Labelmap merge ``undoes`` was undone: each merged body has its supervoxels
    back (journaled as ``{"Action": "undo", "Of": "merge", "Mode": "labelmap"}``).

    Attributes
    ----------
    undoes : int
        The undone merge's MutationID.
    target : int
        The merge's target.
    labels : tuple of int
        The bodies given back their supervoxels.
    cleaved : tuple of tuple of int
        Each one's supervoxels, in ``labels`` order.
    sizes : tuple of int
        Each one's voxels.
    target_size : int
        The target's voxels after the undo.
    """

    action: ClassVar[str] = "undo"
    inverse_of: ClassVar[str | None] = "merge"
    mode: ClassVar[str] = "labelmap"
    undoes: int
    target: int
    labels: tuple[int, ...]
    cleaved: tuple[tuple[int, ...], ...]
    sizes: tuple[int, ...]
    target_size: int

    def undone(self) -> int | None:
        return self.undoes

    def fields(self) -> dict[str, Any]:
        return {
            "Undoes": self.undoes, "Of": "merge", "Target": self.target,
            "Labels": list(self.labels), "CleavedSupervoxels": [list(c) for c in self.cleaved],
            "LabelSizes": list(self.sizes), "TargetSize": self.target_size,
        }

    def tail_fields(self) -> dict[str, Any]:
        mid = self.mutation_id
        return {"MutationIDs": list(range(mid, mid + len(self.labels)))}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> BodyMergeUndo:
        return cls(
            stamp_of(record), (), int(record["Undoes"]), int(record["Target"]),
            tuple(int(v) for v in record["Labels"]),
            tuple(tuple(int(v) for v in c) for c in record["CleavedSupervoxels"]),
            tuple(int(v) for v in record["LabelSizes"]), int(record["TargetSize"]),
        )

    def moves(self, blob: Callable[[str], bytes]) -> list[Move]:
        return [Move(np.array(svs, np.uint64), self.target, label)
                for label, svs in zip(self.labels, self.cleaved, strict=True)]

    def body_sizes(self) -> dict[int, int | None]:
        return {**dict(zip(self.labels, self.sizes, strict=True)), self.target: self.target_size}

    def start_messages(self) -> list[Message]:
        return [
            messages.cleave_start(orig=self.target, cleaved=label, supervoxels=svs,
                                  **{**self.common(), "mutation_id": self.mutation_id + i})
            for i, (label, svs) in enumerate(zip(self.labels, self.cleaved, strict=True))
        ]

    def complete_messages(self, starts: list[Message], completed: str) -> list[Message]:
        remain = self.target_size + sum(self.sizes)
        done = []
        for start, size in zip(starts, self.sizes, strict=True):
            remain -= size
            done.append(messages.complete(
                start, completed, {"CleavedSize": size, "RemainSize": remain}
            ))
        return done

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return {"Action": "undo", **self.log_head(), "Undoes": self.undoes}

    def describe(self, limit: int = 6) -> str:
        return f"undo #{self.undoes} (merge)"
