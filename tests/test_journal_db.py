"""The one connection factory of the journal database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.model.journal.journal_db import BUSY_TIMEOUT_MS, connect, table_exists


def _pragma(conn: sqlite3.Connection, name: str) -> object:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_a_writer_creates_the_file_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "sidecar" / "journal.sqlite"
    conn = connect(path, readonly=False, create=True)
    try:
        assert path.exists()
        assert _pragma(conn, "journal_mode") == "wal"
        assert _pragma(conn, "synchronous") == 2  # FULL
        assert _pragma(conn, "busy_timeout") == BUSY_TIMEOUT_MS
        conn.execute("CREATE TABLE t (x INTEGER)")  # autocommit: visible to others at once
        assert table_exists(conn, "t") and not table_exists(conn, "u")
    finally:
        conn.close()
    other = connect(path, readonly=True)
    try:
        assert table_exists(other, "t")
        assert _pragma(other, "busy_timeout") == BUSY_TIMEOUT_MS
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            other.execute("INSERT INTO t VALUES (1)")
    finally:
        other.close()


@pytest.mark.parametrize("readonly", [True, False])
def test_opening_a_missing_journal_does_not_create_it(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "journal.sqlite"
    with pytest.raises(sqlite3.OperationalError, match="does not exist"):
        connect(path, readonly=readonly)
    assert not path.exists()


def test_a_reader_cannot_create(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot create"):
        connect(tmp_path / "journal.sqlite", readonly=True, create=True)


def test_a_file_that_is_not_sqlite_is_refused_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"not a database, but long enough to have a header" * 4)
    with pytest.raises(sqlite3.DatabaseError):
        connect(path, readonly=False)
