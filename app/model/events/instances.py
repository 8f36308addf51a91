"""The registry of a dataset's other DVID data instances: a table of the journal.

Besides its labels, a dataset may hold other DVID data instances: annotation
sets (DVID's ``annotation`` datatype: ``synapses``, ``bookmarks``) and a
body-annotation keyvalue (``<labels>_annotations``).  Each has its own data
UUID, hence its own Kafka topic (:func:`app.model.events.settings.topic_name`),
and its events go to the outbox (:func:`app.model.events.outbox.append_events`
with ``instance=name``) in the transaction of the change, as the labels' do.

Table ``instances (name, type, data_uuid)``: one row per instance, made by
:func:`register_instance` (in the caller's transaction) and never changed.
The labels instance itself is not in it: its data UUID is the dataset's
(``meta.data_uuid``), and its events have no instance (``NULL``).
"""

from __future__ import annotations

import re
import sqlite3
import uuid

from app.model.errors import InvalidMutationError

__all__ = [
    "INSTANCES_TABLE",
    "check_instance_name",
    "create_instances_schema",
    "instance_types",
    "instance_uuids",
    "register_instance",
]

#: Name of the registry table in the journal database.
INSTANCES_TABLE = "instances"

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TYPE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def create_instances_schema(conn: sqlite3.Connection) -> None:
    """Create the registry table if it does not exist (no commit; DDL only).

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the journal database.
    """
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {INSTANCES_TABLE} ("
        " name TEXT PRIMARY KEY,"
        " type TEXT NOT NULL,"
        " data_uuid TEXT NOT NULL)"
    )


def _shown(value: object) -> str:
    """``value`` for a one-line message (its repr, shortened if long)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def check_instance_name(name: str) -> str:
    """Return ``name`` if it is a DVID-like data name.

    That is 1 to 64 characters, each a letter, a digit, ``_``, ``-`` or ``.``.

    Raises
    ------
    InvalidMutationError
        Otherwise (one line, naming the name).
    """
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise InvalidMutationError(
            f"invalid data instance name {_shown(name)}: "
            "use 1 to 64 letters, digits, '_', '-' or '.'"
        )
    return name


def _table_exists(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (INSTANCES_TABLE,)
    ).fetchone()
    return row is not None


def register_instance(conn: sqlite3.Connection, name: str, type: str) -> str:
    """The data UUID of instance ``name``, registering it first if absent.

    Runs inside the caller's open transaction and does not commit, so that an
    instance is registered together with its first event.

    Parameters
    ----------
    conn : sqlite3.Connection
        The journal connection (schema created).
    name : str
        The instance's data name (:func:`check_instance_name`).
    type : str
        Its DVID datatype, e.g. ``"annotation"`` or ``"keyvalue"``.

    Returns
    -------
    str
        Its data UUID: 32 lowercase hex digits, new (``uuid4``) when absent.

    Raises
    ------
    InvalidMutationError
        If the name or the type is not valid, or ``name`` is registered with
        another type.
    """
    check_instance_name(name)
    if not isinstance(type, str) or _TYPE.fullmatch(type) is None:
        raise InvalidMutationError(
            f"invalid datatype {_shown(type)} for data instance {name!r}: "
            "use 1 to 64 letters, digits, '_', '-' or '.'"
        )
    row = conn.execute(
        f"SELECT type, data_uuid FROM {INSTANCES_TABLE} WHERE name = ?", (name,)
    ).fetchone()
    if row is not None:
        if row[0] != type:
            raise InvalidMutationError(
                f"data instance {name!r} is registered as {row[0]!r}, not {type!r}"
            )
        return str(row[1])
    data_uuid = uuid.uuid4().hex
    conn.execute(
        f"INSERT INTO {INSTANCES_TABLE} (name, type, data_uuid) VALUES (?, ?, ?)",
        (name, type, data_uuid),
    )
    return data_uuid


def _column(conn: sqlite3.Connection, column: str) -> dict[str, str]:
    if not _table_exists(conn):  # (a journal written before the registry existed)
        return {}
    rows = conn.execute(f"SELECT name, {column} FROM {INSTANCES_TABLE} ORDER BY name").fetchall()
    return {str(name): str(value) for name, value in rows}


def instance_uuids(conn: sqlite3.Connection) -> dict[str, str]:
    """Each registered instance's data UUID, by name (empty without a registry)."""
    return _column(conn, "data_uuid")


def instance_types(conn: sqlite3.Connection) -> dict[str, str]:
    """Each registered instance's DVID datatype, by name (empty without a registry)."""
    return _column(conn, "type")
