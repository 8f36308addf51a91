"""``Dataset.annotations``: a dataset's annotation sets, read and edited in DVID's shapes.

Reads work on any dataset (a reader sees the writer's last commit, inside
:meth:`~app.model.dataset_reads.DatasetReads.snapshot`); commands need a
dataset open for editing (:class:`~app.model.annotations.sets.AnnotationSets`).
Lists come back sorted by position (``z, y, x``): DVID promises no order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

import msgspec

from app.model.annotations import body_values, tables
from app.model.annotations.body_fields import PROTECTED
from app.model.annotations.body_values import BodyValues
from app.model.annotations.elements import Point, paused_gc
from app.model.annotations.sets import AnnotationSets
from app.model.errors import InvalidMutationError, ReadOnlyError
from app.model.journal.journal import Journal

Element = dict[str, Any]
"""An element's DVID JSON object."""


class _JournalReads:
    """Reads of a dataset's journal tables, inside its snapshot."""

    def __init__(self, journal: Callable[[], Journal | None],
                 snapshot: Callable[[], AbstractContextManager[object]], path: str) -> None:
        self._journal = journal
        self._snapshot = snapshot
        self._path = path

    def _read(self, query: Callable[[sqlite3.Connection], Any], empty: Any) -> Any:
        with self._snapshot():
            journal = self._journal()
            if journal is None:
                return empty
            with journal.reading() as conn:
                return tables.read(conn, query, empty, str(self._path))

    def _read_only(self) -> ReadOnlyError:
        return ReadOnlyError(f"{self._path} is open read-only")


class Annotations(_JournalReads):
    """The annotation sets of one open dataset.

    Parameters
    ----------
    journal : callable
        The dataset's journal now (None: it has none yet).
    snapshot : callable
        The dataset's :meth:`snapshot`.
    sets : AnnotationSets or None
        The commands (None: the dataset is read-only).
    path : str
        Named in errors.
    """

    def __init__(self, journal: Callable[[], Journal | None],
                 snapshot: Callable[[], AbstractContextManager[object]],
                 sets: AnnotationSets | None, path: str) -> None:
        super().__init__(journal, snapshot, path)
        self._sets = sets

    # ------------------------------------------------------------------ reads
    def names(self) -> list[str]:
        """The sets holding elements, sorted."""
        return self._read(tables.set_names, [])

    def body(self, name: str, body: int, *, relationships: bool = False) -> list[Element]:
        """Set ``name``'s elements on ``body`` (DVID ``GET /label/<body>``;
        ``relationships``: with their ``Rels``)."""
        if int(body) == 0:
            raise InvalidMutationError("label 0 is the background: it has no elements")
        rows = self._read(lambda c: tables.body_elements(c, name, int(body)), [])
        return _elements(rows, relationships)

    def tag(self, name: str, tag: str, *, relationships: bool = False) -> list[Element]:
        """Set ``name``'s elements tagged ``tag`` (DVID ``GET /tag/<tag>``)."""
        return _elements(self._read(lambda c: tables.tagged(c, name, tag), []), relationships)

    def export(self, name: str) -> list[Element]:
        """Every element of set ``name``, with relationships (DVID's POST form)."""
        return _elements(self._read(lambda c: tables.all_elements(c, name), []), True)

    def top(self, name: str, n: int, kind: str = "PostSyn") -> list[dict[str, int]]:
        """The ``n`` bodies with the most ``kind`` elements of set ``name``, most
        first (DVID labelsz ``GET /top/<n>/<kind>``: ``[{"Label", "Size"}]``)."""
        if kind not in ("PreSyn", "PostSyn"):
            raise InvalidMutationError(f"bodies are ranked by PreSyn or PostSyn, got {kind!r}")
        if n < 1:
            raise InvalidMutationError(f"the number of bodies must be >= 1, got {n}")
        rows = self._read(lambda c: tables.top(c, name, kind, n), [])
        return [{"Label": body, "Size": size} for body, size in rows]

    def counts(self, name: str, body: int) -> dict[str, int]:
        """Set ``name``'s PreSyn and PostSyn elements on ``body``."""
        return self._read(lambda c: tables.counts_of(c, name, int(body)),
                          dict.fromkeys(("PreSyn", "PostSyn"), 0))

    # --------------------------------------------------------------- commands
    def post(self, name: str, data: bytes | str) -> int:
        """Add or replace elements (DVID ``POST /elements``); returns how many."""
        return self._editing().post(name, data)

    def delete(self, name: str, pos: Point) -> None:
        """Delete the element at ``pos`` (DVID ``DELETE /element/<x_y_z>``)."""
        self._editing().delete(name, pos)

    def move(self, name: str, old: Point, new: Point) -> None:
        """Move the element at ``old`` to ``new`` (DVID ``POST /move/<from>/<to>``)."""
        self._editing().move(name, old, new)

    def _editing(self) -> AnnotationSets:
        if self._sets is None:
            raise self._read_only()
        return self._sets


class BodyAnnotations(_JournalReads):
    """The body annotations of one open dataset (status, name, class, comment):
    see :mod:`app.model.annotations.body_values`.

    Parameters
    ----------
    journal, snapshot, path
        As :class:`Annotations` takes them.
    values : BodyValues or None
        The commands (None: the dataset is read-only).
    """

    def __init__(self, journal: Callable[[], Journal | None],
                 snapshot: Callable[[], AbstractContextManager[object]],
                 values: BodyValues | None, path: str) -> None:
        super().__init__(journal, snapshot, path)
        self._values = values

    def get(self, body: int) -> dict[str, Any] | None:
        """The annotation of ``body`` (None: none)."""
        return self._read(lambda c: body_values.value_of(c, int(body)), None)

    def with_status(self, status: str) -> list[dict[str, Any]]:
        """The annotations whose status is ``status``, by body."""
        return self._read(lambda c: body_values.with_status(c, status), [])

    def protected_statuses(self) -> tuple[str, ...]:
        """The statuses that refuse merges and splits unless forced."""
        return self._read(body_values.protected_statuses, PROTECTED)

    def set(self, body: int, value: dict[str, Any]) -> dict[str, Any]:
        """Replace ``body``'s annotation with ``value`` (DVID ``POST /key``)."""
        return self._editing().set(body, value)

    def update(self, body: int, **fields: str | None) -> dict[str, Any]:
        """Set some of ``status``, ``name``, ``class``, ``comment`` (``""``
        removes one); returns the annotation."""
        return self._editing().update(body, **fields)

    def delete(self, body: int) -> bool:
        """Delete ``body``'s annotation; returns whether it had one."""
        return self._editing().delete(body)

    def set_protected_statuses(self, statuses: Iterable[str]) -> tuple[str, ...]:
        """Make ``statuses`` the protected ones."""
        return self._editing().set_protected(statuses)

    def _editing(self) -> BodyValues:
        if self._values is None:
            raise self._read_only()
        return self._values


_RELS = ',"Rels":'
"""Where a stored element's relationships begin."""


def _elements(rows: list[str], relationships: bool) -> list[Element]:
    """The elements of stored JSON texts, decoded in one call (a body's 10,000
    elements: no garbage collection of the heap meanwhile); without
    relationships, each text is cut before its ``Rels``, always its last field
    as stored (:class:`~app.model.annotations.elements.Element`), and they are
    never decoded."""
    if not relationships:
        rows = [text[:text.rindex(_RELS)] + "}" for text in rows]
    with paused_gc():
        out: list[Element] = msgspec.json.decode(f"[{','.join(rows)}]")
    return out
