"""The engine's parts on their own: counters, history."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.model.engine.counters import Counters
from app.model.engine.history import UNDO_DEPTH, History, Step
from app.model.errors import InvalidMutationError, NothingToUndoError
from app.model.journal.journal import Journal
from app.model.mutations.checks import MAX_LABEL


class Attrs:
    """A file's root attributes, as the store gives them."""

    def __init__(self, **values: int) -> None:
        self.values = values

    def attr(self, name: str, default: object = None) -> object:
        return self.values.get(name, default)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.sqlite")
    yield j
    j.close()


# ---------------------------------------------------------------- counters
def test_counters_load_the_larger_of_journal_and_file(journal: Journal) -> None:
    with journal.transaction() as cur:
        Journal.raise_counters(cur, {"max_label": 70, "next_label": 71, "next_mutation_id": 4})
    counters = Counters.load(journal, Attrs(max_label=90, next_label=50, next_mutation_id=2))
    assert (counters.max_label, counters.next_label, counters.next_mutation_id) == (90, 91, 4)
    assert Counters.load(None, Attrs()).values() == {
        "next_label": 1, "max_label": 0, "next_mutation_id": 1
    }


def test_raise_counters_never_lowers_and_spans_uint64(journal: Journal) -> None:
    with journal.transaction() as cur:
        Journal.raise_counters(cur, {"max_label": MAX_LABEL, "next_mutation_id": 9})
    with journal.transaction() as cur:
        Journal.raise_counters(cur, {"max_label": 5, "next_mutation_id": 3})
    assert journal.get_meta("max_label") == str(MAX_LABEL)
    assert journal.get_meta("next_mutation_id") == "9"


def take(counters: Counters, n: int = 1, start: int | None = None) -> int:
    """Reserve ``n`` labels as an allowed reservation does: held, then counted."""
    first = counters.reserve(n, start)
    counters.note_label(first + n - 1)
    counters.release(first)
    return first


def test_reservation_notes_and_exhaustion() -> None:
    counters = Counters(next_label=10, max_label=20, next_mutation_id=1)
    assert take(counters, 3) == 21 and counters.max_label == 23
    counters.note_label(100)
    assert take(counters) == 101
    with pytest.raises(InvalidMutationError, match="below the current max label 101"):
        counters.check_max_label(50)
    with pytest.raises(InvalidMutationError, match="not all free: the next free label is 102"):
        counters.reserve(2, start=90)
    assert take(counters, 2, start=200) == 200 and counters.next_label == 202
    counters.note_label(MAX_LABEL - 1)
    assert take(counters) == MAX_LABEL
    with pytest.raises(InvalidMutationError, match="uint64 range is exhausted"):
        counters.reserve()
    assert counters.file_attrs() == {
        "next_label": MAX_LABEL, "max_label": MAX_LABEL, "next_mutation_id": 1,
        "checkpoint_mutation_id": 0,
    }


def test_ids_are_consecutive_across_threads() -> None:
    counters = Counters(1, 0, 1)
    got: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(200):
            first = counters.reserve_ids(2)
            with lock:
                got.extend([first, first + 1])

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 1601))


def test_a_claimed_label_is_held_until_released() -> None:
    counters = Counters(1, 10, 1)
    used = {12}
    assert counters.claim(None, used.__contains__) == 11
    assert counters.claim(40, used.__contains__) == 40 and counters.next_label == 11
    with pytest.raises(InvalidMutationError, match="new label 40 is in use"):
        counters.claim(40, used.__contains__)
    with pytest.raises(InvalidMutationError, match="new label 12 is in use"):
        counters.claim(12, used.__contains__)
    counters.release(40)
    assert counters.claim(40, used.__contains__) == 40


# ----------------------------------------------------------------- history
def move(journal: Journal, history: History, mid: int, undoable: bool, step: Step | None) -> None:
    with journal.transaction() as cur:
        history.record(cur, mid, undoable, step)


def stacks(journal: Journal) -> tuple[list[int], list[int]]:
    return journal.get_json("undo_stack", []), journal.get_json("redo_stack", [])


def test_undo_and_redo_move_ids_between_the_stacks(journal: Journal) -> None:
    history = History(journal)
    with pytest.raises(NothingToUndoError, match="nothing to undo"):
        history.top("undo")
    move(journal, history, 1, True, None)
    move(journal, history, 2, False, None)  # e.g. post-maxlabel: not undoable
    move(journal, history, 3, True, None)
    assert stacks(journal) == ([1, 3], [])
    move(journal, history, 4, False, Step("undo", history.top("undo")))
    assert stacks(journal) == ([1], [3])
    move(journal, history, 5, True, Step("redo", history.top("redo")))
    assert stacks(journal) == ([1, 5], [])
    move(journal, history, 6, False, Step("undo", 5))
    move(journal, history, 7, True, None)  # a new edit clears the redo stack
    assert stacks(journal) == ([1, 7], [])


def test_a_step_whose_mutation_left_its_stack_rolls_back(journal: Journal) -> None:
    history = History(journal)
    move(journal, history, 1, True, None)
    move(journal, history, 2, False, Step("undo", 1))
    with pytest.raises(NothingToUndoError, match="mutation 1 was undone meanwhile"):
        move(journal, history, 3, False, Step("undo", 1))
    with pytest.raises(NothingToUndoError, match="mutation 9 can no longer be redone"):
        move(journal, history, 3, True, Step("redo", 9))
    assert stacks(journal) == ([], [1])


def test_undo_data_past_the_depth_is_dropped(journal: Journal) -> None:
    history = History(journal)
    with journal.transaction() as cur:
        Journal.put_undo_maps(cur, 1, [((0, 0, 0), b"map")])
    for mid in range(1, UNDO_DEPTH + 2):
        move(journal, history, mid, True, None)
    undo, _ = stacks(journal)
    assert undo == list(range(2, UNDO_DEPTH + 2))
    assert journal.undo_maps(1) == {}


def test_a_rolled_back_move_is_not_remembered(journal: Journal) -> None:
    history = History(journal)
    move(journal, history, 1, True, None)
    with pytest.raises(RuntimeError, match="failed"), journal.transaction() as cur:
        history.record(cur, 2, True, None)
        raise RuntimeError("the edit failed after its history moved")
    with journal.transaction() as cur:  # (another commit meanwhile)
        Journal.set_meta(cur, "other", "x")
    assert history.top("undo") == 1
    move(journal, history, 3, True, None)
    move(journal, history, 4, True, None)
    assert stacks(journal) == ([1, 3, 4], [])


def test_sync_makes_deferred_commits_durable(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    fsync = os.fsync

    def watched(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", watched)

    def synchronous() -> int:
        return int(journal.connection.execute("PRAGMA synchronous").fetchone()[0])

    with journal.deferred():
        with journal.transaction() as cur:
            assert synchronous() == 1  # (NORMAL: SQLite does not fsync this commit)
            Journal.set_meta(cur, "a", "1")
        assert not journal.synced and synced == []
    assert journal.synced  # (the log and the file fsync'ed at the end)
    assert synced == [f"{journal.path}-wal", str(journal.path)]
    with journal.transaction() as cur:
        assert synchronous() == 2  # (FULL: SQLite fsyncs it)
        Journal.set_meta(cur, "b", "1")
    journal.sync()
    assert len(synced) == 2  # (nothing left to sync)
