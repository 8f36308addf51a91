"""The labelmap split (DVID labelmap's ``split`` with ``SVSplits``): the voxels
of a body inside a region become a new body.

A supervoxel entirely inside the region keeps its id and moves to the new body
by the mapping; only the supervoxels the region cuts are split, each into two
new ids (*Split*, inside, in the new body; *Remain*, in the body), their own
retired.  ``SVSplits`` lists exactly those (DVID splits every supervoxel the
region touches, leaving empty ones in the mapping: its issue #289).  DVID has
no inverse: the undo is published as segmend's ``undo-split`` (every
supervoxel of ``NewLabel`` goes back to ``Target``; each ``SVSplits`` entry's
Split and Remain are retired, its supervoxel restored).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from app.kernels import parse_rles, split_index
from app.model.errors import InvalidMutationError
from app.model.events import messages
from app.model.geometry import Coord
from app.model.mutations.base import (
    BlockChange,
    EditContext,
    IndexRow,
    Message,
    Move,
    Mutation,
    Outcome,
    Plan,
    Recording,
    Transform,
    id_list,
    stamp_of,
    touched_of,
)
from app.model.mutations.checks import block_origin
from app.model.mutations.kinds import register
from app.model.mutations.regions import SplitRegion
from app.model.mutations.remapping import body_supervoxels
from app.model.mutations.split_supervoxel import SVSplit, cut_transform, rejoin_transform
from app.model.mutations.splitting import require_partial, stored_spans


def inside_counts(
    ctx: EditContext, members: np.ndarray, region: SplitRegion
) -> tuple[dict[int, int], list[Coord]]:
    """Voxels of each supervoxel of ``members`` (sorted) inside ``region``, and
    the region's blocks that hold some of them."""
    inside: dict[int, int] = {}
    coords = sorted(set(region.block_coords(ctx.block_size))
                    & set(ctx.supervoxel_blocks(members)))
    for coord in coords:
        palette = ctx.read_palette(coord)
        hit = np.isin(palette.labels, members)
        if not hit.any():
            continue
        _, moved = split_index(palette.index, hit, region.spans_in(coord, ctx.block_size),
                               block_origin(coord, ctx.block_size))
        for label, n in zip(palette.labels[moved > 0].tolist(), moved[moved > 0].tolist(),
                            strict=True):
            inside[label] = inside.get(label, 0) + n
    return inside, coords


def body_split_plan(
    ctx: EditContext,
    body: int,
    region: SplitRegion,
    new_label: int,
    fresh_ids: Callable[[int], list[int]],
    record: Callable[[Recording, tuple[int, ...], tuple[SVSplit, ...], int, int, str], Mutation],
) -> Plan:
    """The plan that splits ``body`` by ``region`` into ``new_label``;
    ``fresh_ids(n)`` gives the ids of the cut supervoxels' parts;
    ``record(rec, whole, splits, body size, new size, Split ref)`` makes its record."""
    members = body_supervoxels(ctx, body, "target")
    sizes = dict(zip(members.tolist(), ctx.supervoxel_sizes(members).tolist(), strict=True))
    inside, _ = inside_counts(ctx, members, region)
    size, moved = sum(sizes.values()), sum(inside.values())
    require_partial(body, size, some=moved > 0, rest=moved < size)
    whole = tuple(sv for sv in sorted(inside) if inside[sv] == sizes[sv])
    cut = [sv for sv in sorted(inside) if inside[sv] < sizes[sv]]
    ids = fresh_ids(2 * len(cut))
    splits = tuple((sv, ids[2 * i], ids[2 * i + 1]) for i, sv in enumerate(cut))
    coords = sorted(set(ctx.supervoxel_blocks(np.array(cut, np.uint64)))) if cut else []

    def finish(changes: list[BlockChange]) -> Outcome:
        rows: list[IndexRow] = []
        for c in changes:
            rows.extend((sv, c.coord, 0) for sv, _, _ in splits)
            rows.extend((label, c.coord, n) for label, n in c.counts.items() if n)

        def make(rec: Recording) -> Mutation:
            ref = rec.put_spans(region.spans)
            return record(rec, whole, splits, size - moved, moved, ref)

        return Outcome(rows, make, new_label=new_label)

    return Plan(coords, cut_transform(ctx, splits, region) if coords else None, finish)


@register
@dataclass(frozen=True)
class BodySplit(Mutation):
    """The voxels of body ``target`` inside a region became body ``new_label``.

    Attributes
    ----------
    target, new_label : int
        The split body and the new one.
    whole : tuple of int
        The supervoxels that moved to ``new_label`` whole.
    splits : tuple of (int, int, int)
        The cut supervoxels: (supervoxel, Split in ``new_label``, Remain in ``target``).
    target_size, new_label_size : int
        Their voxels after the split.
    split_ref : str
        Blob reference of the posted region (canonical RLE spans).
    redoes : int or None
        The MutationID of the undone split this one applies again.
    """

    action: ClassVar[str] = "split"
    mode: ClassVar[str] = "labelmap"
    target: int
    new_label: int
    whole: tuple[int, ...]
    splits: tuple[SVSplit, ...]
    target_size: int
    new_label_size: int
    split_ref: str
    redoes: int | None = None

    @classmethod
    def plan(cls, ctx: EditContext, body: int, region: SplitRegion, new_label: int | None
             ) -> Plan:
        """The plan of a split of ``body`` by a bounds-checked ``region``."""
        label = ctx.claim_label(new_label)
        held = [label]

        def fresh_ids(n: int) -> list[int]:
            for _ in range(n):
                held.append(ctx.claim_label(None))
            return held[1:]

        def record(rec: Recording, whole: tuple[int, ...], splits: tuple[SVSplit, ...],
                   size: int, moved: int, ref: str) -> Mutation:
            return cls(rec.stamp, rec.touched, body, label, whole, splits, size, moved, ref)

        def release() -> None:
            for value in held:
                ctx.release_label(value)

        try:
            plan = body_split_plan(ctx, body, region, label, fresh_ids, record)
        except BaseException:
            release()
            raise
        return dataclasses.replace(plan, release=release)

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.redoes is None else {"Redoes": self.redoes}
        out.update(Target=self.target, NewLabel=self.new_label, Supervoxels=list(self.whole),
                   SVSplits=self.sv_splits(), TargetSize=self.target_size,
                   NewLabelSize=self.new_label_size)
        return out

    def tail_fields(self) -> dict[str, Any]:
        return {"Split": self.split_ref}

    def sv_splits(self) -> dict[str, dict[str, int]]:
        """DVID's ``SVSplits``: ``{"sv": {"Split": s, "Remain": r}}``."""
        return {str(sv): {"Split": s, "Remain": r} for sv, s, r in self.splits}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> BodySplit:
        return cls(
            stamp_of(record), touched_of(record), int(record["Target"]),
            int(record["NewLabel"]), tuple(int(v) for v in record["Supervoxels"]),
            tuple((int(k), int(v["Split"]), int(v["Remain"]))
                  for k, v in record["SVSplits"].items()),
            int(record["TargetSize"]), int(record["NewLabelSize"]), str(record["Split"]),
            record.get("Redoes"),
        )

    def moves(self, blob: Callable[[str], bytes]) -> list[Move]:
        out = [Move(np.array(self.whole, np.uint64), self.target, self.new_label)]
        for sv, split, remain in self.splits:  # (new ids are their own bodies; a redo's retired)
            out.append(Move(np.array([split], np.uint64),
                            split if self.redoes is None else 0, self.new_label))
            out.append(Move(np.array([remain], np.uint64),
                            remain if self.redoes is None else 0, self.target))
            out.append(Move(np.array([sv], np.uint64), self.target, 0))
        return [m for m in out if m.svs.size]

    def body_sizes(self) -> dict[int, int | None]:
        return {self.target: self.target_size, self.new_label: self.new_label_size}

    def labels_held(self) -> list[int]:
        return [self.target, self.new_label]

    def replay_transform(self, ctx: EditContext) -> Transform | None:
        if not self.touched:
            return None
        return cut_transform(ctx, self.splits, SplitRegion(stored_spans(ctx, self.split_ref)))

    def undo_plan(self, ctx: EditContext) -> Plan:
        return BodySplitUndo.plan(ctx, self)

    def redo_plan(self, ctx: EditContext) -> Plan:
        ids = [i for _, s, r in self.splits for i in (s, r)]

        def record(rec: Recording, whole: tuple[int, ...], splits: tuple[SVSplit, ...],
                   size: int, moved: int, ref: str) -> Mutation:
            if whole != self.whole or [sv for sv, _, _ in splits] != [
                    sv for sv, _, _ in self.splits]:
                raise InvalidMutationError(f"split {self.mutation_id} no longer applies")
            return dataclasses.replace(self, stamp=rec.stamp, touched=rec.touched,
                                       target_size=size, new_label_size=moved, split_ref=ref,
                                       redoes=self.mutation_id)

        region = SplitRegion(stored_spans(ctx, self.split_ref))
        return body_split_plan(ctx, self.target, region, self.new_label,
                               lambda n: ids[:n], record)

    def start_messages(self) -> list[Message]:
        return [messages.split_start(target=self.target, new_label=self.new_label,
                                     split_ref=self.split_ref, sv_splits=self.sv_splits(),
                                     **self.common())]

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        if self.redoes is not None:
            return {"Action": "redo", **self.log_head(), "Redoes": self.redoes}
        return {"Action": "split", **self.log_head(), "Target": self.target,
                "NewLabel": self.new_label,
                "RLEs": parse_rles(blob(self.split_ref), headered=False).tolist()}

    def describe(self, limit: int = 6) -> str:
        cut = f", cutting {id_list([sv for sv, _, _ in self.splits], limit)}" \
            if self.splits else ""
        text = f"split {self.target} -> new {self.new_label}{cut}"
        return text if self.redoes is None else f"{text} (redo of #{self.redoes})"


@register
@dataclass(frozen=True)
class BodySplitUndo(Mutation):
    """Labelmap split ``undoes`` was undone (journaled as ``{"Action": "undo",
    "Of": "split", "Mode": "labelmap"}``; published as ``undo-split``)."""

    action: ClassVar[str] = "undo"
    inverse_of: ClassVar[str | None] = "split"
    mode: ClassVar[str] = "labelmap"
    undoes: int
    target: int
    new_label: int
    whole: tuple[int, ...]
    splits: tuple[SVSplit, ...]
    target_size: int

    def undone(self) -> int | None:
        return self.undoes

    @classmethod
    def plan(cls, ctx: EditContext, done: BodySplit) -> Plan:
        """The plan that gives ``done``'s voxels back to its target."""

        def finish(changes: list[BlockChange]) -> Outcome:
            rows: list[IndexRow] = []
            for c in changes:
                rows.extend((sv, c.coord, n) for sv, n in c.counts.items())
                rows.extend((label, c.coord, 0) for _, s, r in done.splits for label in (s, r))

            def make(rec: Recording) -> Mutation:
                return cls(rec.stamp, rec.touched, done.mutation_id, done.target,
                           done.new_label, done.whole, done.splits,
                           done.target_size + done.new_label_size)

            return Outcome(rows, make)

        transform = rejoin_transform(ctx, done.splits) if done.touched else None
        return Plan(list(done.touched), transform, finish, undoable=False)

    def fields(self) -> dict[str, Any]:
        return {"Undoes": self.undoes, "Of": "split", "Target": self.target,
                "NewLabel": self.new_label, "Supervoxels": list(self.whole),
                "SVSplits": {str(sv): {"Split": s, "Remain": r} for sv, s, r in self.splits},
                "TargetSize": self.target_size}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> BodySplitUndo:
        return cls(
            stamp_of(record), touched_of(record), int(record["Undoes"]), int(record["Target"]),
            int(record["NewLabel"]), tuple(int(v) for v in record["Supervoxels"]),
            tuple((int(k), int(v["Split"]), int(v["Remain"]))
                  for k, v in record["SVSplits"].items()),
            int(record["TargetSize"]),
        )

    def moves(self, blob: Callable[[str], bytes]) -> list[Move]:
        out = [Move(np.array(self.whole, np.uint64), self.new_label, self.target)]
        for sv, split, remain in self.splits:
            out.append(Move(np.array([sv], np.uint64), 0, self.target))
            out.append(Move(np.array([split], np.uint64), self.new_label, 0))
            out.append(Move(np.array([remain], np.uint64), self.target, 0))
        return [m for m in out if m.svs.size]

    def body_sizes(self) -> dict[int, int | None]:
        return {self.target: self.target_size, self.new_label: 0}

    def replay_transform(self, ctx: EditContext) -> Transform | None:
        return rejoin_transform(ctx, self.splits) if self.touched else None

    def start_messages(self) -> list[Message]:
        return [messages.undo_split_start(
            target=self.target, new_label=self.new_label,
            sv_splits={sv: (s, r) for sv, s, r in self.splits}, **self.common())]

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return {"Action": "undo", **self.log_head(), "Undoes": self.undoes}

    def describe(self, limit: int = 6) -> str:
        return f"undo #{self.undoes} (split)"
