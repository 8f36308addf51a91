"""The journal's annotation tables: elements, their tags, synapse counts per body.

Every element is one row of ``annotation_elements``, keyed by its set and
position, holding its JSON (relationships included: DVID's block copy), its
kind, its s0 block, and the supervoxel and body at its position: indexed by
block (an edit looks up the elements of the blocks it rewrote) and by body
(a merge or a cleave, those of the bodies it remaps; ``get BODY``).
``annotation_tags`` lists each set's elements by tag, and
``annotation_counts`` counts each set's PreSyn and PostSyn elements per body
(DVID's labelsz), indexed for ranking.  ``body_annotations`` holds each
body's annotation (:mod:`app.model.annotations.body_values`), and
``body_annotations_merged`` those a merge deleted, for its undo.  Every write
happens in the journal transaction of the edit or the command that makes it.

Bodies and supervoxels are stored as signed SQLite integers
(:func:`app.model.journal.journal_db.to_db`); positions as ``x, y, z``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.model.annotations.elements import SYNAPTIC, Element, Point, element_of
from app.model.geometry import Coord
from app.model.journal.journal_db import from_db, to_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS annotation_elements (
    set_name TEXT NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL, z INTEGER NOT NULL,
    kind TEXT NOT NULL, body INTEGER NOT NULL, sv INTEGER NOT NULL,
    bz INTEGER NOT NULL, by INTEGER NOT NULL, bx INTEGER NOT NULL,
    element TEXT NOT NULL,
    PRIMARY KEY (set_name, x, y, z)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS annotation_elements_body ON annotation_elements (body);
CREATE INDEX IF NOT EXISTS annotation_elements_block ON annotation_elements (bz, by, bx);
CREATE TABLE IF NOT EXISTS annotation_tags (
    set_name TEXT NOT NULL, tag TEXT NOT NULL,
    x INTEGER NOT NULL, y INTEGER NOT NULL, z INTEGER NOT NULL,
    PRIMARY KEY (set_name, tag, x, y, z)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS annotation_counts (
    set_name TEXT NOT NULL, kind TEXT NOT NULL, body INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (set_name, kind, body)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS annotation_counts_rank ON annotation_counts (set_name, kind, n);
CREATE TABLE IF NOT EXISTS body_annotations (
    body INTEGER PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS body_annotations_merged (
    mutation_id INTEGER NOT NULL, body INTEGER NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (mutation_id, body)) WITHOUT ROWID;
"""


def create_annotation_schema(conn: sqlite3.Connection) -> None:
    """Create the annotation tables if they do not exist (does not commit)."""
    conn.executescript(_SCHEMA)


@dataclass(frozen=True)
class Stored:
    """An element as stored: where it is, what it is, its labels.

    Attributes
    ----------
    set_name : str
        Its annotation set.
    pos : (int, int, int)
        ``(x, y, z)``.
    kind : str
        Its kind.
    body, sv : int
        The body and the supervoxel at ``pos`` (in voxel mode both the label).
    """

    set_name: str
    pos: Point
    kind: str
    body: int
    sv: int


_STORED = "set_name, x, y, z, kind, body, sv"


def _stored(row: tuple[str, int, int, int, str, int, int]) -> Stored:
    name, x, y, z, kind, body, sv = row
    return Stored(name, (x, y, z), kind, from_db(body), from_db(sv))


def has_elements(conn: sqlite3.Connection) -> bool:
    """Whether any set holds an element."""
    return conn.execute("SELECT 1 FROM annotation_elements LIMIT 1").fetchone() is not None


def in_blocks(conn: sqlite3.Connection, blocks: Sequence[Coord]) -> list[Stored]:
    """The elements of every set in the s0 ``blocks`` ``(z, y, x)`` (one index
    lookup per block: SQLite scans the table for a row-value ``IN``)."""
    query = f"SELECT {_STORED} FROM annotation_elements WHERE bz = ? AND by = ? AND bx = ?"
    return [_stored(row) for block in blocks for row in conn.execute(query, block)]


def of_bodies(conn: sqlite3.Connection, bodies: Iterable[int]) -> list[Stored]:
    """The elements of every set whose body is one of ``bodies``."""
    keys = [to_db(b) for b in bodies]
    out: list[Stored] = []
    for at in range(0, len(keys), 500):
        part = keys[at:at + 500]
        out += map(_stored, conn.execute(
            f"SELECT {_STORED} FROM annotation_elements WHERE body IN "
            f"({','.join('?' * len(part))})", part))
    return out


def relabel(conn: sqlite3.Connection, changes: Sequence[tuple[Stored, int, int]]) -> None:
    """Give elements a new ``(body, sv)`` each, counts included."""
    conn.executemany(
        "UPDATE annotation_elements SET body = ?, sv = ? "
        "WHERE set_name = ? AND x = ? AND y = ? AND z = ?",
        [(to_db(body), to_db(sv), s.set_name, *s.pos) for s, body, sv in changes])
    count(conn, [(s.set_name, s.kind, s.body, -1) for s, body, _ in changes if body != s.body])
    count(conn, [(s.set_name, s.kind, body, 1) for s, body, _ in changes if body != s.body])


def count(conn: sqlite3.Connection, deltas: Iterable[tuple[str, str, int, int]]) -> None:
    """Add ``(set, kind, body, delta)`` to the synapse counts (PreSyn and PostSyn
    only; body 0 is not counted; a count reaching 0 is deleted)."""
    rows = [(name, kind, to_db(body), d) for name, kind, body, d in deltas
            if kind in SYNAPTIC and body != 0]
    if not rows:
        return
    conn.executemany(
        "INSERT INTO annotation_counts VALUES (?, ?, ?, ?) ON CONFLICT (set_name, kind, body) "
        "DO UPDATE SET n = n + excluded.n", rows)
    conn.executemany(
        "DELETE FROM annotation_counts WHERE set_name = ? AND kind = ? AND body = ? AND n = 0",
        [r[:3] for r in rows])


def put(conn: sqlite3.Connection, name: str, placed: Sequence[tuple[Element, int, int]],
        block_size: tuple[int, int, int]) -> None:
    """Write elements ``(element, body, sv)`` of set ``name`` (new positions:
    :func:`remove` those they replace first), tags and counts included."""
    bz, by, bx = block_size
    conn.executemany(
        "INSERT INTO annotation_elements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(name, *e.pos, e.kind, to_db(body), to_db(sv), e.pos[2] // bz, e.pos[1] // by,
          e.pos[0] // bx, json.dumps(e.to_json(), separators=(",", ":")))
         for e, body, sv in placed])
    conn.executemany("INSERT INTO annotation_tags VALUES (?, ?, ?, ?, ?)",
                     [(name, t, *e.pos) for e, _, _ in placed for t in e.tags])
    count(conn, [(name, e.kind, body, 1) for e, body, _ in placed])


def remove(conn: sqlite3.Connection, name: str, points: Sequence[Point]) -> list[Stored]:
    """Delete the elements of set ``name`` at ``points`` (those there), tags and
    counts included; returns those deleted."""
    found = [s for s in (at(conn, name, p) for p in points) if s is not None]
    gone = [s.pos for s in found]
    conn.executemany("DELETE FROM annotation_elements WHERE set_name = ? AND x = ? AND y = ? "
                     "AND z = ?", [(name, *p) for p in gone])
    conn.executemany("DELETE FROM annotation_tags WHERE set_name = ? AND x = ? AND y = ? "
                     "AND z = ?", [(name, *p) for p in gone])
    count(conn, [(name, s.kind, s.body, -1) for s in found])
    return found


def at(conn: sqlite3.Connection, name: str, pos: Point) -> Stored | None:
    """The element of set ``name`` at ``pos``, if any."""
    row = conn.execute(f"SELECT {_STORED} FROM annotation_elements WHERE set_name = ? "
                       "AND x = ? AND y = ? AND z = ?", (name, *pos)).fetchone()
    return None if row is None else _stored(row)


def elements_at(conn: sqlite3.Connection, name: str, points: Iterable[Point]
                ) -> dict[Point, Element]:
    """The elements of set ``name`` at those of ``points`` that hold one."""
    shape = (1 << 31, 1 << 31, 1 << 31)  # (stored elements were checked when posted)
    out = {}
    for p in points:
        row = conn.execute("SELECT element FROM annotation_elements WHERE set_name = ? "
                           "AND x = ? AND y = ? AND z = ?", (name, *p)).fetchone()
        if row is not None:
            out[p] = element_of(json.loads(row[0]), shape, "stored element")
    return out


def body_elements(conn: sqlite3.Connection, name: str, body: int) -> list[str]:
    """The JSON of set ``name``'s elements on ``body``, sorted by position (z, y, x)."""
    return [r[0] for r in conn.execute(
        "SELECT element FROM annotation_elements WHERE body = ? AND set_name = ? "
        "ORDER BY z, y, x", (to_db(body), name))]


def tagged(conn: sqlite3.Connection, name: str, tag: str) -> list[str]:
    """The JSON of set ``name``'s elements tagged ``tag``, sorted by position (z, y, x)."""
    return [r[0] for r in conn.execute(
        "SELECT e.element FROM annotation_tags t JOIN annotation_elements e "
        "ON e.set_name = t.set_name AND e.x = t.x AND e.y = t.y AND e.z = t.z "
        "WHERE t.set_name = ? AND t.tag = ? ORDER BY t.z, t.y, t.x", (name, tag))]


def all_elements(conn: sqlite3.Connection, name: str) -> list[str]:
    """The JSON of every element of set ``name``, sorted by position (z, y, x)."""
    return [r[0] for r in conn.execute(
        "SELECT element FROM annotation_elements WHERE set_name = ? ORDER BY z, y, x", (name,))]


def set_names(conn: sqlite3.Connection) -> list[str]:
    """The sets that hold elements, sorted."""
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT set_name FROM annotation_elements ORDER BY set_name")]


def top(conn: sqlite3.Connection, name: str, kind: str, n: int) -> list[tuple[int, int]]:
    """The ``n`` bodies with the most ``kind`` elements of set ``name``:
    ``(body, count)``, most first (ties: the lower body first)."""
    rows = conn.execute(
        "SELECT body, n FROM annotation_counts WHERE set_name = ? AND kind = ? "
        "ORDER BY n DESC, body LIMIT ?", (name, kind, n)).fetchall()
    return sorted(((from_db(b), c) for b, c in rows), key=lambda r: (-r[1], r[0]))


def counts_of(conn: sqlite3.Connection, name: str, body: int) -> dict[str, int]:
    """``{kind: count}`` of set ``name``'s PreSyn and PostSyn elements on ``body``."""
    out = {}
    for kind in SYNAPTIC:
        row = conn.execute("SELECT n FROM annotation_counts WHERE set_name = ? AND kind = ? "
                           "AND body = ?", (name, kind, to_db(body))).fetchone()
        out[kind] = 0 if row is None else int(row[0])
    return out
