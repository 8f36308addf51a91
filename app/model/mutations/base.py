"""What every mutation kind is made of: its record, its plan, and what a plan may ask.

A *kind* is one class (a frozen dataclass, subclass of :class:`Mutation`): an
instance is the typed, immutable record of one applied edit.  The same record
is the journal row (:meth:`Mutation.to_json`; the schema: ``docs/architecture.md``),
the source of its Kafka events (:meth:`Mutation.messages`), its ``segmend log``
line (:meth:`Mutation.log_line`), its history-panel line
(:meth:`Mutation.describe`), and its undo step (:meth:`Mutation.undo_plan`,
:meth:`Mutation.redo_plan`).  The engine's pipeline
(:meth:`app.model.engine.MutationEngine.edit`) runs the :class:`Plan` any kind
builds and switches on no kind; only its typed entry points (``merge``,
``split``, …) name the kinds they make.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from app.model.events import messages
from app.model.geometry import Coord
from app.model.storage.palette_block import PaletteBlock

Message = dict[str, Any]
"""One DVID Kafka message (JSON object)."""
IndexRow = tuple[int, Coord, int]
"""``(label, s0 block, voxel count)``: a label index row; a count of 0 deletes it."""


@dataclass(frozen=True)
class BlockChange:
    """What one s0 block task produced.

    Attributes
    ----------
    coord : Coord
        The s0 block.
    new : ndarray of uint64 (block shape), PaletteBlock or None
        The block's new labels (None: unchanged).
    changed : int
        Voxels that changed label.
    counts : dict of int to int
        Voxel counts per label after the change (for kinds whose index rows
        need them).
    label_spans : dict of int to ndarray (n, 4)
        Per restored label, the voxels given back to it (undo of a merge).
    undo_map : bytes, optional
        The encoded undo map (:mod:`app.model.mutations.undo_maps`) of a merge.
    payload : bytes, optional
        ``new`` encoded for the file (set by the engine's block task).
    """

    coord: Coord
    new: NDArray[np.uint64] | PaletteBlock | None
    changed: int
    counts: dict[int, int] = field(default_factory=dict)
    label_spans: dict[int, NDArray[np.int32]] = field(default_factory=dict)
    undo_map: bytes | None = None
    payload: bytes | None = None


Transform = Callable[[Coord], BlockChange]
"""Computes one s0 block's change (reading the block itself); runs on a pool thread."""


@dataclass(frozen=True)
class Move:
    """Supervoxels that a labelmap mutation maps from one body to another.

    Attributes
    ----------
    svs : NDArray[uint64], shape (n,)
        The supervoxels, sorted and distinct.
    source, target : int
        Their body before and after.
    """

    svs: NDArray[np.uint64]
    source: int
    target: int


@dataclass(frozen=True)
class Stamp:
    """Who made a mutation, when, in which version."""

    mutation_id: int
    uuid: str
    timestamp: str
    user: str | None = None


class Recording(Protocol):
    """What a kind may use while its record is written (inside the journal transaction)."""

    @property
    def stamp(self) -> Stamp:
        """The mutation's stamp."""
        ...

    @property
    def touched(self) -> tuple[Coord, ...]:
        """The s0 blocks whose labels changed, in the plan's order."""
        ...

    def put_spans(self, spans: NDArray[np.integer[Any]]) -> str:
        """Store RLE spans ``(n, 4)`` in the blob store as canonical RLE (sorted,
        runs merged: the same spans, in any order, give the same reference);
        returns the reference."""
        ...

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` in the blob store; returns the reference."""
        ...


@dataclass(frozen=True)
class Outcome:
    """What a plan's block changes amount to, once they are all in.

    Attributes
    ----------
    rows : list of IndexRow
        The label index rows to write.
    record : callable
        Makes the record from the :class:`Recording` (stamp, touched blocks,
        blob store) inside the journal transaction.
    n_ids : int
        MutationIDs the mutation takes (consecutive, from ``stamp.mutation_id``).
    new_label : int
        A new body the mutation makes without index rows (a cleave's), which
        the counters must then cover; 0 if none.
    """

    rows: list[IndexRow]
    record: Callable[[Recording], Mutation]
    n_ids: int = 1
    new_label: int = 0


@dataclass(frozen=True)
class Plan:
    """A validated mutation, ready for the engine to run.

    Attributes
    ----------
    coords : list of Coord
        The s0 blocks the transform may change (from the label index).
    transform : Transform or None
        The per-block change (None: a mutation without voxels).
    finish : callable
        Sees every block change (in ``coords`` order), raises
        ``InvalidMutationError`` if the result is not allowed (nothing is then
        written), and returns the :class:`Outcome`.
    undoable : bool
        Whether the mutation goes on the undo stack.
    release : callable, optional
        Called once the mutation has ended, committed or refused (e.g. frees a
        new label held for it).
    """

    coords: list[Coord]
    transform: Transform | None
    finish: Callable[[list[BlockChange]], Outcome]
    undoable: bool = True
    release: Callable[[], None] | None = None


class EditContext(Protocol):
    """What a kind's plan may read and reserve; the engine provides it."""

    @property
    def shape(self) -> tuple[int, int, int]:
        """s0 shape (z, y, x)."""
        ...

    @property
    def block_size(self) -> tuple[int, int, int]:
        """Block shape (z, y, x)."""
        ...

    @property
    def grid(self) -> tuple[int, int, int]:
        """s0 blocks along (z, y, x)."""
        ...

    def read_block(self, coord: Coord) -> NDArray[np.uint64]:
        """An s0 block's labels (read-only array)."""
        ...

    def read_palette(self, coord: Coord) -> PaletteBlock:
        """An s0 block in palette form."""
        ...

    def label_blocks(self, label: int) -> dict[Coord, int]:
        """s0 blocks holding ``label`` → its voxel count in each."""
        ...

    def label_size(self, label: int) -> int:
        """Voxels of ``label`` (0 if none): of a voxel label (a supervoxel, in
        labelmap mode)."""
        ...

    def supervoxels_of(self, body: int) -> NDArray[np.uint64]:
        """The supervoxels of a labelmap dataset's ``body`` that have voxels,
        sorted (empty: no such body); InvalidMutationError in voxel mode."""
        ...

    def supervoxel_sizes(self, svs: NDArray[np.uint64]) -> NDArray[np.int64]:
        """Voxels of each of ``svs`` (the label index)."""
        ...

    def supervoxel_blocks(self, svs: NDArray[np.uint64]) -> dict[Coord, int]:
        """s0 blocks holding any of ``svs`` → their voxels there (the label index)."""
        ...

    def body_size(self, body: int) -> int:
        """Voxels of a labelmap dataset's ``body`` (kept from the mutations'
        records: a body's size costs its supervoxels once, then nothing)."""
        ...

    def body_of(self, svs: NDArray[np.uint64]) -> NDArray[np.uint64]:
        """The bodies of supervoxels (labelmap mode)."""
        ...

    def undo_maps(self, mutation_id: int) -> dict[Coord, bytes]:
        """The undo maps kept for a merge."""
        ...

    def blob(self, ref: str) -> bytes:
        """Bytes in the blob store."""
        ...

    def claim_label(self, new_label: int | None) -> int:
        """A label for a new body (allocated, or ``new_label`` if unused), held
        until :meth:`release_label`."""
        ...

    def release_label(self, label: int) -> None:
        """Let go of a label held by :meth:`claim_label`."""
        ...


class Editor(Protocol):
    """The edit calls a ``segmend apply`` line may make (:class:`app.model.dataset.Dataset`)."""

    def merge(self, target: int, labels: list[int]) -> int: ...

    def cleave(
        self, body: int, supervoxels: list[int], *, cleaved_label: int | None = None
    ) -> tuple[int, int]: ...

    def split_supervoxel(
        self, supervoxel: int, rles: NDArray[np.integer[Any]], *, split: int | None = None,
        remain: int | None = None,
    ) -> tuple[int, int, int]: ...

    def split(
        self, target: int, rles: NDArray[np.integer[Any]], *, new_label: int | None = None
    ) -> Any: ...

    def split_coarse(
        self, target: int, blocks: list[list[int]], new_label: int | None = None
    ) -> Any: ...

    def next_label(self, n: int = 1, start: int | None = None) -> tuple[int, int]: ...

    def set_max_label(self, value: int) -> int | None: ...

    def undo(self) -> int: ...

    def redo(self) -> int: ...


@dataclass(frozen=True)
class Mutation(ABC):
    """The record of one applied mutation (a kind).

    Subclasses are frozen dataclasses whose fields follow ``stamp`` and
    ``touched``; each declares the DVID ``action`` it is journaled and sent
    under.
    """

    action: ClassVar[str]
    """The DVID action name (the journal's ``Action``)."""
    inverse_of: ClassVar[str | None] = None
    """For the record of an undo: the action it undoes (the journal's ``Of``)."""
    mode: ClassVar[str] = "voxel"
    """The dataset mode it belongs to (``labelmap`` kinds carry ``"Mode"`` in the journal)."""
    sends_complete: ClassVar[bool] = True
    """Whether its messages have ``-complete`` ones."""

    stamp: Stamp
    touched: tuple[Coord, ...]
    """The s0 blocks whose labels changed (empty for label bookkeeping)."""

    @property
    def mutation_id(self) -> int:
        """The record's MutationID."""
        return self.stamp.mutation_id

    # ---------------------------------------------------------------- journal
    def to_json(self) -> dict[str, Any]:
        """The journal's JSON object (DVID field names; journal schema 2)."""
        head: dict[str, Any] = {
            "Action": self.action,
            "MutationID": self.stamp.mutation_id,
            "UUID": self.stamp.uuid,
            "Timestamp": self.stamp.timestamp,
        }
        head.update(self.fields())
        if self.mode != "voxel":
            head["Mode"] = self.mode
        if self.stamp.user:
            head["User"] = self.stamp.user
        head["App"] = "segmend"
        if self.touched:
            head["TouchedBlocks"] = [list(c) for c in self.touched]
        head.update(self.tail_fields())
        return head

    @abstractmethod
    def fields(self) -> dict[str, Any]:
        """The kind's own JSON fields (DVID names), in their journal order."""

    def tail_fields(self) -> dict[str, Any]:
        """The kind's fields written after ``TouchedBlocks`` (blob references)."""
        return {}

    @classmethod
    @abstractmethod
    def from_json(cls, record: Mapping[str, Any]) -> Mutation:
        """The record of a journal JSON object of this kind."""

    # ------------------------------------------------------------ the history
    def moves(self, blob: Callable[[str], bytes]) -> list[Move]:
        """The mapping changes this mutation made (labelmap kinds), in order;
        ``blob`` reads the blob store."""
        return []

    def merged_away(self) -> tuple[int, ...]:
        """The bodies this mutation merged into another (their body annotations
        go with them)."""
        return ()

    def undone(self) -> int | None:
        """The MutationID of the mutation this one undoes (None: not an undo)."""
        return None

    def body_sizes(self) -> dict[int, int | None]:
        """Bodies' voxels after this mutation, as its record knows them (labelmap
        kinds; None: changed, size not known)."""
        return {}

    def replay_transform(self, ctx: EditContext) -> Transform | None:
        """The block transform this mutation applied, for crash replay on the
        blocks it touched (None: no voxels changed)."""
        return None

    def undo_plan(self, ctx: EditContext) -> Plan | None:
        """The plan that undoes this mutation (None: it cannot be undone).
        Called under the labels of :meth:`labels_held`."""
        return None

    def redo_plan(self, ctx: EditContext) -> Plan:
        """The plan that applies this (undone) mutation again."""
        raise NotImplementedError(f"{self.action} cannot be redone")

    def labels_held(self) -> list[int]:
        """The labels an undo or redo of this mutation must hold."""
        return []

    # ---------------------------------------------------------------- outputs
    def messages(self, completed: str | None = None) -> list[Message]:
        """Its DVID Kafka messages: the start ones, or (``completed``: the Go time
        string of when it completed) the ``-complete`` ones, stamped then."""
        starts = self.start_messages()
        return starts if completed is None else self.complete_messages(starts, completed)

    def complete_messages(self, starts: list[Message], completed: str) -> list[Message]:
        """Its ``-complete`` messages, made from its start messages ``starts``
        (as :meth:`start_messages` returns them) and stamped ``completed``."""
        return [messages.complete(m, completed) for m in starts] if self.sends_complete else []

    @abstractmethod
    def start_messages(self) -> list[Message]:
        """Its DVID Kafka start messages."""

    @abstractmethod
    def log_line(self, blob: Callable[[str], bytes]) -> dict[str, Any]:
        """Its replayable ``segmend log`` line (SPEC §9 names)."""

    @abstractmethod
    def describe(self, limit: int = 6) -> str:
        """One line for the history panel (without the MutationID)."""

    def summary(self, limit: int = 6) -> str:
        """The history panel's line: ``#id  description  [user]``."""
        user = f"  [{self.stamp.user}]" if self.stamp.user else ""
        return f"#{self.stamp.mutation_id}  {self.describe(limit)}{user}"

    def common(self) -> dict[str, Any]:
        """The keyword arguments every mutation message builder takes."""
        return {
            "uuid": self.stamp.uuid,
            "mutation_id": self.stamp.mutation_id,
            "timestamp": self.stamp.timestamp,
            "user": self.stamp.user,
        }

    def log_head(self) -> dict[str, Any]:
        """The fields every log line starts with."""
        return {
            "MutationID": self.stamp.mutation_id,
            "UUID": self.stamp.uuid,
            "Timestamp": self.stamp.timestamp,
        }


def stamp_of(record: Mapping[str, Any]) -> Stamp:
    """The :class:`Stamp` of a journal JSON object."""
    return Stamp(
        int(record["MutationID"]), str(record["UUID"]), str(record["Timestamp"]),
        record.get("User"),
    )


def touched_of(record: Mapping[str, Any]) -> tuple[Coord, ...]:
    """The touched s0 blocks of a journal JSON object."""
    return tuple((int(z), int(y), int(x)) for z, y, x in record.get("TouchedBlocks", []))


def id_list(values: list[int], limit: int) -> str:
    """``values`` joined by commas, the ones past ``limit`` counted."""
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" +{len(values) - limit} more" if len(values) > limit else "")
