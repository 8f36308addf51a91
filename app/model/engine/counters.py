"""Label allocation and the dataset's counters: one place of truth.

The counters are the max label, the next label to hand out and the next
MutationID.  The journal holds them (raised in each mutation's transaction);
the HDF5 file holds them as of its last checkpoint (so that the file alone
says what it holds).  :meth:`Counters.load` reconciles the two once, at
opening; afterwards this object is the truth and both are written from it.

A split's new label, or a label reservation, is only held while the edit runs
(:meth:`Counters.claim`, :meth:`Counters.reserve`): the counters take it
(:meth:`Counters.note_label`) once the edit is journaled, so that a refused
edit leaves them as they were.
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
        self._held: dict[int, int] = {}  # first -> last label held, not yet counted
        # (a split's new label, a label reservation, while they run)

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
        """The next label :meth:`reserve` hands out unless a running edit holds
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
    def reserve(self, n: int = 1, start: int | None = None) -> int:
        """Hold ``n`` consecutive new labels for a reservation (from ``start``, or
        the next free ones) until :meth:`release`; returns the first.  Not
        counted: :meth:`note_label` takes them once the reservation is journaled.

        Raises
        ------
        app.model.errors.InvalidMutationError
            Nothing changed: the uint64 range has no room, or ``start`` is below
            the next label (labels there may be in use) or held.
        """
        with self._lock:
            if start is None:
                start = self._free_start(n)
            elif start < self._next_label or start + n - 1 > MAX_LABEL or self._held_in(start, n):
                raise InvalidMutationError(
                    f"labels {start} to {start + n - 1} are not all free: the next free "
                    f"label is {self._next_label}"
                )
            self._held[start] = start + n - 1
            return start

    def _free_start(self, n: int) -> int:
        """The first of ``n`` new labels from the next label on, past the held ones
        (call under the lock)."""
        start = self._next_label
        for low, high in sorted(self._held.items()):
            if low < start + n and high >= start:
                start = high + 1
        if start + n - 1 > MAX_LABEL:
            raise InvalidMutationError("no more labels: the uint64 range is exhausted")
        return start

    def _held_in(self, start: int, n: int) -> bool:
        """Whether a held label is among the ``n`` from ``start`` (under the lock)."""
        return any(low < start + n and high >= start for low, high in self._held.items())

    def note_label(self, label: int) -> None:
        """``label`` is in use: never hand it out."""
        with self._lock:
            self._max_label = max(self._max_label, label)
            self._next_label = max(self._next_label, label + 1)

    def check_max_label(self, value: int) -> bool:
        """Whether ``value`` raises the max label (InvalidMutationError if it is
        below it); :meth:`note_label` raises it once that is journaled."""
        with self._lock:
            if value < self._max_label:
                raise InvalidMutationError(
                    f"max label {value} is below the current max label {self._max_label}"
                )
            return value > self._max_label

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
            elif self._held_in(new_label, 1):
                raise InvalidMutationError(f"new label {new_label} is in use")
            else:
                label = new_label
            self._held[label] = label
        return label

    def release(self, label: int) -> None:
        """Let go of the labels held from ``label`` (by :meth:`claim` or :meth:`reserve`)."""
        with self._lock:
            self._held.pop(label, None)
