"""A dataset's outbox and blob store, read from outside its writer.

For ``segmend events`` and ``segmend blob``: each function opens the journal of
the dataset at ``h5_path`` read-only (:func:`app.model.journal.journal_db.connect`),
reads, and closes it.  A dataset without a journal yet (never opened for
writing) reads as an empty outbox, and no journal file is created.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.model.errors import SegmendError
from app.model.events import blobstore, instances, outbox
from app.model.events.outbox import OutboxCounts, OutboxEvent
from app.model.journal.journal_db import connect, table_exists
from app.model.journal.sidecar import journal_path

__all__ = ["outbox_counts", "outbox_tail", "read_blob", "registered_instances"]


@contextmanager
def _reading(h5_path: str | Path, table: str) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to the journal, or None if it has no ``table`` (or no journal).

    Raises
    ------
    SegmendError
        If the journal cannot be opened or read (naming it).
    """
    path = journal_path(h5_path)
    if not path.exists():
        yield None
        return
    try:
        conn = connect(path, readonly=True)
    except sqlite3.Error as exc:
        raise SegmendError(f"{path}: cannot open the journal ({exc})") from None
    try:
        yield conn if table_exists(conn, table) else None
    except sqlite3.Error as exc:
        raise SegmendError(f"{path}: cannot read the journal ({exc})") from None
    finally:
        conn.close()


def outbox_counts(h5_path: str | Path) -> OutboxCounts:
    """How far the outbox of the dataset at ``h5_path`` is sent (zeros without an outbox)."""
    with _reading(h5_path, outbox.OUTBOX_TABLE) as conn:
        return OutboxCounts(0, 0, 0, 0) if conn is None else outbox.counts(conn)


def outbox_tail(h5_path: str | Path, n: int) -> list[OutboxEvent]:
    """The last ``n`` events of the dataset's outbox, oldest first (sent or not)."""
    with _reading(h5_path, outbox.OUTBOX_TABLE) as conn:
        return [] if conn is None else outbox.tail(conn, n)


def registered_instances(h5_path: str | Path) -> list[tuple[str, str, str]]:
    """The dataset's other data instances as ``(name, type, data_uuid)``, by name
    (none without a registry)."""
    with _reading(h5_path, instances.INSTANCES_TABLE) as conn:
        if conn is None:
            return []
        types = instances.instance_types(conn)
        uuids = instances.instance_uuids(conn)
    return [(name, types[name], uuids[name]) for name in sorted(uuids) if name in types]


def read_blob(h5_path: str | Path, ref: str) -> bytes:
    """The bytes of blob ``ref`` of the dataset at ``h5_path``.

    Raises
    ------
    SegmendError
        If the dataset has no blob store yet, or no blob ``ref``.
    ValueError
        If ``ref`` is not a blob reference (64 lowercase hex digits).
    """
    with _reading(h5_path, blobstore.BLOB_TABLE) as conn:
        if conn is None:
            raise SegmendError(f"{h5_path}: the dataset has no blob store yet (no {ref})")
        try:
            return blobstore.get_blob(conn, ref)
        except KeyError:
            raise SegmendError(f"{h5_path}: no blob {ref} in the blob store") from None
