"""A large journal transaction (a bulk import) commits without copying its
pages from the write-ahead log into the database file: a thread of its own
makes that copy after the commit; an ordinary transaction is copied inside
its commit, as SQLite does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.model.journal.journal import Journal
from app.model.journal.wal_checkpoint import BackgroundCheckpoint

ROWS = 1_500
"""Rows of about a page each: more than the 1,000 pages from which SQLite
checkpoints inside a commit."""

VALUE = "x" * 4_000


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.sqlite")
    yield j
    j.close()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Background checkpoints wait for the first event before they run, and
    set the second once done."""
    release, done = threading.Event(), threading.Event()
    checkpoint = BackgroundCheckpoint._checkpoint

    def waiting(self: BackgroundCheckpoint) -> None:
        release.wait()
        checkpoint(self)
        done.set()

    monkeypatch.setattr(BackgroundCheckpoint, "_checkpoint", waiting)
    yield release, done
    release.set()


def _write(journal: Journal, *, large: bool) -> None:
    with journal.transaction(large=large) as cur:
        cur.executemany("INSERT INTO meta VALUES (?, ?)",
                        ((f"k{i}", VALUE) for i in range(ROWS)))


def _read(path: Path, key: str) -> str | None:
    """``key``'s value in the journal at ``path``, as a reader beside it sees it."""
    reader = Journal(path, readonly=True)
    try:
        return reader.get_meta(key)
    finally:
        reader.close()


def _pragma(journal: Journal, name: str) -> int:
    return int(journal.connection.execute(f"PRAGMA {name}").fetchone()[0])


def test_an_ordinary_transaction_is_copied_into_the_file_inside_its_commit(
        journal: Journal, held: tuple[threading.Event, threading.Event]) -> None:
    before = journal.path.stat().st_size
    _write(journal, large=False)
    assert journal.path.stat().st_size > before + ROWS * len(VALUE)
    assert not held[1].is_set()  # (no background checkpoint)


def test_a_large_transaction_is_copied_into_the_file_after_its_commit(
        journal: Journal, held: tuple[threading.Event, threading.Event]) -> None:
    release, done = held
    before, cache = journal.path.stat().st_size, _pragma(journal, "cache_size")
    _write(journal, large=True)
    assert journal.path.stat().st_size == before  # (committed in the log)
    assert _pragma(journal, "wal_autocheckpoint") == 1000  # (SQLite's, for the next commits)
    assert _pragma(journal, "cache_size") == cache
    assert _read(journal.path, f"k{ROWS - 1}") == VALUE
    release.set()
    assert done.wait(timeout=60)
    assert journal.path.stat().st_size > before + ROWS * len(VALUE)
    journal.close()
    assert _read(journal.path, "k0") == VALUE


def test_a_large_transaction_that_fails_starts_no_checkpoint(
        journal: Journal, held: tuple[threading.Event, threading.Event]) -> None:
    release, done = held
    with pytest.raises(RuntimeError), journal.transaction(large=True) as cur:
        cur.execute("INSERT INTO meta VALUES ('a', 'b')")
        raise RuntimeError("refused")
    release.set()
    journal.close()  # (would wait for a checkpoint under way)
    assert not done.is_set()
    assert _read(journal.path, "a") is None
