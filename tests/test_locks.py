"""Locks of the engine: LabelLocks, StripedLocks, Gate.

No sleeps and no timings: a thread is known to be blocked once it has begun
waiting on the lock's condition variable (:class:`WatchedCondition`) or found
a stripe taken (:class:`WatchedLock`); threads meet on Events and Barriers.
Every bounded wait (``GUARD_S``) only turns a deadlock into a failure.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pytest

from app.model.engine.locks import Gate, LabelLocks, StripedLocks

GUARD_S = 30.0
"""Longest wait for something that must happen: reached only by a deadlock."""


class WatchedCondition(threading.Condition):
    """A condition variable that counts the waits begun on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0
        self._seen = threading.Condition()

    def wait(self, timeout: float | None = None) -> bool:
        with self._seen:
            self.waits += 1
            self._seen.notify_all()
        return super().wait(timeout)

    def await_waits(self, n: int) -> None:
        """Return once ``n`` waits have begun (threads blocked, or woken and waiting again)."""
        with self._seen:
            assert self._seen.wait_for(lambda: self.waits >= n, GUARD_S), "nobody waited"


class WatchedLock:
    """A stripe lock that records whether an acquirer found it taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.contended = threading.Event()

    def acquire(self) -> bool:
        if not self._lock.acquire(blocking=False):
            self.contended.set()
            self._lock.acquire()
        return True

    def release(self) -> None:
        self._lock.release()


class Holder:
    """A thread that enters ``lock()`` and stays inside until :meth:`leave`."""

    def __init__(self, lock: Callable[[], AbstractContextManager[Any]], name: str,
                 log: list[str]) -> None:
        self.inside = threading.Event()
        self._leave = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(lock, name, log), name=name)
        self._thread.start()

    def _run(self, lock: Callable[[], AbstractContextManager[Any]], name: str,
             log: list[str]) -> None:
        with lock():
            log.append(name)
            self.inside.set()
            self._leave.wait(GUARD_S)

    def wait_inside(self) -> None:
        assert self.inside.wait(GUARD_S), "the holder never got in"

    def leave(self) -> None:
        """Let the holder out and wait for its thread to end."""
        self._leave.set()
        self._thread.join(GUARD_S)
        assert not self._thread.is_alive(), "the holder never got out"


def run_all(targets: Iterable[Callable[[], None]]) -> None:
    """Run each target in a thread; fail if one is still running after GUARD_S."""
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(GUARD_S)
    assert not any(t.is_alive() for t in threads), "deadlock"


def watched(locks: LabelLocks | Gate) -> WatchedCondition:
    """Put a :class:`WatchedCondition` in place of the lock's condition variable."""
    cond = WatchedCondition()
    locks._cond = cond  # observed waits; nothing holds it yet
    return cond


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Threads switch every few microseconds (not 5 ms): the threads of a test
    interleave inside their critical sections, not only between them."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


# ------------------------------------------------------------------ LabelLocks
def test_overlapping_label_sets_exclude_each_other() -> None:
    locks = LabelLocks()
    log: list[str] = []
    cond = watched(locks)
    a = Holder(lambda: locks.hold([1, 2]), "a", log)
    a.wait_inside()
    b = Holder(lambda: locks.hold([2, 3]), "b", log)
    cond.await_waits(1)
    assert not b.inside.is_set()
    a.leave()
    b.wait_inside()
    b.leave()
    assert log == ["a", "b"]


def test_disjoint_label_sets_are_held_together() -> None:
    locks = LabelLocks()
    log: list[str] = []
    a = Holder(lambda: locks.hold([1, 2]), "a", log)
    a.wait_inside()
    b = Holder(lambda: locks.hold([3, 4]), "b", log)
    b.wait_inside()  # while a is inside
    a.leave()
    b.leave()


def test_a_released_label_set_is_free_again() -> None:
    locks = LabelLocks()
    log: list[str] = []
    with pytest.raises(RuntimeError), locks.hold([5]):
        raise RuntimeError("the mutation failed")
    holder = Holder(lambda: locks.hold([5]), "again", log)
    holder.wait_inside()
    holder.leave()


def test_overlapping_label_sets_in_any_order_never_deadlock(switch_often: None) -> None:
    """Threads take overlapping sets in different orders, many times: every one
    finishes and no label is ever held by two threads."""
    locks = LabelLocks()
    sets = [[1, 2, 3], [3, 2, 1], [2, 4], [4, 1], [3, 4, 5], [5, 1]]
    start = threading.Barrier(len(sets))
    guard = threading.Lock()
    holders: Counter[int] = Counter()
    overlaps: list[int] = []

    def worker(labels: list[int]) -> Callable[[], None]:
        def run() -> None:
            start.wait(GUARD_S)
            for _ in range(1000):
                with locks.hold(labels):
                    with guard:
                        holders.update(labels)
                        overlaps.extend(v for v in labels if holders[v] > 1)
                    with guard:
                        holders.subtract(labels)
        return run

    run_all(worker(s) for s in sets)
    assert not overlaps


# ---------------------------------------------------------------- StripedLocks
def test_equal_coordinates_share_a_stripe() -> None:
    locks = StripedLocks()
    coord = (3, 14, 15)
    same = (np.int64(3), np.uint16(14), np.int32(15))
    assert locks._stripe(coord) == locks._stripe(same)
    assert locks._stripe(coord) == locks._stripe((3, 14, 15))


def test_coordinates_spread_over_the_stripes() -> None:
    locks = StripedLocks(stripes=257)
    used = Counter(locks._stripe((z, y, x))
                   for z in range(16) for y in range(16) for x in range(16))
    assert len(used) == 257
    assert max(used.values()) < 4 * 4096 / 257


def test_one_block_is_held_by_one_thread_at_a_time() -> None:
    locks = StripedLocks()
    log: list[str] = []
    coord = (1, 2, 3)
    stripe = WatchedLock()
    locks._locks[locks._stripe(coord)] = stripe  # type: ignore[call-overload]
    a = Holder(lambda: locks.hold([coord, (0, 0, 0)]), "a", log)
    a.wait_inside()
    b = Holder(lambda: locks.hold([(np.int64(1), 2, 3)]), "b", log)
    assert stripe.contended.wait(GUARD_S), "b never tried the stripe"
    assert not b.inside.is_set()
    a.leave()
    b.wait_inside()
    b.leave()
    assert log == ["a", "b"]


def test_blocks_of_different_stripes_are_held_together() -> None:
    locks = StripedLocks()
    log: list[str] = []
    first = (0, 0, 0)
    other = next(c for c in ((0, 0, x) for x in range(1, 100))
                 if locks._stripe(c) != locks._stripe(first))
    a = Holder(lambda: locks.hold([first]), "a", log)
    a.wait_inside()
    b = Holder(lambda: locks.hold([other]), "b", log)
    b.wait_inside()  # while a is inside
    a.leave()
    b.leave()


def test_many_blocks_in_any_order_never_deadlock(switch_often: None) -> None:
    """Few stripes, many colliding blocks taken in opposite orders by several threads."""
    locks = StripedLocks(stripes=7)
    coords = [(z, y, x) for z in range(3) for y in range(3) for x in range(3)]
    orders = [coords, coords[::-1], coords[::2], coords[1::2][::-1]]
    start = threading.Barrier(len(orders))

    def worker(keys: list[tuple[int, int, int]]) -> Callable[[], None]:
        def run() -> None:
            start.wait(GUARD_S)
            for _ in range(1000):
                with locks.hold(keys):
                    pass
        return run

    run_all(worker(o) for o in orders)


# ------------------------------------------------------------------------ Gate
def test_shared_holders_pass_together() -> None:
    gate = Gate()
    n = 4
    together = threading.Barrier(n)

    def run() -> None:
        with gate.shared():
            together.wait(GUARD_S)  # broken (and raising) unless all n are inside at once

    run_all([run] * n)
    assert not together.broken


def test_exclusive_waits_for_shared_holders() -> None:
    gate = Gate()
    log: list[str] = []
    cond = watched(gate)
    reader = Holder(gate.shared, "shared", log)
    reader.wait_inside()
    writer = Holder(gate.exclusive, "exclusive", log)
    cond.await_waits(1)
    assert not writer.inside.is_set()
    reader.leave()
    writer.wait_inside()
    writer.leave()
    assert log == ["shared", "exclusive"]


def test_a_waiting_exclusive_holder_goes_before_new_shared_ones() -> None:
    gate = Gate()
    log: list[str] = []
    cond = watched(gate)
    first = Holder(gate.shared, "shared 1", log)
    first.wait_inside()
    writer = Holder(gate.exclusive, "exclusive", log)
    cond.await_waits(1)
    second = Holder(gate.shared, "shared 2", log)
    cond.await_waits(2)
    assert not second.inside.is_set()
    first.leave()
    writer.wait_inside()
    assert not second.inside.is_set()
    writer.leave()
    second.wait_inside()
    second.leave()
    assert log == ["shared 1", "exclusive", "shared 2"]


def test_exclusive_holders_exclude_each_other() -> None:
    gate = Gate()
    log: list[str] = []
    cond = watched(gate)
    a = Holder(gate.exclusive, "a", log)
    a.wait_inside()
    b = Holder(gate.exclusive, "b", log)
    cond.await_waits(1)
    assert not b.inside.is_set()
    a.leave()
    b.wait_inside()
    b.leave()
    assert log == ["a", "b"]
