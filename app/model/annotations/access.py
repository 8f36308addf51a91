"""``Dataset.annotations``: a dataset's annotation sets, read and edited in DVID's shapes.

Reads work on any dataset (a reader sees the writer's last commit, inside
:meth:`~app.model.dataset_reads.DatasetReads.snapshot`); commands need a
dataset open for editing (:class:`~app.model.annotations.sets.AnnotationSets`).
Lists come back sorted by position (``z, y, x``): DVID promises no order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from app.model.annotations import tables
from app.model.annotations.elements import Point
from app.model.annotations.sets import AnnotationSets
from app.model.errors import InvalidMutationError, ReadOnlyError
from app.model.journal.journal import Journal

Element = dict[str, Any]
"""An element's DVID JSON object."""


class Annotations:
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
        self._journal = journal
        self._snapshot = snapshot
        self._sets = sets
        self._path = path

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

    def _read(self, query: Callable[[sqlite3.Connection], Any], empty: Any) -> Any:
        with self._snapshot():
            journal = self._journal()
            if journal is None:
                return empty
            with journal.reading() as conn:
                try:
                    return query(conn)
                except sqlite3.OperationalError as exc:  # (a journal older than annotations)
                    if "no such table" not in str(exc):
                        raise
                    return empty

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
            raise ReadOnlyError(f"{self._path} is open read-only")
        return self._sets


def _elements(rows: list[str], relationships: bool) -> list[Element]:
    out = [json.loads(r) for r in rows]
    if not relationships:
        for element in out:
            del element["Rels"]
    return out


