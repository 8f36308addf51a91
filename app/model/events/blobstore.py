"""A content-addressed blob table in the journal's SQLite database.

DVID keeps bulky mutation payloads out of its Kafka messages: a split's
``Split`` field, and any ``DataRef``, name an entry of the blob store.  segmend
does the same with a table of the dataset's journal, so that a blob is written
in the same transaction as the mutation and the event that refers to it.

A reference is the SHA-256 of the bytes as 64 lowercase hex digits, so storing
the same bytes twice is a no-op and a reference can be checked against its
data.  Split regions are stored the way DVID does, as headerless RLE spans
(:func:`app.kernels.encode_rles`).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3

__all__ = [
    "BLOB_TABLE",
    "blob_ref",
    "create_blob_schema",
    "get_blob",
    "is_blob_ref",
    "put_blob",
]

#: Name of the blob table in the journal database.
BLOB_TABLE = "blobs"

_REF = re.compile(r"[0-9a-f]{64}")


def create_blob_schema(conn: sqlite3.Connection) -> None:
    """Create the blob table if it does not exist (no commit; DDL only).

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the journal database.
    """
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {BLOB_TABLE} ("
        " ref TEXT PRIMARY KEY NOT NULL,"
        " size INTEGER NOT NULL,"
        " data BLOB NOT NULL)"
    )


def blob_ref(data: bytes) -> str:
    """The reference of ``data``: its SHA-256 as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def is_blob_ref(ref: object) -> bool:
    """Whether ``ref`` has the form of a blob reference (64 lowercase hex digits)."""
    return isinstance(ref, str) and _REF.fullmatch(ref) is not None


def _check_ref(ref: object) -> str:
    if not is_blob_ref(ref):
        raise ValueError(
            f"not a blob reference: {ref!r} (expected 64 lowercase hex digits, a SHA-256)"
        )
    assert isinstance(ref, str)
    return ref


def put_blob(conn: sqlite3.Connection, data: bytes) -> str:
    """Store ``data`` and return its reference; storing it again is a no-op.

    Runs inside the caller's transaction and does not commit.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the journal database (schema created).
    data : bytes
        The blob.

    Returns
    -------
    str
        The SHA-256 hex digest of ``data``.

    Raises
    ------
    TypeError
        If ``data`` is not bytes-like.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"a blob must be bytes, got {type(data).__name__}")
    payload = bytes(data)
    ref = blob_ref(payload)
    conn.execute(
        f"INSERT OR IGNORE INTO {BLOB_TABLE} (ref, size, data) VALUES (?, ?, ?)",
        (ref, len(payload), payload),
    )
    return ref


def get_blob(conn: sqlite3.Connection, ref: str) -> bytes:
    """Return the bytes stored under ``ref``.

    Raises
    ------
    ValueError
        If ``ref`` is not 64 lowercase hex digits.
    KeyError
        If no blob has that reference.
    """
    _check_ref(ref)
    row = conn.execute(f"SELECT data FROM {BLOB_TABLE} WHERE ref = ?", (ref,)).fetchone()
    if row is None:
        raise KeyError(f"no blob {ref} in the blob store")
    return bytes(row[0])
