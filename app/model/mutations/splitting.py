"""What the split kinds share: the plan's checks and index rows, the transform
from a stored region, and the undo (merging the new label back).

A split moves some voxels of a target body to a new label; its record keeps
the region as posted, as DVID does (``Split``: canonical RLE spans in the blob
store; voxel coordinates for a split, block coordinates for a split-coarse),
from which a replay or a redo recomputes the same blocks.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from app.kernels import parse_rles
from app.model.errors import InvalidMutationError
from app.model.geometry import Coord
from app.model.mutations.base import (
    BlockChange,
    EditContext,
    IndexRow,
    Message,
    Mutation,
    Outcome,
    Plan,
    Recording,
    Transform,
    stamp_of,
    touched_of,
)
from app.model.mutations.checks import block_origin, blocks_of
from app.model.mutations.merge import merge_messages, merge_plan, merge_transform
from app.model.mutations.regions import SplitRegion
from app.model.storage.palette_block import PaletteBlock

SplitRecord = Callable[[Recording, int, int, str], Mutation]
"""Makes a split's record from ``(recording, target size, new label size, Split ref)``."""


def split_block(
    ctx: EditContext, coord: Coord, target: int, label: int, region: SplitRegion
) -> tuple[PaletteBlock | None, int]:
    """Block ``coord`` with the voxels of ``target`` inside ``region`` set to
    ``label`` (None if none are), and how many moved: the palette's index is
    rewritten along the region's spans only."""
    return ctx.read_palette(coord).split(region.spans_in(coord, ctx.block_size),
                                         block_origin(coord, ctx.block_size), target, label)


def region_transform(ctx: EditContext, target: int, label: int, region: SplitRegion) -> Transform:
    """Voxels of ``target`` inside ``region`` become ``label``."""

    def transform(coord: Coord) -> BlockChange:
        new, n = split_block(ctx, coord, target, label, region)
        return BlockChange(coord, new, n)

    return transform


def stored_spans(ctx: EditContext, ref: str) -> NDArray[np.int32]:
    """The RLE spans a split record keeps in the blob store (its ``Split``)."""
    try:
        return parse_rles(ctx.blob(ref), headered=False)
    except ValueError as exc:
        raise InvalidMutationError(f"malformed RLEs in blob {ref}: {exc}") from exc


def require_partial(
    target: int, size: int, *, some: bool, rest: bool, what: str = "target"
) -> None:
    """InvalidMutationError unless a split moves ``some`` of the ``size`` voxels of
    ``target`` (named as ``what``) and leaves the ``rest``."""
    if not some:
        raise InvalidMutationError(f"the split region holds no voxel of {what} {target}")
    if not rest:
        raise InvalidMutationError(
            f"the split region holds all {size} voxels of {what} {target}; nothing would remain"
        )


def split_plan(
    target: int,
    label: int,
    target_blocks: dict[Coord, int],
    coords: list[Coord],
    transform: Transform,
    record: SplitRecord,
    posted: NDArray[np.integer[Any]],
    release: Callable[[], None] | None = None,
) -> Plan:
    """The plan of a split of ``target`` into ``label`` over ``coords``: refused
    if it moves no voxel or all of them.  Its record's ``Split`` keeps the
    ``posted`` region (RLE spans, ``(n, 4)``); ``release``: see :class:`Plan`."""
    size = sum(target_blocks.values())

    def finish(changes: list[BlockChange]) -> Outcome:
        moved = sum(c.changed for c in changes)
        require_partial(target, size, some=moved > 0, rest=moved < size)
        rows: list[IndexRow] = []
        for c in changes:
            if c.changed:
                rows.append((target, c.coord, target_blocks[c.coord] - c.changed))
                rows.append((label, c.coord, c.changed))

        def make(rec: Recording) -> Mutation:
            return record(rec, size - moved, moved, rec.put_spans(posted))

        return Outcome(rows, make)

    return Plan(coords, transform, finish, release=release)


@dataclass(frozen=True)
class SplitBase(Mutation):
    """What the split kinds' records share.

    Attributes
    ----------
    target : int
        The split body.
    new_label : int
        The body made of the split-off voxels.
    target_size, new_label_size : int
        Their voxels after the split.
    split_ref : str
        Blob reference of the posted region as canonical RLE spans (headerless
        DVID form; see the module docstring).
    redoes : int or None
        The MutationID of the undone split this one applies again.
    """

    undo_kind: ClassVar[type[SplitUndoBase]]
    """The kind of this kind's undo."""
    target: int
    new_label: int
    target_size: int
    new_label_size: int
    split_ref: str
    redoes: int | None = None

    @abstractmethod
    def start_message(self, **fields: Any) -> Message:
        """The kind's DVID start message from the builder's keyword arguments."""

    @abstractmethod
    def posted_spans(self, ctx: EditContext) -> NDArray[np.integer[Any]]:
        """The region it was asked for, as its ``Split`` keeps it (RLE spans ``(n, 4)``)."""

    @abstractmethod
    def log_fields(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        """The kind's own fields in its log line (after Target and NewLabel)."""

    @staticmethod
    def split_fields(record: Mapping[str, Any]) -> dict[str, Any]:
        """The shared constructor arguments from a journal JSON object."""
        return {
            "stamp": stamp_of(record),
            "touched": touched_of(record),
            "target": int(record["Target"]),
            "new_label": int(record["NewLabel"]),
            "target_size": int(record["TargetSize"]),
            "new_label_size": int(record["NewLabelSize"]),
            "split_ref": str(record["Split"]),
            "redoes": record.get("Redoes"),
        }

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.redoes is None else {"Redoes": self.redoes}
        out.update(
            Target=self.target,
            NewLabel=self.new_label,
            TargetSize=self.target_size,
            NewLabelSize=self.new_label_size,
        )
        return out

    def tail_fields(self) -> dict[str, Any]:
        return {"Split": self.split_ref}

    def labels_held(self) -> list[int]:
        return [self.target, self.new_label]

    def replay_transform(self, ctx: EditContext) -> Transform:
        return self.posted_transform(ctx, self.posted_spans(ctx))

    def posted_transform(self, ctx: EditContext, posted: NDArray[np.integer[Any]]) -> Transform:
        """The block transform of the region ``posted`` (from :meth:`posted_spans`)."""
        return region_transform(ctx, self.target, self.new_label, SplitRegion(posted))

    def undo_plan(self, ctx: EditContext) -> Plan:
        return self.undo_kind.plan(ctx, self.mutation_id, self.target, self.new_label)

    def redo_plan(self, ctx: EditContext) -> Plan:
        def record(rec: Recording, size: int, moved: int, ref: str) -> Mutation:
            return dataclasses.replace(
                self,
                stamp=rec.stamp,
                touched=rec.touched,
                target_size=size,
                new_label_size=moved,
                split_ref=ref,
                redoes=self.mutation_id,
            )

        target_blocks = blocks_of(ctx, self.target, "target")
        coords = [c for c in self.touched if c in target_blocks]
        posted = self.posted_spans(ctx)  # (read once: it is the transform's and the record's)
        transform = self.posted_transform(ctx, posted)
        return split_plan(
            self.target, self.new_label, target_blocks, coords, transform, record, posted
        )

    def start_messages(self) -> list[Message]:
        return [self.start_message(target=self.target, new_label=self.new_label,
                                   split_ref=self.split_ref, **self.common())]

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        if self.redoes is not None:
            return {"Action": "redo", **self.log_head(), "Redoes": self.redoes}
        return {
            "Action": self.action,
            **self.log_head(),
            "Target": self.target,
            "NewLabel": self.new_label,
            **self.log_fields(blob),
        }

    def describe(self, limit: int = 6) -> str:
        text = f"{self.action} {self.target} -> new {self.new_label}"
        return text if self.redoes is None else f"{text} (redo of #{self.redoes})"


@dataclass(frozen=True)
class SplitUndoBase(Mutation):
    """A split was undone: its new label was merged back into the target.

    Attributes
    ----------
    undoes : int
        The undone split's MutationID.
    target : int
        The split's target.
    labels : tuple of int
        The split's new label (DVID's merge ``Labels``).
    target_size : int
        The target's voxels after the undo.
    """

    action: ClassVar[str] = "undo"
    undoes: int
    target: int
    labels: tuple[int, ...]
    target_size: int

    def undone(self) -> int | None:
        return self.undoes

    @classmethod
    def plan(cls, ctx: EditContext, undone: int, target: int, label: int) -> Plan:
        """The plan that merges ``label`` back into ``target``."""

        def record(rec: Recording, size: int) -> Mutation:
            return cls(rec.stamp, rec.touched, undone, target, (label,), size)

        return merge_plan(ctx, target, [label], record, keep_undo=False, undoable=False)

    def fields(self) -> dict[str, Any]:
        return {
            "Undoes": self.undoes,
            "Of": self.inverse_of,
            "Target": self.target,
            "Labels": list(self.labels),
            "TargetSize": self.target_size,
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Mutation:
        return cls(
            stamp_of(record),
            touched_of(record),
            int(record["Undoes"]),
            int(record["Target"]),
            tuple(int(v) for v in record["Labels"]),
            int(record["TargetSize"]),
        )

    def replay_transform(self, ctx: EditContext) -> Transform:
        return merge_transform(ctx, self.target, self.labels)

    def start_messages(self) -> list[Message]:
        return merge_messages(self, self.target, self.labels)

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return {"Action": "undo", **self.log_head(), "Undoes": self.undoes}

    def describe(self, limit: int = 6) -> str:
        return f"undo #{self.undoes} ({self.inverse_of})"
