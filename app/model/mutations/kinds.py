"""The registry of mutation kinds: DVID action name → kind.

A kind registers itself with :func:`register` when its module is imported
(:mod:`app.model.mutations` imports them all).  A labelmap kind may share its
action with a voxel one (``merge``): its journal records carry ``"Mode"``.
The journal keeps the record of an undo under the action ``undo`` with the
undone action in ``Of``; its kind is the undone kind's inverse (a kind with
``inverse_of`` set).  ``segmend apply`` lines are dispatched here too
(:func:`apply_line`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol, TypeVar

from app.model.errors import InvalidMutationError
from app.model.mutations.base import Editor, Mutation


class LineEditor(Editor, Protocol):
    """What a ``segmend apply`` line may call: the edits, and what the lines that
    must reproduce the source's history (undo, redo, reserved labels) check first."""

    @property
    def next_free_label(self) -> int:
        """The first label a reservation (``next_label``) would hand out now."""
        ...

    def history_top(self, direction: Literal["undo", "redo"]) -> int:
        """The MutationID an undo (or redo) would take now; NothingToUndoError if none."""
        ...

    def local_id(self, mutation_id: int) -> int:
        """This dataset's MutationID of the input's mutation ``mutation_id`` (the
        result of the line that had it; ``mutation_id`` itself if no line had)."""
        ...


ApplyLine = Callable[[LineEditor, Mapping[str, Any]], dict[str, Any]]
"""Applies one ``segmend log`` line; returns its CLI result."""

K = TypeVar("K", bound=type[Mutation])

_KINDS: dict[tuple[str, str | None, str], type[Mutation]] = {}
_APPLY: dict[str, ApplyLine] = {}


def register(kind: K) -> K:
    """Class decorator: make ``kind`` known by its action (and, for an inverse,
    the action it undoes); its ``apply`` static method, if any, handles that
    action's log lines."""
    key = (kind.action, kind.inverse_of, kind.mode)
    if key in _KINDS:
        raise ValueError(f"mutation kind {key} is registered twice")
    _KINDS[key] = kind
    apply = getattr(kind, "apply", None)
    if apply is not None:
        register_line(kind.action, apply)
    return kind


def register_line(action: str, apply: ApplyLine) -> None:
    """Make ``apply`` the handler of ``segmend log`` lines with this ``Action``."""
    _APPLY.setdefault(action, apply)


def is_known(record: Mapping[str, Any]) -> bool:
    """Whether a journal JSON object is of a registered kind (a journal written
    by a later version may hold others: listings skip them)."""
    return _key(record) in _KINDS


def _key(record: Mapping[str, Any]) -> tuple[str, str | None, str]:
    """A journal JSON object's kind: action, undone action, mode."""
    return (str(record.get("Action")), record.get("Of"), str(record.get("Mode", "voxel")))


def record_from_json(record: Mapping[str, Any]) -> Mutation:
    """The typed record of a journal JSON object."""
    key = _key(record)
    kind = _KINDS.get(key)
    if kind is None:
        raise InvalidMutationError(f"unknown mutation {key[0]!r} in the journal")
    return kind.from_json(record)


def apply_line(editor: LineEditor, op: Mapping[str, Any]) -> dict[str, Any]:
    """Apply one ``segmend log`` line (a JSON object); returns its result."""
    action = op.get("Action")
    apply = _APPLY.get(action) if isinstance(action, str) else None
    if apply is None:
        known = list(_APPLY)
        raise InvalidMutationError(
            f"unknown Action {action!r}; expected {', '.join(known[:-1])} or {known[-1]}"
        )
    return apply(editor, op)
