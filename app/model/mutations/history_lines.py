"""``segmend apply`` lines that walk the history: ``undo`` and ``redo``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.model.mutations.base import Editor
from app.model.mutations.kinds import register_line


def _undo(editor: Editor, _op: Mapping[str, Any]) -> dict[str, Any]:
    return {"MutationID": editor.undo()}


def _redo(editor: Editor, _op: Mapping[str, Any]) -> dict[str, Any]:
    return {"MutationID": editor.redo()}


register_line("undo", _undo)
register_line("redo", _redo)
