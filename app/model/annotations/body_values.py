"""Body annotations: one JSON object per body (status, name, class, comment, user),
as NeuTu keeps them in DVID's keyvalue instance ``<labels>_annotations``.

The key is the body id in decimal, the value NeuTu's JSON object (``"body
ID"``, ``"status"``, ``"name"``, ``"class"``, ``"comment"``, ``"user"``, and
any other field a client writes).  Each change commits in one durable journal
transaction with its event on the instance's own topic: DVID's ``postkv``
(``{"Action", "Key", "Bytes", "UUID", "Timestamp"}``: ``Bytes`` is the value's
length, as DVID sends it) or ``delete`` (``{"Action", "Key", "UUID",
"Timestamp"}``: DVID's DELETE sends nothing; segmend says so).

Merges (DVID leaves this to its clients): the target keeps its annotation,
and each merged body's is deleted in the merge's own transaction (a
``delete`` event) and kept with the merge, so that undoing the merge puts it
back exactly (a ``postkv`` event).  A body whose status is protected
(``Finalized`` unless the dataset says otherwise) refuses merges and splits
unless they are forced (:meth:`BodyValues.check_editable`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from app.model.annotations.body_fields import FIELDS, PROTECTED
from app.model.engine.locks import Gate
from app.model.errors import InvalidMutationError
from app.model.events import outbox
from app.model.events.encoding import go_json
from app.model.events.gotime import now_go
from app.model.events.instances import register_instance
from app.model.journal.journal import Journal
from app.model.journal.journal_db import from_db, to_db
from app.model.mutations.base import Mutation

INSTANCE = "segmentation_annotations"
"""The keyvalue instance's name (the labels are ``segmentation``, as exported)."""
KEYVALUE_TYPE = "keyvalue"
def value_of(conn: sqlite3.Connection, body: int) -> dict[str, Any] | None:
    """The annotation of ``body`` (None: none)."""
    row = conn.execute("SELECT value FROM body_annotations WHERE body = ?",
                       (to_db(body),)).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def with_status(conn: sqlite3.Connection, status: str) -> list[dict[str, Any]]:
    """The annotations whose status is ``status``, by body."""
    rows = conn.execute("SELECT body, value FROM body_annotations").fetchall()
    found = [(from_db(b), json.loads(v)) for b, v in rows]
    return [v for _, v in sorted(found, key=lambda r: r[0]) if v.get("status") == status]


def protected_statuses(conn: sqlite3.Connection) -> tuple[str, ...]:
    """The dataset's protected statuses (the journal's ``protected_statuses``)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'protected_statuses'").fetchone()
    return PROTECTED if row is None else tuple(json.loads(row[0]))


class BodyValues:
    """The body annotations of a dataset open for editing.

    Parameters
    ----------
    journal : Journal
        The dataset's journal.
    gate : Gate
        The edits' gate (closed while a command runs: no edit is under way).
    uuid : str
        The version UUID stamped on the events.
    user : str, optional
        Written as ``"user"`` by :meth:`update`.
    """

    def __init__(self, journal: Journal, gate: Gate, uuid: str, user: str | None) -> None:
        self.journal = journal
        self.gate = gate
        self.uuid = uuid
        self.user = user
        with journal.reading() as conn:
            found = conn.execute("SELECT 1 FROM body_annotations LIMIT 1").fetchone()
        self._any = found is not None  # (a merge then looks its bodies up; never reset)

    def set(self, body: int, value: dict[str, Any]) -> dict[str, Any]:
        """Make ``value`` (a JSON object) the annotation of ``body`` (its ``"body
        ID"`` set to ``body``); returns it."""
        body = _body(body)
        if not isinstance(value, dict):
            raise InvalidMutationError(f"a body annotation is a JSON object, got "
                                       f"{type(value).__name__}")
        return self._write(body, lambda _old: {**value, "body ID": body})

    def update(self, body: int, **fields: str | None) -> dict[str, Any]:
        """Set fields of ``body``'s annotation (:data:`FIELDS`; ``""`` removes
        one), and ``"user"``; returns it."""
        body = _body(body)
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise InvalidMutationError(f"unknown body annotation field {unknown[0]!r} "
                                       f"(one of {', '.join(FIELDS)})")

        def change(old: dict[str, Any]) -> dict[str, Any]:
            new = {**old, "body ID": body}
            for key, text in fields.items():
                if text == "":
                    new.pop(key, None)
                elif text is not None:
                    new[key] = text
            if self.user:
                new["user"] = self.user
            return new

        return self._write(body, change)

    def delete(self, body: int) -> bool:
        """Delete ``body``'s annotation; returns whether it had one."""
        body = _body(body)
        with self.gate.exclusive(), self.journal.transaction() as cur:
            conn = cur.connection
            if value_of(conn, body) is None:
                return False
            _delete(conn, body, 0, self.uuid, now_go())
        return True

    def set_protected(self, statuses: Iterable[str]) -> tuple[str, ...]:
        """Make ``statuses`` the protected ones (none: nothing is); returns them."""
        chosen = tuple(dict.fromkeys(statuses))
        if not all(isinstance(s, str) and s for s in chosen):
            raise InvalidMutationError("protected statuses are non-empty strings")
        with self.journal.transaction() as cur:
            Journal.set_meta(cur, "protected_statuses", json.dumps(list(chosen)))
        return chosen

    def check_editable(self, bodies: Iterable[int]) -> None:
        """Refuse to edit a body whose status is protected (one line naming it)."""
        with self.journal.reading() as conn:
            protected = protected_statuses(conn)
            for body in bodies:
                value = value_of(conn, int(body)) if protected else None
                status = None if value is None else value.get("status")
                if status in protected:
                    raise InvalidMutationError(
                        f"body {int(body)} is {status!r}, a protected status: force the edit "
                        "(--force) to change it")

    def _write(self, body: int, change: Callable[[dict[str, Any]], dict[str, Any]]
               ) -> dict[str, Any]:
        with self.gate.exclusive(), self.journal.transaction() as cur:
            conn = cur.connection
            new = change(value_of(conn, body) or {})
            _put(conn, body, new, 0, self.uuid, now_go())
        self._any = True
        return new

    # ------------------------------------------------------------ the sync hook
    def sync_after(self, cur: sqlite3.Cursor, record: Mutation) -> None:
        """Inside a mutation's transaction: delete the annotations of the bodies
        it merged away (kept with it), or put back those of the merge it undoes."""
        conn = cur.connection
        stamp = record.stamp
        undone = record.undone()
        if undone is not None:
            for body, value in conn.execute(
                    "SELECT body, value FROM body_annotations_merged WHERE mutation_id = ?",
                    (undone,)).fetchall():
                _put(conn, from_db(body), json.loads(value), stamp.mutation_id, stamp.uuid,
                     stamp.timestamp)
        for body in record.merged_away() if self._any else ():
            value = value_of(conn, body)
            if value is not None:
                conn.execute("INSERT INTO body_annotations_merged VALUES (?, ?, ?)",
                             (stamp.mutation_id, to_db(body), json.dumps(value)))
                _delete(conn, body, stamp.mutation_id, stamp.uuid, stamp.timestamp)


def _body(body: int) -> int:
    if isinstance(body, bool) or not isinstance(body, int) or not 0 < body < 1 << 64:
        raise InvalidMutationError(f"a body is a positive uint64 label, got {body!r}")
    return body


def _put(conn: sqlite3.Connection, body: int, value: dict[str, Any], mutation_id: int,
         uuid: str, timestamp: str) -> None:
    data = json.dumps(value)
    conn.execute("INSERT OR REPLACE INTO body_annotations VALUES (?, ?)", (to_db(body), data))
    _send(conn, mutation_id, {"Action": "postkv", "Key": str(body),
                              "Bytes": len(data.encode()), "UUID": uuid, "Timestamp": timestamp})


def _delete(conn: sqlite3.Connection, body: int, mutation_id: int, uuid: str,
            timestamp: str) -> None:
    conn.execute("DELETE FROM body_annotations WHERE body = ?", (to_db(body),))
    _send(conn, mutation_id, {"Action": "delete", "Key": str(body), "UUID": uuid,
                              "Timestamp": timestamp})


def _send(conn: sqlite3.Connection, mutation_id: int, msg: dict[str, Any]) -> None:
    register_instance(conn, INSTANCE, KEYVALUE_TYPE)
    outbox.append_events(conn, mutation_id, str(msg["Action"]), [go_json(msg)],
                         instance=INSTANCE)
