"""Label allocation and the dataset's counters: one place of truth.

The counters are the max label, the next label to hand out and the next
MutationID.  The journal holds them (raised in each mutation's transaction);
the HDF5 file holds them as of its last checkpoint (so that the file alone
says what it holds).  :meth:`Counters.load` reconciles the two once, at
opening; afterwards this object is the truth and both are written from it.

A split's new label is only held while the split runs (:meth:`Counters.claim`):
the counters take it (:meth:`Counters.note_label`) once the split is allowed,
so that a refused split leaves them as they were.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from app.model.errors import InvalidMutationError
from app.model.mutations.checks import MAX_LABEL


class _MetaSource(Protocol):
    def get_meta(self, key: str, default: str | None = None) -> str | None: ...


class _AttrSource(Protocol):
    def attr(self, name: str, default: Any = None) -> Any: ...


class Counters:
    """The counters of one dataset, thread-safe.

    Parameters
    ----------
    next_label, max_label, next_mutation_id : int
        Their current values.
    """

    def __init__(self, next_label: int, max_label: int, next_mutation_id: int) -> None:
        self._lock = threading.Lock()
        self._next_label = max(next_label, max_label + 1)
        self._max_label = max_label
        self._next_mutation_id = max(next_mutation_id, 1)
        self._held: set[int] = set()  # new labels of splits still running (not yet counted)

    @classmethod
    def load(cls, journal: _MetaSource | None, store: _AttrSource) -> Counters:
        """The counters of a dataset: the larger of the journal's and the file's."""

        def value(key: str, default: int) -> int:
            journaled = journal.get_meta(key) if journal is not None else None
            return max(int(journaled or 0), int(store.attr(key, default)))

        return cls(value("next_label", 1), value("max_label", 0), value("next_mutation_id", 1))

    # ------------------------------------------------------------------ values
    @property
    def max_label(self) -> int:
        """The largest label present or ever handed out."""
        return self._max_label

    @property
    def next_label(self) -> int:
        """The next label :meth:`allocate` hands out unless a running split holds
        it (past MAX_LABEL: exhausted)."""
        return self._next_label

    @property
    def next_mutation_id(self) -> int:
        """The MutationID the next mutation takes."""
        return self._next_mutation_id

    def values(self) -> dict[str, int]:
        """The counters by their names in the journal's meta table and the file's
        attributes, taken together."""
        with self._lock:
            return {
                "next_label": self._next_label,
                "max_label": self._max_label,
                "next_mutation_id": self._next_mutation_id,
            }

    def file_attrs(self) -> dict[str, int]:
        """The counters as a checkpoint writes them into the file, with the id of
        the last mutation it holds (``checkpoint_mutation_id``); the file's
        uint64 ``next_label`` stops at MAX_LABEL (then: exhausted)."""
        values = self.values()
        values["checkpoint_mutation_id"] = values["next_mutation_id"] - 1
        values["next_label"] = min(values["next_label"], MAX_LABEL)
        return values

    # ------------------------------------------------------------- allocation
    def allocate(self, n: int = 1) -> int:
        """Hand out ``n`` consecutive new labels, counted at once; returns the first.
        InvalidMutationError (nothing changed) if the uint64 range has no room."""
        with self._lock:
            start = self._free_start(n)
            self._next_label = start + n
            self._max_label = max(self._max_label, start + n - 1)
            return start

    def _free_start(self, n: int) -> int:
        """The first of ``n`` new labels from the next label on, past the held ones
        (call under the lock)."""
        start = self._next_label
        for label in sorted(self._held):
            if start <= label < start + n:
                start = label + 1
        if start + n - 1 > MAX_LABEL:
            raise InvalidMutationError("no more labels: the uint64 range is exhausted")
        return start

    def note_label(self, label: int) -> None:
        """``label`` is in use: never hand it out."""
        with self._lock:
            self._max_label = max(self._max_label, label)
            self._next_label = max(self._next_label, label + 1)

    def raise_max_label(self, value: int) -> None:
        """Raise the max label to ``value``; InvalidMutationError if it is below."""
        with self._lock:
            if value < self._max_label:
                raise InvalidMutationError(
                    f"max label {value} is below the current max label {self._max_label}"
                )
            self._max_label = value
            self._next_label = max(self._next_label, value + 1)

    def reserve_ids(self, n: int = 1) -> int:
        """Reserve ``n`` consecutive MutationIDs; returns the first."""
        with self._lock:
            mid = self._next_mutation_id
            self._next_mutation_id += n
            return mid

    def claim(self, new_label: int | None, in_use: Callable[[int], bool]) -> int:
        """A label for a split's new body: the next free one, or ``new_label`` if
        nobody uses it (``in_use``: the label index says it has voxels).

        Held until :meth:`release`, so that no concurrent split or allocation is
        given it, but not counted: the counters stay as they are until the
        split is allowed and :meth:`note_label` takes the label.
        """
        if new_label is not None and in_use(new_label):
            raise InvalidMutationError(f"new label {new_label} is in use")
        with self._lock:
            if new_label is None:
                label = self._free_start(1)
            elif new_label in self._held:
                raise InvalidMutationError(f"new label {new_label} is in use")
            else:
                label = new_label
            self._held.add(label)
        return label

    def release(self, label: int) -> None:
        """Let go of a label held by :meth:`claim`."""
        with self._lock:
            self._held.discard(label)
