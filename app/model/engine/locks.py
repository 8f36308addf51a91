"""Locks that let disjoint edits run together and keep overlapping ones apart."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager


class LabelLocks:
    """Serialises mutations whose label sets overlap.

    A mutation holds all its labels at once; another mutation that needs any
    of them waits until they are released.  All labels are taken in one step
    under a condition variable, so two mutations never deadlock.  Not
    re-entrant: a thread asking again for a label it holds waits forever.
    """

    def __init__(self) -> None:
        self._busy: set[int] = set()
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, labels: Iterable[int]) -> Iterator[None]:
        """Hold ``labels`` for the duration of the ``with`` block."""
        wanted = set(labels)
        with self._cond:
            while wanted & self._busy:
                self._cond.wait()
            self._busy |= wanted
        try:
            yield
        finally:
            with self._cond:
                self._busy -= wanted
                self._cond.notify_all()


class StripedLocks:
    """A fixed set of locks that blocks hash onto, as DVID shards block handlers.

    One block is never written by two threads at once; locks for many blocks
    are taken in stripe order, so two holders never deadlock.  Keys that
    compare equal share a stripe (a coordinate of NumPy integers and the same
    coordinate of Python ints, say).  Not re-entrant.
    """

    def __init__(self, stripes: int = 257) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    def _stripe(self, key: Hashable) -> int:
        return hash(key) % len(self._locks)

    @contextmanager
    def hold(self, keys: Iterable[Hashable]) -> Iterator[None]:
        """Hold the stripes of every key in ``keys``."""
        stripes = sorted({self._stripe(k) for k in keys})
        taken: list[threading.Lock] = []
        try:
            for s in stripes:
                self._locks[s].acquire()
                taken.append(self._locks[s])
            yield
        finally:
            for lock in reversed(taken):
                lock.release()


class Gate:
    """Many holders of the shared side, or one of the exclusive side.

    Mutations pass the gate shared for their whole run; a checkpoint closes it
    (exclusive) to write a state in which every mutation is either complete or
    not begun.  Waiting writers take precedence over new shared holders, so a
    stream of edits cannot starve a checkpoint.  Not re-entrant: a shared
    holder asking again while a writer waits waits forever.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the shared side for the ``with`` block."""
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the exclusive side for the ``with`` block."""
        with self._cond:
            self._waiting += 1
            while self._exclusive or self._shared:
                self._cond.wait()
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()
