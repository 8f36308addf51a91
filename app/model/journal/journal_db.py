"""Opening a dataset's journal database: the one connection factory.

Every connection to the journal's SQLite file — the writer's
(:class:`~app.model.journal.journal.Journal`), the Kafka sender's and the read-only
ones of ``segmend events``/``blob``/``info`` — comes from :func:`connect`, so
the pragmas live here only: a writable connection puts the file in WAL mode
(readers then read while the writer writes) with ``synchronous=FULL``
(committed transactions survive power loss), and every connection waits up to
:data:`BUSY_TIMEOUT_MS` for a lock held by another connection.

This module imports nothing heavy, so the command line can use it at startup.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = [
    "BUSY_TIMEOUT_MS",
    "connect",
    "connect_reader",
    "file_stamp",
    "from_db",
    "table_exists",
    "to_db",
]

#: Longest wait (milliseconds) for a lock held by another connection.
BUSY_TIMEOUT_MS = 10_000


def connect(path: str | Path, *, readonly: bool, create: bool = False) -> sqlite3.Connection:
    """A connection to the journal database at ``path``.

    Parameters
    ----------
    path : str or Path
        The journal's SQLite file.
    readonly : bool
        Open without writing (``mode=ro``): for readers beside a writer, and
        for readers of a folder they cannot write (``immutable`` when no
        writer's WAL is there).
    create : bool
        Create the file (and its directory) if missing; only with ``readonly=False``.

    Returns
    -------
    sqlite3.Connection
        In autocommit mode (``isolation_level=None``: transactions are the
        caller's ``BEGIN``/``COMMIT``), usable from any thread (the caller
        serialises its use), with the busy timeout set and, when writable, WAL
        mode and ``synchronous=FULL``.

    Raises
    ------
    ValueError
        If ``readonly`` and ``create`` are both set.
    sqlite3.OperationalError
        If the file does not exist and ``create`` is not set.
    sqlite3.DatabaseError
        If the file is not an SQLite database (the connection is closed).
    """
    if readonly and create:
        raise ValueError("a read-only journal connection cannot create the file")
    path = Path(path)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise sqlite3.OperationalError(f"journal {path} does not exist")
    if readonly:
        return connect_reader(path)[0]
    conn = _open(path, "mode=rwc" if create else "mode=rw")
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def connect_reader(path: str | Path) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection to the journal at ``path``, and whether it is
    *immutable*: a journal in a folder this process cannot write, which nobody
    was writing (no WAL beside it), is read as an immutable file, SQLite being
    unable to make its shared-memory file (its owner reconnects when the file
    changes: :func:`file_stamp`).

    Raises
    ------
    sqlite3.OperationalError
        If the file does not exist or cannot be opened.
    sqlite3.DatabaseError
        If the file is not an SQLite database.
    """
    path = Path(path)
    if not path.exists():
        raise sqlite3.OperationalError(f"journal {path} does not exist")
    conn, immutable = _open(path, "mode=ro"), False
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        conn.close()
        code = exc.sqlite_errorcode & 0xFF  # the primary result code
        if code not in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY) or _wal_path(
            path
        ).exists():
            raise
        conn, immutable = _open(path, "mode=ro&immutable=1"), True
    except sqlite3.Error:
        conn.close()
        raise
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn, immutable


def file_stamp(path: Path) -> tuple[int, int, bool]:
    """What says a journal file changed: its modification time, size, and
    whether a writer's WAL is beside it."""
    st = path.stat()
    return st.st_mtime_ns, st.st_size, _wal_path(path).exists()


def _open(path: Path, query: str) -> sqlite3.Connection:
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?{query}",
        uri=True,
        check_same_thread=False,
        isolation_level=None,
    )


def _wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the journal database has a table ``name`` (a journal being created may not)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def to_db(label: int) -> int:
    """A uint64 label as a signed SQLite integer."""
    return label - (1 << 64) if label >= 1 << 63 else label


def from_db(value: int) -> int:
    """Inverse of :func:`to_db`."""
    return value + (1 << 64) if value < 0 else value
