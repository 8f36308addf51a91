"""The label bookkeeping kinds: raising the max label (DVID ``post-maxlabel``)
and reserving new labels (DVID ``post-nextlabel``).  No voxel changes; neither
can be undone.  Applied from ``segmend log`` lines, a reservation reserves the
labels the line names (``Start Label`` to ``End Label``), or is refused."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from app.model.errors import InvalidMutationError
from app.model.events import messages
from app.model.mutations.base import Editor, Message, Mutation, stamp_of
from app.model.mutations.checks import MAX_LABEL
from app.model.mutations.kinds import LineEditor, register
from app.model.mutations.log_fields import int_field


@register
@dataclass(frozen=True)
class NextLabel(Mutation):
    """Labels ``start`` to ``end`` (inclusive) were reserved."""

    action: ClassVar[str] = "post-nextlabel"
    sends_complete: ClassVar[bool] = False
    start: int
    end: int

    def fields(self) -> dict[str, Any]:
        return {"Start Label": self.start, "End Label": self.end}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> NextLabel:
        return cls(stamp_of(record), (), int(record["Start Label"]), int(record["End Label"]))

    def start_messages(self) -> list[Message]:
        return [
            messages.nextlabel(
                start=self.start,
                end=self.end,
                uuid=self.stamp.uuid,
                timestamp=self.stamp.timestamp,
            )
        ]

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return {
            "Action": self.action,
            **self.log_head(),
            "Start Label": self.start,
            "End Label": self.end,
        }

    def describe(self, limit: int = 6) -> str:
        return self.action

    @staticmethod
    def apply(editor: LineEditor, op: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a ``segmend log`` post-nextlabel line: reserve the same labels,
        in one mutation (labels below the first free one are taken: refused)."""
        start, end = int_field(op, "Start Label"), int_field(op, "End Label")
        if not 0 < start <= end <= MAX_LABEL:
            raise InvalidMutationError(
                f"Start Label {start} to End Label {end} is not a range of uint64 labels"
            )
        free = editor.next_free_label
        if start < free:
            raise InvalidMutationError(
                f"labels {start} to {end} are no longer free: the first free label is {free}"
            )
        got = editor.next_label(end - start + 1, start)
        return {"start": got[0], "end": got[1]}


@register
@dataclass(frozen=True)
class MaxLabel(Mutation):
    """The max label was raised to ``max_label``."""

    action: ClassVar[str] = "post-maxlabel"
    sends_complete: ClassVar[bool] = False
    max_label: int

    def fields(self) -> dict[str, Any]:
        return {"MaxLabel": self.max_label}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> MaxLabel:
        return cls(stamp_of(record), (), int(record["MaxLabel"]))

    def start_messages(self) -> list[Message]:
        return [
            messages.maxlabel(
                max_label=self.max_label,
                uuid=self.stamp.uuid,
                timestamp=self.stamp.timestamp,
            )
        ]

    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        return {"Action": self.action, **self.log_head(), "MaxLabel": self.max_label}

    def describe(self, limit: int = 6) -> str:
        return self.action

    @staticmethod
    def apply(editor: Editor, op: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a ``segmend log`` post-maxlabel line."""
        return {"MutationID": editor.set_max_label(int_field(op, "MaxLabel"))}
