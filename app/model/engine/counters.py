"""Label allocation and the dataset's counters: one place of truth.

The counters are the max label, the next label to hand out and the next
MutationID.  The journal holds them (raised in each mutation's transaction);
the HDF5 file holds them as of its last checkpoint (so that the file alone
says what it holds).  :meth:`Counters.load` reconciles the two once, at
opening; afterwards this object is the truth and both are written from it.
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
        self._held: set[int] = set()  # new labels of splits still running

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
        """The next label :meth:`allocate` hands out (past MAX_LABEL: exhausted)."""
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
        """Hand out ``n`` consecutive new labels; returns the first."""
        with self._lock:
            start = self._next_label
            if start + n - 1 > MAX_LABEL:
                raise InvalidMutationError("no more labels: the uint64 range is exhausted")
            self._next_label += n
            self._max_label = max(self._max_label, start + n - 1)
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
        """A label for a split's new body: allocated, or ``new_label`` if nobody
        uses it (``in_use``: the label index says it has voxels).  Held until
        :meth:`release`, so that a concurrent split cannot be given it."""
        if new_label is None:
            label = self.allocate()
        else:
            label = new_label
            with self._lock:
                held = label in self._held
            if held or in_use(label):
                raise InvalidMutationError(f"new label {label} is in use")
            self.note_label(label)
        with self._lock:
            self._held.add(label)
        return label

    def release(self, label: int) -> None:
        """Let go of a label held by :meth:`claim`."""
        with self._lock:
            self._held.discard(label)
