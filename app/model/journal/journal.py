"""The journal of a dataset: SQLite in WAL mode beside the HDF5 file.

It is a *logical* redo log.  One small transaction per mutation holds what
must agree: the mutation record (with the s0 blocks it touched), the label
index rows, the counters, the undo data and the outbound events (outbox and
blob store).  SQLite with ``synchronous=FULL`` makes a committed transaction
survive ``kill -9`` and power loss.  Block images are not journaled: the HDF5
file holds the state after some mutation (its ``checkpoint_mutation_id``
attribute, written atomically with the blocks), and reopening replays the
mutations recorded after it.  An edit's durable cost is therefore a few
hundred bytes, whatever the size of the bodies.

Labels are uint64 and SQLite integers are signed 64-bit: labels at or above
2**63 are stored as their two's complement (:func:`to_db` / :func:`from_db`).

The SQL of the journal's tables lives here and in the table modules of the
events (:mod:`~app.model.events.outbox`, :mod:`~app.model.events.blobstore`);
every connection comes from :func:`app.model.journal.journal_db.connect`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels import encode_rles
from app.model.annotations.tables import create_annotation_schema
from app.model.errors import FormatError, JournalWriteError, SegmendError
from app.model.events.blobstore import create_blob_schema, get_blob, put_blob
from app.model.events.instances import create_instances_schema
from app.model.events.outbox import create_outbox_schema, last_seq
from app.model.geometry import Coord
from app.model.journal.journal_db import connect, connect_reader, file_stamp, from_db, to_db
from app.model.journal.wal_checkpoint import BackgroundCheckpoint

__all__ = ["SCHEMA_VERSION", "Journal", "from_db", "to_db"]

SCHEMA_VERSION = 2

_WRITE_FAILURES = frozenset(
    {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN}
)
"""SQLite's primary result codes of a failed write."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mutations (
    id INTEGER PRIMARY KEY,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS label_index (
    label INTEGER NOT NULL, z INTEGER NOT NULL, y INTEGER NOT NULL, x INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (label, z, y, x)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS undo_maps (
    mutation_id INTEGER NOT NULL, z INTEGER NOT NULL, y INTEGER NOT NULL, x INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (mutation_id, z, y, x)
);
"""


def _is_write_failure(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed to write (disk full, I/O error, read-only or
    unopenable file) rather than found a damaged database."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _WRITE_FAILURES


_LARGE_CACHE_KIB = 256 << 10
"""The page cache (KiB) of a large transaction: the indexes of a million
annotation elements, whose rows go in out of their order, stay in memory
instead of being written out and read back."""

RECENT_BLOBS = 8
"""Blobs a writer keeps after putting them (blobs are immutable: a reference
names its bytes, committed or not)."""


class Journal:
    """The SQLite journal of one dataset.

    Parameters
    ----------
    path : Path
        The database file (created if missing, with its directory).
    readonly : bool
        Open without writing (for readers beside a writer).

    Notes
    -----
    One connection is shared by the writer's threads under a lock; every
    write goes through :meth:`transaction`.  Other processes (readers, the
    Kafka sender) open their own connections; WAL mode lets them read while
    the writer writes.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._immutable_stamp: tuple[int, int, bool] | None = None
        try:
            if readonly:
                self._conn, immutable = connect_reader(self.path)
                if immutable:
                    self._immutable_stamp = file_stamp(self.path)
            else:
                self._conn = connect(self.path, readonly=False, create=True)
        except sqlite3.DatabaseError as exc:
            raise self._open_error(exc) from exc
        self._lock = threading.RLock()
        self._durable = True  # (the connection's PRAGMA synchronous is FULL)
        self._deferring = 0  # (open deferred() blocks)
        self._unsynced = False  # (a transaction committed since the last fsync)
        self._recent_blobs: dict[str, bytes] = {}  # (put last, oldest first)
        self._wal_checkpoint = BackgroundCheckpoint(self.path)
        self.transaction_id = 0
        """Counts the write transactions begun (the open one's, inside one)."""
        self.last_committed = 0
        """The :attr:`transaction_id` of the last one committed."""
        try:
            if not readonly:
                self._create_schema()
            version = self.get_meta("schema_version")
            if version is not None and int(version) != SCHEMA_VERSION:
                raise FormatError(f"{self.path}: journal schema {version} is not supported")
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise self._open_error(exc) from exc

    def _open_error(self, exc: sqlite3.DatabaseError) -> SegmendError:
        """The error to raise when opening fails: the disk's (a writer's), or a
        damaged journal."""
        if not self.readonly and _is_write_failure(exc):
            return self._write_error(exc)
        return FormatError(f"{self.path}: damaged journal ({exc})")

    def _write_error(self, exc: sqlite3.Error) -> JournalWriteError:
        return JournalWriteError(f"cannot write journal {self.path}: {exc}")

    def _create_schema(self) -> None:
        with self._lock:
            self._conn.executescript(_SCHEMA)
            create_outbox_schema(self._conn)
            create_blob_schema(self._conn)
            create_instances_schema(self._conn)
            create_annotation_schema(self._conn)
            if self.get_meta("schema_version") is None:
                self._conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )

    @property
    def connection(self) -> sqlite3.Connection:
        """The shared connection (hold :meth:`transaction` to write)."""
        return self._conn

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The shared connection, for reads, under the lock writers take."""
        with self._lock:
            yield self._conn

    @contextmanager
    def transaction(self, *, durable: bool = True, large: bool = False
                    ) -> Iterator[sqlite3.Cursor]:
        """A write transaction, committed on exit or rolled back on error.

        ``durable`` commits are fsync'ed (they survive power loss), unless
        inside :meth:`deferred`; others survive a killed process but may be
        lost with the machine's power until the next durable commit or
        :meth:`sync`.  A ``large`` one (hundreds of MB: a bulk import) has
        a page cache of :data:`_LARGE_CACHE_KIB` and returns once committed:
        the copy of what it wrote from the log into the database file follows
        on a thread of its own (:mod:`~app.model.journal.wal_checkpoint`).

        Raises
        ------
        JournalWriteError
            If SQLite fails (disk full, I/O error): nothing of the transaction
            was written.
        """
        with self._lock, self._large(large):
            durable = durable and not self._deferring
            cur = self._conn.cursor()
            try:
                if durable != self._durable:
                    cur.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                    self._durable = durable
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._write_error(exc) from exc
            self.transaction_id += 1
            try:
                yield cur
                cur.execute("COMMIT")
                self._unsynced = not durable
                self.last_committed = self.transaction_id
            except BaseException as exc:
                self._roll_back()
                if isinstance(exc, sqlite3.Error):
                    raise self._write_error(exc) from exc
                raise

    @contextmanager
    def _large(self, large: bool) -> Iterator[None]:
        """Around a transaction (inside the lock), if ``large``: the
        connection's page cache is :data:`_LARGE_CACHE_KIB` and SQLite does not
        checkpoint the log when it commits (it would copy a large one inside
        its commit); both are as they were after, and if it committed, the
        checkpoint starts on its own thread."""
        if not large:
            yield
            return
        saved = [(name, int(self._conn.execute(f"PRAGMA {name}").fetchone()[0]))
                 for name in ("cache_size", "wal_autocheckpoint")]
        self._conn.execute(f"PRAGMA cache_size = {-_LARGE_CACHE_KIB}")
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        try:
            yield
        finally:
            for name, value in saved:
                self._conn.execute(f"PRAGMA {name} = {value}")
        self._wal_checkpoint.start()  # (not after an error: it leaves at the yield)

    def sync(self) -> None:
        """Make every committed transaction durable, if one is not: fsync the
        write-ahead log (which holds them) and the database file (which holds
        those a WAL checkpoint moved there).  Writes nothing: it works on a
        full disk too.

        Raises
        ------
        JournalWriteError
            If the disk refuses: the commits since the last sync may not be
            durable.
        """
        with self._lock:
            if not self._unsynced:
                return
            for path in (Path(f"{self.path}-wal"), self.path):
                try:
                    fd = os.open(path, os.O_RDONLY)
                except FileNotFoundError:  # (no log: everything is in the file)
                    continue
                except OSError as exc:
                    raise JournalWriteError(f"cannot sync journal {path}: {exc.strerror}") from exc
                try:
                    os.fsync(fd)
                except OSError as exc:
                    raise JournalWriteError(f"cannot sync journal {path}: {exc.strerror}") from exc
                finally:
                    os.close(fd)
            self._unsynced = False

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A block whose durable commits do not wait for the disk (group
        commit): they are all fsync'ed once, when it ends (:meth:`sync`; also
        when it ends by an error).  Whoever reports them durable must do so
        after the block."""
        with self._lock:
            self._deferring += 1
        try:
            yield
        finally:
            with self._lock:
                self._deferring -= 1
                if not self._deferring:
                    self.sync()

    @property
    def synced(self) -> bool:
        """Whether every committed transaction is durable (fsync'ed)."""
        return not self._unsynced

    def last_event_seq(self) -> int:
        """The highest outbox ``seq`` committed (0: none)."""
        with self._lock:
            return last_seq(self._conn)

    def _roll_back(self) -> None:
        """End a failed transaction (SQLite may have rolled it back already)."""
        if self._conn.in_transaction:
            with suppress(sqlite3.Error):  # else SQLite rolls it back when it can
                self._conn.execute("ROLLBACK")

    @property
    def stale(self) -> bool:
        """True for a reader's immutable connection (a folder it cannot write:
        :func:`~app.model.journal.journal_db.connect_reader`) once the file
        changed or a writer's WAL appeared: reopen the journal to read it."""
        if self._immutable_stamp is None:
            return False
        try:
            return file_stamp(self.path) != self._immutable_stamp
        except OSError:
            return True

    def begin_read(self) -> None:
        """Begin a read transaction (readers): every query until :meth:`end_read`
        sees the journal as it is now, whatever the writer commits meanwhile."""
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.execute("SELECT COUNT(*) FROM meta").fetchone()

    def end_read(self) -> None:
        """End the read transaction of :meth:`begin_read` (if one is open)."""
        with self._lock:
            if self._conn.in_transaction:
                self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (once a checkpoint under way has ended)."""
        self._wal_checkpoint.join()
        with self._lock:
            self._conn.close()

    # -------------------------------------------------------------------- meta
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """A value of the meta table."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def get_json(self, key: str, default: Any) -> Any:
        """A JSON value of the meta table."""
        value = self.get_meta(key)
        return default if value is None else json.loads(value)

    @staticmethod
    def set_meta(cur: sqlite3.Cursor, key: str, value: Any) -> None:
        """Set a meta value (JSON-encoded unless a string) inside a transaction."""
        text = value if isinstance(value, str) else json.dumps(value)
        cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, text))

    @staticmethod
    def raise_counters(
        cur: sqlite3.Cursor, values: dict[str, int], stored: dict[str, int] | None = None
    ) -> dict[str, int]:
        """Raise integer meta values to ``values`` (never lower them), inside a
        transaction; returns them as stored then.  Kept as decimal text and
        compared in Python: labels span the whole uint64 range, beyond SQLite's
        signed integers.  ``stored``: those values as stored now, when the
        caller knows them (what this returned in the last transaction
        committed); else they are read."""
        if stored is None:
            keys = list(values)
            stored = {k: int(v) for k, v in cur.execute(
                f"SELECT key, value FROM meta WHERE key IN ({','.join('?' * len(keys))})", keys
            ).fetchall()}
        raised = [(k, str(v)) for k, v in values.items() if k not in stored or stored[k] < v]
        if raised:
            cur.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", raised)
        return {k: max(stored.get(k, v), v) for k, v in values.items()}

    # --------------------------------------------------------------- mutations
    @staticmethod
    def put_mutation(cur: sqlite3.Cursor, record: dict[str, Any], state: str) -> None:
        """Insert or update a mutation record (DVID field names) inside a transaction."""
        cur.execute(
            "INSERT OR REPLACE INTO mutations VALUES (?, ?, ?, ?)",
            (record["MutationID"], record["Action"], state, json.dumps(record)),
        )

    @staticmethod
    def restamp_uuid(cur: sqlite3.Cursor, old: str, new: str) -> None:
        """Records stamped with UUID ``old`` get ``new`` instead, inside a transaction."""
        cur.execute(
            "UPDATE mutations SET record = json_set(record, '$.UUID', ?) "
            "WHERE json_extract(record, '$.UUID') = ?",
            (new, old),
        )

    def mutations(self, since: int = 0, state: str | None = None) -> list[dict[str, Any]]:
        """Mutation records with ``MutationID > since`` in order (optionally of one state)."""
        sql = "SELECT record FROM mutations WHERE id > ?"
        args: list[Any] = [since]
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def mutation(self, mutation_id: int) -> dict[str, Any] | None:
        """One mutation record, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT record FROM mutations WHERE id = ?", (mutation_id,)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def mutation_state(self, mutation_id: int) -> str | None:
        """``"s0"`` (durable, lower levels pending) or ``"done"``; None if unknown."""
        with self._lock:
            row = self._conn.execute(
                "SELECT state FROM mutations WHERE id = ?", (mutation_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def mutation_count(self) -> int:
        """Number of recorded mutations."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM mutations").fetchone()[0])

    # -------------------------------------------------------------- label index
    def label_blocks(self, label: int) -> dict[Coord, int]:
        """s0 blocks holding ``label`` → its voxel count in each."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT z, y, x, count FROM label_index WHERE label = ?", (to_db(label),)
            ).fetchall()
        return {(z, y, x): c for z, y, x, c in rows}

    def label_size(self, label: int) -> int:
        """Voxels of ``label`` in s0 (0 if it has none)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT SUM(count) FROM label_index WHERE label = ?", (to_db(label),)
            ).fetchone()
        return int(row[0] or 0)

    def label_sizes(self, labels: NDArray[np.uint64]) -> NDArray[np.int64]:
        """Voxels of each of ``labels`` (1D) in s0."""
        keys = [to_db(v) for v in labels.tolist()]
        found: dict[int, int] = {}
        for label, _z, _y, _x, count in self._rows_of(keys):
            found[label] = found.get(label, 0) + count
        return np.array([found.get(k, 0) for k in keys], np.int64)

    def labels_size(self, labels: NDArray[np.uint64]) -> int:
        """Voxels of all of ``labels`` (1D, distinct) together in s0: summed by
        SQLite, one query per 500 labels (a body's first edit asks for its size)."""
        keys = [to_db(v) for v in labels.tolist()]
        total = 0
        for at in range(0, len(keys), 500):
            part = keys[at:at + 500]
            with self._lock:
                row = self._conn.execute(
                    "SELECT SUM(count) FROM label_index WHERE label IN "
                    f"({','.join('?' * len(part))})", part
                ).fetchone()
            total += int(row[0] or 0)
        return total

    def labels_blocks(self, labels: NDArray[np.uint64]) -> dict[Coord, int]:
        """s0 blocks holding any of ``labels`` (1D) → their voxel count in each."""
        blocks: dict[Coord, int] = {}
        for _label, z, y, x, count in self._rows_of([to_db(v) for v in labels.tolist()]):
            blocks[(z, y, x)] = blocks.get((z, y, x), 0) + count
        return blocks

    def _rows_of(self, keys: list[int]) -> list[tuple[int, int, int, int, int]]:
        """The index rows of labels (database keys), in one query per 500."""
        rows = []
        for at in range(0, len(keys), 500):  # (the lock taken per query: edits go on)
            part = keys[at:at + 500]
            with self._lock:
                rows += self._conn.execute(
                    "SELECT label, z, y, x, count FROM label_index WHERE label IN "
                    f"({','.join('?' * len(part))})", part
                ).fetchall()
        return rows

    @staticmethod
    def set_label_counts(cur: sqlite3.Cursor, rows: Iterable[tuple[int, Coord, int]]) -> None:
        """Set (label, block) → count rows; a count of 0 deletes the row."""
        keep: list[tuple[int, int, int, int, int]] = []
        drop: list[tuple[int, int, int, int, int]] = []
        for label, coord, count in rows:
            (keep if count else drop).append((to_db(label), *coord, count))
        if keep:
            cur.executemany("INSERT OR REPLACE INTO label_index VALUES (?, ?, ?, ?, ?)", keep)
        if drop:
            cur.executemany(
                "DELETE FROM label_index WHERE label = ? AND z = ? AND y = ? AND x = ?",
                [r[:4] for r in drop],
            )

    @staticmethod
    def clear_label_index(cur: sqlite3.Cursor) -> None:
        """Forget the whole label index (before a rebuild)."""
        cur.execute("DELETE FROM label_index")

    def label_index_rows(self) -> Iterator[tuple[int, Coord, int]]:
        """Every (label, block, count) row, ordered by block then label."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT label, z, y, x, count FROM label_index ORDER BY z, y, x, label"
            ).fetchall()
        for label, z, y, x, count in rows:
            yield from_db(label), (z, y, x), count

    # --------------------------------------------------------------- undo data
    @staticmethod
    def put_undo_maps(
        cur: sqlite3.Cursor, mutation_id: int, maps: Iterable[tuple[Coord, bytes]]
    ) -> None:
        """Keep what an undo of ``mutation_id`` needs: per s0 block, its encoded undo
        map (:mod:`app.model.mutations.undo_maps`)."""
        rows = [(mutation_id, *coord, payload) for coord, payload in maps]
        if rows:
            cur.executemany("INSERT OR REPLACE INTO undo_maps VALUES (?, ?, ?, ?, ?)", rows)

    @staticmethod
    def drop_undo_maps(cur: sqlite3.Cursor, mutation_ids: Iterable[int]) -> None:
        """Forget the undo data of mutations that can no longer be undone."""
        cur.executemany("DELETE FROM undo_maps WHERE mutation_id = ?", [(m,) for m in mutation_ids])

    def undo_maps(self, mutation_id: int) -> dict[Coord, bytes]:
        """The undo maps kept for ``mutation_id``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT z, y, x, payload FROM undo_maps WHERE mutation_id = ?", (mutation_id,)
            ).fetchall()
        return {(z, y, x): bytes(p) for z, y, x, p in rows}

    # ------------------------------------------------------------------- blobs
    @staticmethod
    def put_spans(cur: sqlite3.Cursor, spans: NDArray[np.integer[Any]]) -> str:
        """Store RLE spans (headerless DVID form) in the blob store; returns the reference."""
        return put_blob(cur.connection, encode_rles(spans, headered=False))

    def put_blob(self, cur: sqlite3.Cursor, data: bytes) -> str:
        """Store a blob inside a transaction; returns its reference.  The last
        few are kept here too: the edit that wrote one reads it back at once."""
        ref = put_blob(cur.connection, data)
        with self._lock:
            self._recent_blobs[ref] = bytes(data)
            while len(self._recent_blobs) > RECENT_BLOBS:
                del self._recent_blobs[next(iter(self._recent_blobs))]
        return ref

    def get_blob(self, ref: str) -> bytes:
        """A blob's bytes; KeyError naming the reference if absent."""
        with self._lock:
            recent = self._recent_blobs.get(ref)
            return recent if recent is not None else get_blob(self._conn, ref)
