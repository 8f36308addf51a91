"""The cleave: some supervoxels of a body are mapped to a new body (DVID
labelmap's ``cleave``); no voxel and no label index row changes.

Unlike DVID, everything is checked before an id is taken or a message sent:
the list must not be empty, every supervoxel must belong to the body (those
that do not are named), and some of the body's voxels must stay.  The undo maps the
supervoxels back, published as a DVID ``merge`` of the cleaved body into the
original.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from app.model.errors import InvalidMutationError
from app.model.events import messages
from app.model.mutations.base import (
    EditContext,
    Editor,
    Message,
    Move,
    Mutation,
    Plan,
    Recording,
    id_list,
    stamp_of,
)
from app.model.mutations.checks import require_label
from app.model.mutations.kinds import register
from app.model.mutations.log_fields import int_field, int_list_field, opt_int_field
from app.model.mutations.merge import merge_messages
from app.model.mutations.remapping import body_supervoxels, remap_plan


def check_cleave(body: Any, supervoxels: Iterable[Any]) -> tuple[int, list[int]]:
    """The body and the sorted, distinct supervoxels of a cleave request."""
    body = require_label(body, "body")
    svs = sorted({require_label(v, "supervoxel") for v in supervoxels})
    if not svs:
        raise InvalidMutationError(f"cleave of body {body} names no supervoxels")
    return body, svs


@register
@dataclass(frozen=True)
class Cleave(Mutation):
    """Supervoxels ``cleaved`` of body ``orig`` became body ``cleaved_label``.

    Attributes
    ----------
    orig : int
        The cleaved body.
    cleaved_label : int
        The new body.
    cleaved : tuple of int
        Its supervoxels, sorted.
    cleaved_size : int
        Its voxels.
    remain_size : int
        The voxels ``orig`` keeps.
    redoes : int or None
        The MutationID of the undone cleave this one applies again.
    """

    action: ClassVar[str] = "cleave"
    mode: ClassVar[str] = "labelmap"
    orig: int
    cleaved_label: int
    cleaved: tuple[int, ...]
    cleaved_size: int
    remain_size: int
    redoes: int | None = None

    @classmethod
    def plan(
        cls, ctx: EditContext, orig: int, svs: list[int], new_label: int | None,
        redoes: int | None = None,
    ) -> Plan:
        """The plan of a cleave of checked ``svs`` off ``orig`` (into ``new_label``,
        or a newly allocated body)."""
        members = body_supervoxels(ctx, orig, "body")
        wanted = np.array(svs, np.uint64)
        foreign = wanted[~np.isin(wanted, members)]
        if foreign.size:
            raise InvalidMutationError(
                f"supervoxel(s) {id_list(foreign.tolist(), 6)} are not in body {orig}"
            )
        cleaved_size = int(ctx.supervoxel_sizes(wanted).sum())
        remain_size = ctx.body_size(orig) - cleaved_size
        if remain_size == 0:
            raise InvalidMutationError(
                f"cleave would take every supervoxel of body {orig} that has voxels"
            )
        label = ctx.claim_label(new_label)

        def record(rec: Recording) -> Cleave:
            return cls(rec.stamp, (), orig, label, tuple(svs), cleaved_size, remain_size, redoes)

        return remap_plan(record, new_label=label, release=lambda: ctx.release_label(label))

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.redoes is None else {"Redoes": self.redoes}
        out.update(
            OrigLabel=self.orig, CleavedLabel=self.cleaved_label,
            CleavedSupervoxels=list(self.cleaved), CleavedSize=self.cleaved_size,
            RemainSize=self.remain_size,
        )
        return out

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Cleave:
        return cls(
            stamp_of(record), (), int(record["OrigLabel"]), int(record["CleavedLabel"]),
            tuple(int(v) for v in record["CleavedSupervoxels"]), int(record["CleavedSize"]),
            int(record["RemainSize"]), record.get("Redoes"),
        )

    def moves(self, blob: Callable[[str], bytes]) -> list[Move]:
        return [Move(np.array(self.cleaved, np.uint64), self.orig, self.cleaved_label)]

    def body_sizes(self) -> dict[int, int | None]:
        return {self.orig: self.remain_size, self.cleaved_label: self.cleaved_size}

    def labels_held(self) -> list[int]:
        return [self.orig, self.cleaved_label]

    def undo_plan(self, ctx: EditContext) -> Plan:
        size = ctx.body_size(self.orig) + ctx.body_size(self.cleaved_label)

        def record(rec: Recording) -> CleaveUndo:
            return CleaveUndo(rec.stamp, (), self.mutation_id, self.orig, self.cleaved_label,
                              self.cleaved, size)

        return remap_plan(record, undoable=False)

    def redo_plan(self, ctx: EditContext) -> Plan:
        return self.plan(ctx, self.orig, list(self.cleaved), self.cleaved_label,
                         redoes=self.mutation_id)

    def start_messages(self) -> list[Message]:
        return [messages.cleave_start(orig=self.orig, cleaved=self.cleaved_label,
                                      supervoxels=self.cleaved, **self.common())]

    def complete_messages(self, starts: list[Message], completed: str) -> list[Message]:
        sizes = {"CleavedSize": self.cleaved_size, "RemainSize": self.remain_size}
        return [messages.complete(m, completed, sizes) for m in starts]

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        if self.redoes is not None:
            return {"Action": "redo", **self.log_head(), "Redoes": self.redoes}
        return {"Action": "cleave", **self.log_head(), "OrigLabel": self.orig,
                "CleavedLabel": self.cleaved_label, "CleavedSupervoxels": list(self.cleaved)}

    def describe(self, limit: int = 6) -> str:
        text = (f"cleave {id_list(list(self.cleaved), limit)} off {self.orig} "
                f"into {self.cleaved_label}")
        return text if self.redoes is None else f"{text} (redo of #{self.redoes})"

    @staticmethod
    def apply(editor: Editor, op: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a ``segmend log`` cleave line."""
        label, mutation_id = editor.cleave(
            int_field(op, "OrigLabel"), int_list_field(op, "CleavedSupervoxels"),
            cleaved_label=opt_int_field(op, "CleavedLabel"),
        )
        return {"CleavedLabel": label, "MutationID": mutation_id}


@register
@dataclass(frozen=True)
class CleaveUndo(Mutation):
    """Cleave ``undoes`` was undone: its supervoxels are back in ``orig``
    (journaled as ``{"Action": "undo", "Of": "cleave", "Mode": "labelmap"}``;
    published as a ``merge`` of the cleaved body into ``orig``)."""

    action: ClassVar[str] = "undo"
    inverse_of: ClassVar[str | None] = "cleave"
    mode: ClassVar[str] = "labelmap"
    undoes: int
    orig: int
    cleaved_label: int
    cleaved: tuple[int, ...]
    orig_size: int
    """The voxels of ``orig`` after the undo."""

    def undone(self) -> int | None:
        return self.undoes

    def fields(self) -> dict[str, Any]:
        return {"Undoes": self.undoes, "Of": "cleave", "OrigLabel": self.orig,
                "CleavedLabel": self.cleaved_label, "CleavedSupervoxels": list(self.cleaved),
                "TargetSize": self.orig_size}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> CleaveUndo:
        return cls(stamp_of(record), (), int(record["Undoes"]), int(record["OrigLabel"]),
                   int(record["CleavedLabel"]),
                   tuple(int(v) for v in record["CleavedSupervoxels"]),
                   int(record["TargetSize"]))

    def moves(self, blob: Callable[[str], bytes]) -> list[Move]:
        return [Move(np.array(self.cleaved, np.uint64), self.cleaved_label, self.orig)]

    def body_sizes(self) -> dict[int, int | None]:
        return {self.orig: self.orig_size, self.cleaved_label: 0}

    def start_messages(self) -> list[Message]:
        return merge_messages(self, self.orig, [self.cleaved_label])

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return {"Action": "undo", **self.log_head(), "Undoes": self.undoes}

    def describe(self, limit: int = 6) -> str:
        return f"undo #{self.undoes} (cleave)"
