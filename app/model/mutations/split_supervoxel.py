"""Split-supervoxel (DVID labelmap's ``split-supervoxel``): the voxels of a
supervoxel inside a region get a new id (*split*), the others another
(*remain*); the old id is retired (maps to 0) and both new ones map to its body.

Unlike DVID, caller-given ids are checked for collisions, and a region that
holds none or all of the supervoxel is refused (a supervoxel of size 0 never
exists).  DVID has no inverse: the undo relabels both back and is published as
segmend's ``undo-split-supervoxel`` (the same fields as ``split-supervoxel``).
The block transforms (cut supervoxels in two, join them again) serve the
labelmap body split too (:mod:`app.model.mutations.body_split`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from app.kernels import parse_rles
from app.model.errors import InvalidMutationError
from app.model.events import messages
from app.model.geometry import Coord
from app.model.mutations.base import (
    BlockChange,
    EditContext,
    Editor,
    IndexRow,
    Message,
    Move,
    Mutation,
    Outcome,
    Plan,
    Recording,
    Transform,
    stamp_of,
    touched_of,
)
from app.model.mutations.checks import block_origin, blocks_of, require_label
from app.model.mutations.kinds import register
from app.model.mutations.log_fields import int_field, opt_int_field, rles_field
from app.model.mutations.regions import SplitRegion
from app.model.mutations.splitting import require_partial, stored_spans


def check_new_ids(sv: int, split: int | None, remain: int | None) -> None:
    """Refuse requested ids that are not labels, equal, or the supervoxel itself."""
    for value, what in ((split, "split id"), (remain, "remain id")):
        if value is not None and require_label(value, what) == sv:
            raise InvalidMutationError(f"{what} {value} is the supervoxel itself")
    if split is not None and split == remain:
        raise InvalidMutationError(f"split and remain ids are both {split}")


SVSplit = tuple[int, int, int]
"""``(supervoxel, split, remain)``: a supervoxel cut in two new ones."""


def cut_transform(ctx: EditContext, splits: tuple[SVSplit, ...], region: SplitRegion
                  ) -> Transform:
    """In each block, every cut supervoxel's voxels inside ``region`` become its
    Split, the others its Remain."""
    codes = np.ones(1, np.uint8)

    def transform(coord: Coord) -> BlockChange:
        block = ctx.read_palette(coord)
        origin = block_origin(coord, ctx.block_size)
        spans = region.spans_in(coord, ctx.block_size)
        counts: dict[int, int] = {}
        for sv, split, remain in splits:
            if not (block.labels == sv).any():
                continue
            inside, n_in = block.split(spans, origin, sv, split)
            block = inside or block
            rest, n_rest, _ = block.merged(np.array([sv], np.uint64), codes, remain, undo=False)
            block = rest or block
            counts.update({split: n_in, remain: n_rest})
        changed = sum(counts.values())
        return BlockChange(coord, block if changed else None, changed, counts=counts)

    return transform


def rejoin_transform(ctx: EditContext, splits: tuple[SVSplit, ...]) -> Transform:
    """In each block, every cut supervoxel's Split and Remain become it again."""
    keys = {sv: np.array(sorted((s, r)), np.uint64) for sv, s, r in splits}
    codes = np.ones(2, np.uint8)

    def transform(coord: Coord) -> BlockChange:
        block = ctx.read_palette(coord)
        counts: dict[int, int] = {}
        for sv, parts in keys.items():
            new, n, _ = block.merged(parts, codes, sv, undo=False)
            block = new or block
            if n:
                counts[sv] = n
        changed = sum(counts.values())
        return BlockChange(coord, block if changed else None, changed, counts=counts)

    return transform


def split_supervoxel_plan(
    ctx: EditContext,
    sv: int,
    region: SplitRegion,
    ids: tuple[int, int],
    record: Callable[[Recording, int, int, int, str], Mutation],
    release: Callable[[], None] | None = None,
) -> Plan:
    """The plan that splits ``sv`` by ``region`` into ``ids`` (split, remain);
    ``record(rec, body, split size, remain size, Split ref)`` makes its record."""
    split, remain = ids
    blocks = blocks_of(ctx, sv, "supervoxel")
    body = int(ctx.body_of(np.array([sv], np.uint64))[0])
    size = sum(blocks.values())

    def finish(changes: list[BlockChange]) -> Outcome:
        inside = sum(c.counts.get(split, 0) for c in changes)
        require_partial(sv, size, some=inside > 0, rest=inside < size, what="supervoxel")
        rows: list[IndexRow] = []
        for c in changes:
            rows.append((sv, c.coord, 0))
            rows.extend((label, c.coord, n) for label, n in c.counts.items() if n)

        def make(rec: Recording) -> Mutation:
            return record(rec, body, inside, size - inside, rec.put_spans(region.spans))

        return Outcome(rows, make)

    transform = cut_transform(ctx, ((sv, split, remain),), region)
    return Plan(sorted(blocks), transform, finish, release=release)


@register
@dataclass(frozen=True)
class SplitSupervoxel(Mutation):
    """Supervoxel ``supervoxel`` of ``body`` became ``split`` (its voxels in the
    posted region) and ``remain`` (the others).

    Attributes
    ----------
    supervoxel, body : int
        The retired supervoxel and its body.
    split, remain : int
        The new supervoxels.
    split_size, remain_size : int
        Their voxels.
    split_ref : str
        Blob reference of the posted region (canonical RLE spans).
    redoes : int or None
        The MutationID of the undone split this one applies again.
    """

    action: ClassVar[str] = "split-supervoxel"
    mode: ClassVar[str] = "labelmap"
    supervoxel: int
    body: int
    split: int
    remain: int
    split_size: int
    remain_size: int
    split_ref: str
    redoes: int | None = None

    @classmethod
    def plan(cls, ctx: EditContext, sv: int, region: SplitRegion, split: int | None,
             remain: int | None) -> Plan:
        """The plan of a split of ``sv`` by a bounds-checked ``region`` (into the
        given ids, or newly allocated ones)."""
        first = ctx.claim_label(split)
        try:
            second = ctx.claim_label(remain)
        except BaseException:
            ctx.release_label(first)
            raise

        def record(rec: Recording, body: int, inside: int, rest: int, ref: str) -> Mutation:
            return cls(rec.stamp, rec.touched, sv, body, first, second, inside, rest, ref)

        def release() -> None:
            ctx.release_label(first)
            ctx.release_label(second)

        try:
            return split_supervoxel_plan(ctx, sv, region, (first, second), record, release)
        except BaseException:
            release()
            raise

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.redoes is None else {"Redoes": self.redoes}
        out.update(Supervoxel=self.supervoxel, Body=self.body, SplitSupervoxel=self.split,
                   RemainSupervoxel=self.remain, SplitSize=self.split_size,
                   RemainSize=self.remain_size)
        return out

    def tail_fields(self) -> dict[str, Any]:
        return {"Split": self.split_ref}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> SplitSupervoxel:
        return cls(
            stamp_of(record), touched_of(record), int(record["Supervoxel"]), int(record["Body"]),
            int(record["SplitSupervoxel"]), int(record["RemainSupervoxel"]),
            int(record["SplitSize"]), int(record["RemainSize"]), str(record["Split"]),
            record.get("Redoes"),
        )

    def moves(self, blob: Callable[[str], bytes]) -> list[Move]:
        # (new ids are their own bodies; a redo's were retired by the undo)
        return [
            Move(np.array([new], np.uint64), new if self.redoes is None else 0, self.body)
            for new in (self.split, self.remain)
        ] + [Move(np.array([self.supervoxel], np.uint64), self.body, 0)]

    @property
    def cut(self) -> SVSplit:
        """``(supervoxel, split, remain)``."""
        return (self.supervoxel, self.split, self.remain)

    def labels_held(self) -> list[int]:
        return [self.body, self.supervoxel, self.split, self.remain]

    def _region(self, ctx: EditContext) -> SplitRegion:
        return SplitRegion(stored_spans(ctx, self.split_ref))

    def replay_transform(self, ctx: EditContext) -> Transform:
        return cut_transform(ctx, (self.cut,), self._region(ctx))

    def undo_plan(self, ctx: EditContext) -> Plan:
        return SplitSupervoxelUndo.plan(ctx, self)

    def redo_plan(self, ctx: EditContext) -> Plan:
        def record(rec: Recording, body: int, inside: int, rest: int, ref: str) -> Mutation:
            return dataclasses.replace(self, stamp=rec.stamp, touched=rec.touched, body=body,
                                       split_size=inside, remain_size=rest, split_ref=ref,
                                       redoes=self.mutation_id)

        return split_supervoxel_plan(ctx, self.supervoxel, self._region(ctx),
                                     (self.split, self.remain), record)

    def start_messages(self) -> list[Message]:
        return [messages.split_supervoxel_start(
            supervoxel=self.supervoxel, body=self.body, split=self.split, remain=self.remain,
            split_ref=self.split_ref, **self.common())]

    def complete_messages(self, starts: list[Message], completed: str) -> list[Message]:
        sizes = {"SplitSize": self.split_size, "RemainSize": self.remain_size}
        return [messages.complete(m, completed, sizes) for m in starts]

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        if self.redoes is not None:
            return {"Action": "redo", **self.log_head(), "Redoes": self.redoes}
        return {"Action": self.action, **self.log_head(), "Supervoxel": self.supervoxel,
                "SplitSupervoxel": self.split, "RemainSupervoxel": self.remain,
                "RLEs": parse_rles(blob(self.split_ref), headered=False).tolist()}

    def describe(self, limit: int = 6) -> str:
        text = f"split supervoxel {self.supervoxel} -> {self.split} + {self.remain}"
        return text if self.redoes is None else f"{text} (redo of #{self.redoes})"

    @staticmethod
    def apply(editor: Editor, op: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a ``segmend log`` split-supervoxel line."""
        split, remain, mutation_id = editor.split_supervoxel(
            int_field(op, "Supervoxel"), rles_field(op),
            split=opt_int_field(op, "SplitSupervoxel"),
            remain=opt_int_field(op, "RemainSupervoxel"),
        )
        return {"SplitSupervoxel": split, "RemainSupervoxel": remain, "MutationID": mutation_id}


@register
@dataclass(frozen=True)
class SplitSupervoxelUndo(Mutation):
    """Split-supervoxel ``undoes`` was undone: its two supervoxels are the old one
    again (journaled as ``{"Action": "undo", "Of": "split-supervoxel"}``).

    Attributes
    ----------
    undoes : int
        The undone split's MutationID.
    supervoxel, body, split, remain : int
        As the undone :class:`SplitSupervoxel`'s.
    """

    action: ClassVar[str] = "undo"
    inverse_of: ClassVar[str | None] = "split-supervoxel"
    mode: ClassVar[str] = "labelmap"
    undoes: int
    supervoxel: int
    body: int
    split: int
    remain: int

    def undone(self) -> int | None:
        return self.undoes

    @classmethod
    def plan(cls, ctx: EditContext, done: SplitSupervoxel) -> Plan:
        """The plan that relabels ``done``'s split and remain back to its supervoxel."""
        sv, ids = done.supervoxel, (done.split, done.remain)

        def finish(changes: list[BlockChange]) -> Outcome:
            rows: list[IndexRow] = []
            for c in changes:
                rows.append((sv, c.coord, c.counts.get(sv, 0)))
                rows.extend((label, c.coord, 0) for label in ids)

            def make(rec: Recording) -> Mutation:
                return cls(rec.stamp, rec.touched, done.mutation_id, sv, done.body, *ids)

            return Outcome(rows, make)

        transform = rejoin_transform(ctx, (done.cut,))
        return Plan(list(done.touched), transform, finish, undoable=False)

    def fields(self) -> dict[str, Any]:
        return {"Undoes": self.undoes, "Of": self.inverse_of, "Supervoxel": self.supervoxel,
                "Body": self.body, "SplitSupervoxel": self.split,
                "RemainSupervoxel": self.remain}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> SplitSupervoxelUndo:
        return cls(stamp_of(record), touched_of(record), int(record["Undoes"]),
                   int(record["Supervoxel"]), int(record["Body"]),
                   int(record["SplitSupervoxel"]), int(record["RemainSupervoxel"]))

    def moves(self, blob: Callable[[str], bytes]) -> list[Move]:
        return [
            Move(np.array([self.supervoxel], np.uint64), 0, self.body),
            Move(np.array([self.split], np.uint64), self.body, 0),
            Move(np.array([self.remain], np.uint64), self.body, 0),
        ]

    def replay_transform(self, ctx: EditContext) -> Transform:
        return rejoin_transform(ctx, ((self.supervoxel, self.split, self.remain),))

    def start_messages(self) -> list[Message]:
        return [messages.undo_split_supervoxel_start(
            supervoxel=self.supervoxel, body=self.body, split=self.split, remain=self.remain,
            **self.common())]

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return {"Action": "undo", **self.log_head(), "Undoes": self.undoes}

    def describe(self, limit: int = 6) -> str:
        return f"undo #{self.undoes} (split-supervoxel)"

