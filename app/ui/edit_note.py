"""A status text about one edit that stays true when the edit is undone or redone."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QObject, Signal, Slot

from app.ui.controller import Session


class EditNote(QObject):
    """The text about the last edit, rewritten when that edit is undone or redone.

    :meth:`note` shows the *done* text of a mutation; when a later record of
    the session undoes it (its ``undoes`` names the mutation), :attr:`changed`
    carries the *undone* text; when a record redoes it (``redoes``), the
    *done* text again, now naming the redo's MutationID.  Texts are format
    strings with ``{id}``: the MutationID of the record that made the state.

    Parameters
    ----------
    session : Session
        Whose mutations are followed (as their s0 blocks are written).
    """

    changed = Signal(str)
    """The text to show now; GUI thread."""

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._id: int | None = None
        self.followed: int | None = None
        """The MutationID of the last undo or redo this note answered."""
        self._done = ""
        self._undone = ""
        session.mutation_started.connect(self._on_record)
        session.closed.connect(self.forget)

    def note(self, mutation_id: int, done: str, undone: str) -> None:
        """Show ``done`` for mutation ``mutation_id`` and follow it from now on."""
        self._id, self._done, self._undone = int(mutation_id), done, undone
        self.changed.emit(done.format(id=mutation_id))

    @Slot()
    def forget(self) -> None:
        """Stop following (another text replaced this one)."""
        self._id = None

    @Slot(object)
    def _on_record(self, record: Any) -> None:
        if self._id is None:
            return
        if getattr(record, "undoes", None) == self._id:
            self.followed = int(record.mutation_id)
            self.changed.emit(self._undone.format(id=record.mutation_id))
        elif getattr(record, "redoes", None) == self._id:
            self._id = self.followed = int(record.mutation_id)
            self.changed.emit(self._done.format(id=record.mutation_id))
