"""Undo and redo: two stacks of MutationIDs in the journal, moved in the
transaction of the mutation that moves them.

Undo and redo are one mechanism: take the record on top of a stack and apply
a plan it stores (:meth:`Mutation.undo_plan` or :meth:`Mutation.redo_plan`) as
a new mutation.  An undo moves the undone id from the undo stack to the redo
stack; a redo takes it off the redo stack and puts the new mutation on the
undo stack; any other undoable mutation goes on the undo stack and clears the
redo stack.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Literal

from app.model.errors import NothingToUndoError
from app.model.journal.journal import Journal

UNDO_DEPTH = 1000
"""Mutations kept undoable (their undo data is dropped past it)."""

Direction = Literal["undo", "redo"]


@dataclass(frozen=True)
class Step:
    """An undo or redo of mutation ``of`` in progress."""

    direction: Direction
    of: int


class History:
    """The undo and redo stacks of one dataset's journal."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._written: tuple[int, list[int], list[int]] | None = None
        """(the journal transaction, the undo and redo stacks it wrote): the
        stored stacks while it is the last one committed (no re-read)."""
        self._undo_json: tuple[list[int], str] = ([], "[]")
        """An undo stack and its JSON (a push re-encodes only the new id)."""

    def _known(self) -> tuple[list[int], list[int]] | None:
        """The undo and redo stacks stored, if this history wrote them in the
        last transaction committed (None: unknown, perhaps never written)."""
        written = self._written
        if written is None or written[0] != self.journal.last_committed:
            return None
        return written[1:]

    def _stacks(self) -> tuple[list[int], list[int]]:
        """Copies of the stored undo and redo stacks."""
        known = self._known()
        if known is not None:
            return list(known[0]), list(known[1])
        return self.journal.get_json("undo_stack", []), self.journal.get_json("redo_stack", [])

    def top(self, direction: Direction) -> int:
        """The MutationID an undo (or redo) would take; NothingToUndoError if none."""
        stack = self._stacks()[0 if direction == "undo" else 1]
        if not stack:
            raise NothingToUndoError(f"nothing to {direction}")
        return int(stack[-1])

    def record(self, cur: sqlite3.Cursor, mid: int, undoable: bool, step: Step | None) -> None:
        """Move the stacks for mutation ``mid`` (inside its transaction).

        Raises NothingToUndoError (rolling the mutation back) if ``step``'s
        mutation left its stack meanwhile.
        """
        known = self._known()
        undo, redo = self._stacks()
        if step is None:
            if not undoable:
                return
            undo.append(mid)
            redo = []
        elif step.direction == "undo":
            if step.of not in undo:
                raise NothingToUndoError(f"mutation {step.of} was undone meanwhile")
            undo.remove(step.of)
            redo.append(step.of)
        else:
            if step.of not in redo:
                raise NothingToUndoError(f"mutation {step.of} can no longer be redone")
            redo.remove(step.of)
            undo.append(mid)
        if len(undo) > UNDO_DEPTH:
            Journal.drop_undo_maps(cur, undo[:-UNDO_DEPTH])
            undo = undo[-UNDO_DEPTH:]
        Journal.set_meta(cur, "undo_stack", self._encoded(undo))
        if known is None or redo != known[1]:  # (else the stored one: a statement saved)
            Journal.set_meta(cur, "redo_stack", redo)
        self._written = (self.journal.transaction_id, undo, redo)

    def _encoded(self, undo: list[int]) -> str:
        """``json.dumps(undo)``, from the last one's when ``undo`` is it pushed
        (1,000 ids encode in about 65 µs; an edit should not)."""
        old, text = self._undo_json
        if old and undo and undo[:-1] == old:  # (a push)
            text = f"{text[:-1]}, {undo[-1]}]"
        elif len(old) > 1 and len(undo) == len(old) and undo[:-1] == old[1:]:  # (past the depth)
            text = f"[{text[text.index(', ') + 2:-1]}, {undo[-1]}]"
        else:
            text = json.dumps(undo)
        self._undo_json = (undo, text)
        return text
