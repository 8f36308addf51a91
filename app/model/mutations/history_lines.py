"""``segmend apply`` lines that walk the history: ``undo`` and ``redo``.

A ``segmend log`` undo line names the mutation it undid (``Undoes``), a redo
line the one it redid (``Redoes``), by the source's MutationIDs.  Applying the
line first checks that an undo (or redo) would take that very mutation now
(:meth:`LineEditor.local_id` maps the source's ids to the ones the lines got
here), and refuses the line otherwise; a line without the field walks the
history as it stands.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from app.model.errors import InvalidMutationError
from app.model.mutations.kinds import LineEditor, register_line
from app.model.mutations.log_fields import opt_int_field


def _undo(editor: LineEditor, op: Mapping[str, Any]) -> dict[str, Any]:
    _require_top(editor, "undo", opt_int_field(op, "Undoes"))
    return {"MutationID": editor.undo()}


def _redo(editor: LineEditor, op: Mapping[str, Any]) -> dict[str, Any]:
    _require_top(editor, "redo", opt_int_field(op, "Redoes"))
    return {"MutationID": editor.redo()}


def _require_top(editor: LineEditor, direction: Literal["undo", "redo"], named: int | None) -> None:
    """Refuse unless an undo (redo) would take mutation ``named`` of the input now."""
    if named is None:
        return
    wanted = editor.local_id(named)
    top = editor.history_top(direction)
    if top != wanted:
        field = "Undoes" if direction == "undo" else "Redoes"
        here = "" if wanted == named else f" (mutation {wanted} here)"
        raise InvalidMutationError(
            f"{field} {named}{here}, but {direction} would now {direction} mutation {top}"
        )


register_line("undo", _undo)
register_line("redo", _redo)
