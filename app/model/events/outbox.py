"""The durable event outbox: a table of the journal's SQLite database.

A mutation appends its events with :func:`append_events` inside the very
transaction that records the mutation, so an edit and its events are durable
together or not at all.  Each event gets an increasing ``seq``; the sender
publishes them in ``seq`` order and advances a single high-water mark,
``last_sent_seq``, with :func:`mark_sent` once the broker has acknowledged them.
An event is *sent* iff its ``seq <= last_sent_seq``; the backlog is the rest.

Events belong to a DVID data instance, each with its own topic: ``instance``
is NULL for the dataset's labels, else the name of an instance of the
registry (:mod:`app.model.events.instances`).  One ``seq`` order and one mark
cover them all.

Tables: ``outbox`` (the events) and ``outbox_state`` (one row: the mark).
Journals written before instances existed have no ``instance`` column:
:func:`create_outbox_schema` (a writer's open) adds it, and the readers here
read such a journal as it is (every event the labels').
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from app.model.events.instances import instance_uuids

__all__ = [
    "OUTBOX_TABLE",
    "OutboxCounts",
    "OutboxEvent",
    "append_events",
    "backlog",
    "counts",
    "create_outbox_schema",
    "last_sent_seq",
    "last_seq",
    "mark_sent",
    "pending",
    "tail",
]

#: Name of the events table in the journal database.
OUTBOX_TABLE = "outbox"
_STATE_TABLE = "outbox_state"


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One event of the outbox.

    Attributes
    ----------
    seq : int
        Position in the outbox (publication order), from 1.
    mutation_id : int
        The mutation that produced the event.
    action : str
        The message's ``Action`` (e.g. ``"merge"``, ``"merge-complete"``).
    payload : bytes
        The Kafka value: the message's JSON.
    sent : bool
        Whether the broker has acknowledged it.
    instance : str or None
        The data instance it belongs to (None: the dataset's labels).
    """

    seq: int
    mutation_id: int
    action: str
    payload: bytes
    sent: bool
    instance: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """How far the outbox is sent.

    Attributes
    ----------
    events : int
        Events in the outbox, sent or not.
    backlog : int
        Events not yet acknowledged by the broker.
    last_sent_seq : int
        The highest ``seq`` acknowledged (0 if none).
    last_seq : int
        The highest ``seq`` in the outbox (0 if empty).
    """

    events: int
    backlog: int
    last_sent_seq: int
    last_seq: int


def create_outbox_schema(conn: sqlite3.Connection) -> None:
    """Create the outbox tables if they do not exist, and give an outbox of an
    older journal its ``instance`` column; does not commit.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the journal database.
    """
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " mutation_id INTEGER NOT NULL,"
        " action TEXT NOT NULL,"
        " payload BLOB NOT NULL,"
        " created REAL NOT NULL,"
        " instance TEXT)"
    )
    if not _has_instance_column(conn):
        conn.execute(f"ALTER TABLE {OUTBOX_TABLE} ADD COLUMN instance TEXT")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {_STATE_TABLE} ("
        " id INTEGER PRIMARY KEY CHECK (id = 0),"
        " last_sent_seq INTEGER NOT NULL)"
    )
    conn.execute(f"INSERT OR IGNORE INTO {_STATE_TABLE} (id, last_sent_seq) VALUES (0, 0)")


def _has_instance_column(conn: sqlite3.Connection) -> bool:
    """Whether the outbox has its ``instance`` column (older journals' has not)."""
    row = conn.execute(
        "SELECT 1 FROM pragma_table_info(?) WHERE name = 'instance'", (OUTBOX_TABLE,)
    ).fetchone()
    return row is not None


def _instance_expr(conn: sqlite3.Connection) -> str:
    """What to select as an event's instance: the column, or NULL if the journal has none."""
    return "instance" if _has_instance_column(conn) else "NULL"


def append_events(
    conn: sqlite3.Connection,
    mutation_id: int,
    action: str,
    payloads: Sequence[bytes],
    instance: str | None = None,
) -> list[int]:
    """Append events to the outbox in the caller's transaction; does not commit.

    Parameters
    ----------
    conn : sqlite3.Connection
        The journal connection whose transaction records the mutation.
    mutation_id : int
        The mutation the events belong to (``>= 0``; 0 for events that are not
        a mutation's, e.g. an annotation's post).
    action : str
        The mutation's action (for display; each payload carries its own).
    payloads : sequence of bytes
        Encoded messages, in publication order.
    instance : str or None
        The data instance whose topic gets them: None for the dataset's
        labels, else a name registered (in this transaction or before) with
        :func:`app.model.events.instances.register_instance`.

    Returns
    -------
    list of int
        The ``seq`` assigned to each payload, increasing.

    Raises
    ------
    ValueError
        On a negative mutation id, an empty action, a payload that is not
        bytes, or an instance that is not registered.
    """
    if isinstance(mutation_id, bool) or not isinstance(mutation_id, int) or mutation_id < 0:
        raise ValueError(f"mutation_id must be a non-negative integer, got {mutation_id!r}")
    if not isinstance(action, str) or not action:
        raise ValueError(f"action must be a non-empty string, got {action!r}")
    rows = []
    for i, payload in enumerate(payloads):
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise ValueError(f"payload {i} must be bytes, got {type(payload).__name__}")
        rows.append(bytes(payload))
    if instance is not None and (
        not isinstance(instance, str) or instance not in instance_uuids(conn)
    ):
        raise ValueError(
            f"data instance {instance!r} is not registered (register_instance first)"
        )
    now = time.time()
    seqs = []
    for payload in rows:
        if instance is None:  # (also into the outbox of a journal not migrated yet)
            cur = conn.execute(
                f"INSERT INTO {OUTBOX_TABLE} (mutation_id, action, payload, created)"
                " VALUES (?, ?, ?, ?)",
                (mutation_id, action, payload, now),
            )
        else:
            cur = conn.execute(
                f"INSERT INTO {OUTBOX_TABLE} (mutation_id, action, payload, created, instance)"
                " VALUES (?, ?, ?, ?, ?)",
                (mutation_id, action, payload, now, instance),
            )
        assert cur.lastrowid is not None
        seqs.append(int(cur.lastrowid))
    return seqs


def last_sent_seq(conn: sqlite3.Connection) -> int:
    """The highest ``seq`` acknowledged by the broker (0 if none)."""
    row = conn.execute(f"SELECT last_sent_seq FROM {_STATE_TABLE} WHERE id = 0").fetchone()
    return int(row[0]) if row else 0


def last_seq(conn: sqlite3.Connection) -> int:
    """The highest ``seq`` in the outbox (0 if empty)."""
    row = conn.execute(f"SELECT MAX(seq) FROM {OUTBOX_TABLE}").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _events(
    rows: list[tuple[int, int, str, bytes, str | None]], sent_upto: int
) -> list[OutboxEvent]:
    return [
        OutboxEvent(
            int(s), int(m), str(a), bytes(p), int(s) <= sent_upto, None if i is None else str(i)
        )
        for s, m, a, p, i in rows
    ]


def pending(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[OutboxEvent]:
    """Unsent events with ``seq > after_seq``, in ``seq`` order, at most ``limit``.

    Events at or below the acknowledged mark are never returned, whatever
    ``after_seq`` is.

    Raises
    ------
    ValueError
        If ``limit`` is not positive.
    """
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    sent_upto = last_sent_seq(conn)
    rows = conn.execute(
        f"SELECT seq, mutation_id, action, payload, {_instance_expr(conn)} FROM {OUTBOX_TABLE}"
        " WHERE seq > ? ORDER BY seq LIMIT ?",
        (max(after_seq, sent_upto), limit),
    ).fetchall()
    return _events(rows, sent_upto)


def mark_sent(conn: sqlite3.Connection, up_to_seq: int) -> None:
    """Record that every event up to ``up_to_seq`` was acknowledged, and commit.

    The mark only moves forward: a lower ``up_to_seq`` changes nothing.

    Raises
    ------
    ValueError
        If ``up_to_seq`` is negative or beyond the last event of the outbox.
    """
    if up_to_seq < 0:
        raise ValueError(f"up_to_seq must be non-negative, got {up_to_seq}")
    highest = last_seq(conn)
    if up_to_seq > highest:
        raise ValueError(f"cannot mark seq {up_to_seq} sent: the outbox ends at seq {highest}")
    conn.execute(
        f"UPDATE {_STATE_TABLE} SET last_sent_seq = ? WHERE id = 0 AND last_sent_seq < ?",
        (up_to_seq, up_to_seq),
    )
    conn.commit()


def backlog(conn: sqlite3.Connection) -> int:
    """Number of events not yet acknowledged by the broker.

    ``seq`` has no gaps (rows are only appended, in transactions that roll
    their ``AUTOINCREMENT`` counter back with them), so this is the difference
    of two lookups, not a count of the rows: the sender asks after every edit.
    """
    return max(0, last_seq(conn) - last_sent_seq(conn))


def counts(conn: sqlite3.Connection) -> OutboxCounts:
    """The outbox's :class:`OutboxCounts`."""
    total = int(conn.execute(f"SELECT COUNT(*) FROM {OUTBOX_TABLE}").fetchone()[0])
    return OutboxCounts(
        events=total,
        backlog=backlog(conn),
        last_sent_seq=last_sent_seq(conn),
        last_seq=last_seq(conn),
    )


def tail(conn: sqlite3.Connection, n: int) -> list[OutboxEvent]:
    """The last ``n`` events of the outbox (sent or not), in ``seq`` order."""
    if n <= 0:
        return []
    sent_upto = last_sent_seq(conn)
    rows = conn.execute(
        f"SELECT seq, mutation_id, action, payload, {_instance_expr(conn)} FROM {OUTBOX_TABLE}"
        " ORDER BY seq DESC LIMIT ?",
        (n,),
    ).fetchall()
    return _events(rows[::-1], sent_upto)
