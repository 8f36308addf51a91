"""A content-addressed blob table in the journal's SQLite database.

DVID keeps bulky mutation payloads out of its Kafka messages: a split's
``Split`` field, and any ``DataRef``, name an entry of the blob store.  segmend
does the same with a table of the dataset's journal, so that a blob is written
in the same transaction as the mutation and the event that refers to it.

A reference is the SHA-256 of the bytes as 64 lowercase hex digits, so storing
the same bytes twice is a no-op and a reference can be checked against its
data.  The RLE helpers pack split regions the way DVID does: headerless
spans of four little-endian int32 ``(x, y, z, length)``.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BLOB_TABLE",
    "blob_ref",
    "create_blob_schema",
    "get_blob",
    "has_blob",
    "is_blob_ref",
    "pack_rles",
    "put_blob",
    "unpack_rles",
]

#: Name of the blob table in the journal database.
BLOB_TABLE = "blobs"

_REF = re.compile(r"[0-9a-f]{64}")

_RLE_DTYPE = np.dtype("<i4")


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


def has_blob(conn: sqlite3.Connection, ref: str) -> bool:
    """Whether a blob with reference ``ref`` is stored (``ValueError`` on a malformed ref)."""
    _check_ref(ref)
    row = conn.execute(f"SELECT 1 FROM {BLOB_TABLE} WHERE ref = ?", (ref,)).fetchone()
    return row is not None


def pack_rles(rles: NDArray[np.integer] | Iterable[Sequence[int]]) -> bytes:
    """Pack RLE spans ``(x, y, z, length)`` as DVID's headerless RLE bytes.

    Parameters
    ----------
    rles : array-like, shape (n, 4)
        Spans of ``length`` voxels starting at ``(x, y, z)`` along x.

    Returns
    -------
    bytes
        ``16 * n`` bytes: four little-endian int32 per span.

    Raises
    ------
    ValueError
        If the spans are not ``(n, 4)`` integers fitting int32 with positive lengths.
    """
    arr = np.asarray(list(rles) if not isinstance(rles, np.ndarray) else rles)
    if arr.size == 0:
        return b""
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"RLE spans must have shape (n, 4) as (x, y, z, length), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"RLE spans must be integers, got {arr.dtype}")
    info = np.iinfo(_RLE_DTYPE)
    if arr.min() < info.min or arr.max() > info.max:
        raise ValueError("RLE span values must fit in int32")
    if (arr[:, 3] <= 0).any():
        raise ValueError("RLE span lengths must be positive")
    return arr.astype(_RLE_DTYPE).tobytes()


def unpack_rles(data: bytes) -> NDArray[np.int32]:
    """Unpack headerless RLE bytes into an ``(n, 4)`` int32 array ``(x, y, z, length)``.

    Raises
    ------
    ValueError
        If ``len(data)`` is not a multiple of 16.
    """
    if len(data) % 16:
        raise ValueError(f"RLE data must be a multiple of 16 bytes, got {len(data)}")
    return np.frombuffer(data, dtype=_RLE_DTYPE).reshape(-1, 4).astype(np.int32)
