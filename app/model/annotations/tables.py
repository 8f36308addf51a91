"""The journal's annotation tables: elements, their bodies, tags, synapse counts per body.

Every element is one row of ``annotation_elements``, keyed by its set and
position, holding its JSON (relationships included: DVID's block copy), and
one row of ``annotation_blocks``, keyed by its s0 block, set and position,
holding its kind and the supervoxel at its position: an edit reads the
elements of the blocks it rewrote as ranges of that narrow table, and the
labels it changes under them are rewritten on the pages of those blocks, not
scattered over the elements.  Its body (the label at its position: in
labelmap mode its supervoxel's body) is a row of ``annotation_bodies``,
keyed by body first: a body's elements lie together there, so a merge or a
cleave, which moves them from body to body, rewrites a few pages of that
table, and ``get BODY`` reads one range.  ``annotation_tags`` lists each
set's elements by tag, and ``annotation_counts`` counts each set's PreSyn and
PostSyn elements per body (DVID's labelsz), indexed for ranking.
``body_annotations`` holds each body's annotation
(:mod:`app.model.annotations.body_values`), and ``body_annotations_merged``
those a merge deleted, for its undo.  Every write happens in the journal
transaction of the edit or the command that makes it.

Bodies and supervoxels are stored as signed SQLite integers
(:func:`app.model.journal.journal_db.to_db`); positions as ``x, y, z``.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain, compress, repeat
from typing import NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

from app.model.annotations.elements import (
    KIND_CODES,
    KINDS,
    SYNAPTIC,
    Batch,
    Element,
    Point,
    element_of,
)
from app.model.errors import FormatError
from app.model.geometry import Coord
from app.model.journal.journal_db import from_db, to_db

T = TypeVar("T")

_ELEMENTS = """
CREATE TABLE IF NOT EXISTS annotation_elements (
    set_name TEXT NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL, z INTEGER NOT NULL,
    element TEXT NOT NULL,
    PRIMARY KEY (set_name, x, y, z)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS annotation_blocks (
    bz INTEGER NOT NULL, by INTEGER NOT NULL, bx INTEGER NOT NULL, set_name TEXT NOT NULL,
    x INTEGER NOT NULL, y INTEGER NOT NULL, z INTEGER NOT NULL, kind TEXT NOT NULL,
    sv INTEGER NOT NULL,
    PRIMARY KEY (bz, by, bx, set_name, x, y, z)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS annotation_bodies (
    body INTEGER NOT NULL, sv INTEGER NOT NULL, set_name TEXT NOT NULL,
    x INTEGER NOT NULL, y INTEGER NOT NULL, z INTEGER NOT NULL, kind TEXT NOT NULL,
    PRIMARY KEY (body, sv, set_name, x, y, z)) WITHOUT ROWID;
"""

_SCHEMA = _ELEMENTS + """
CREATE TABLE IF NOT EXISTS annotation_tags (
    set_name TEXT NOT NULL, tag TEXT NOT NULL,
    x INTEGER NOT NULL, y INTEGER NOT NULL, z INTEGER NOT NULL,
    PRIMARY KEY (set_name, tag, x, y, z)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS annotation_tags_at ON annotation_tags (set_name, x, y, z);
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

SEEKS = 1_000
"""Supervoxels up to which a body's elements on them are looked up one by one."""

BULK = 10_000
"""Elements from which a write is a large journal transaction (a larger page
cache, its checkpoint in the background:
:meth:`~app.model.journal.journal.Journal.transaction`)."""

_ROWS_PER_INSERT = 128
"""Rows one statement of :func:`insert_rows` writes."""

_KIND_NAMES = np.array(KINDS, object)
"""The kinds by their codes (:data:`~.elements.KIND_CODES`)."""


def create_annotation_schema(conn: sqlite3.Connection) -> None:
    """Create the annotation tables if they do not exist, moving the elements
    of a journal of an earlier layout to this one: its ``annotation_elements``
    holding their kinds, supervoxels and blocks, and their bodies (as the
    first and the second segmend wrote it; else in ``annotation_bodies``, as
    the third did) and their JSON (as the first did; else in
    ``annotation_json``)."""
    if earlier_layout(conn):
        columns = [r[1] for r in conn.execute("PRAGMA table_info(annotation_elements)")]
        in_json = "element" not in columns
        bodies = ("INSERT INTO annotation_bodies SELECT body, sv, set_name, x, y, z, kind "
                  "FROM annotation_elements_old;" if "body" in columns else "")
        conn.executescript(f"""
            BEGIN IMMEDIATE;
            ALTER TABLE annotation_elements RENAME TO annotation_elements_old;
            DROP INDEX IF EXISTS annotation_elements_body;
            DROP INDEX IF EXISTS annotation_elements_block;
            {_ELEMENTS}
            INSERT INTO annotation_elements SELECT e.set_name, e.x, e.y, e.z,
                {"j" if in_json else "e"}.element FROM annotation_elements_old e
                {"JOIN annotation_json j USING (set_name, x, y, z)" if in_json else ""};
            INSERT INTO annotation_blocks SELECT bz, by, bx, set_name, x, y, z, kind, sv
                FROM annotation_elements_old ORDER BY bz, by, bx, set_name, x, y, z;
            {bodies}
            DROP TABLE annotation_elements_old;
            DROP TABLE IF EXISTS annotation_json;
            COMMIT;""")
    conn.executescript(_SCHEMA)


def earlier_layout(conn: sqlite3.Connection) -> bool:
    """Whether the journal's annotation tables are of an earlier layout (a
    writer opening it moves them to this one: :func:`create_annotation_schema`)."""
    columns = [r[1] for r in conn.execute("PRAGMA table_info(annotation_elements)")]
    return "sv" in columns


def read(conn: sqlite3.Connection, query: Callable[[sqlite3.Connection], T], empty: T,
         where: str) -> T:
    """``query(conn)``, or ``empty`` for a journal older than annotations.

    Raises
    ------
    app.model.errors.FormatError
        The tables are of an earlier layout, which a reader does not convert
        (one line, naming ``where``).
    """
    try:
        return query(conn)
    except sqlite3.OperationalError as exc:
        if earlier_layout(conn):
            raise FormatError(f"{where}: its annotations are in an earlier layout; open it "
                              "for editing once to convert them") from None
        if "no such table" not in str(exc):
            raise
        return empty


BodyOf = Callable[[NDArray[np.uint64]], NDArray[np.uint64]] | None
"""The bodies of supervoxels (1D uint64) as the elements stand (None: voxel
mode, a label is its body)."""


class Stored(NamedTuple):
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


Row = tuple[str, int, int, int, str, int, int]
"""An element's ``set_name, x, y, z, kind, body, sv`` (labels signed:
:func:`~app.model.journal.journal_db.to_db`)."""

_STORED = "set_name, x, y, z, kind, body, sv"
_KEY = "WHERE set_name = ? AND x = ? AND y = ? AND z = ?"
BODY_KEY = "WHERE body = ? AND sv = ? AND set_name = ? AND x = ? AND y = ? AND z = ?"
BLOCK_KEY = ("WHERE bz = ?1 AND by = ?2 AND bx = ?3 AND set_name = ?4 "
             "AND x = ?5 AND y = ?6 AND z = ?7")


def stored(row: Row) -> Stored:
    """The :class:`Stored` of a row."""
    name, x, y, z, kind, body, sv = row
    return Stored(name, (x, y, z), kind, from_db(body), from_db(sv))


def labels_of(rows: Sequence[Row]) -> tuple[NDArray[np.int64], NDArray[np.uint64],
                                            NDArray[np.uint64]]:
    """The ``(x, y, z)`` (n, 3), supervoxels and bodies of rows."""
    if not rows:
        return np.zeros((0, 3), np.int64), np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    _, x, y, z, _, body, sv = zip(*rows, strict=True)
    return (np.array((x, y, z), np.int64).T, np.array(sv, np.int64).view(np.uint64),
            np.array(body, np.int64).view(np.uint64))


def db_labels(labels: NDArray[np.uint64]) -> list[int]:
    """:func:`~app.model.journal.journal_db.to_db` of each label."""
    return np.asarray(labels, np.uint64).view(np.int64).tolist()


def insert_rows(conn: sqlite3.Connection, table: str, width: int,
                rows: Iterable[Sequence[object]], one: str | None = None) -> None:
    """Insert ``rows`` of ``width`` values each into ``table`` (``one``: a
    row's SQL, ``(?, ?, …)`` by default), :data:`_ROWS_PER_INSERT` to a
    statement (the rest one by one).  An ``executemany`` binds and steps each
    statement from Python: a million rows go in about 40 % faster this way
    than one row a statement."""
    one = one or f"({', '.join('?' * width)})"
    values = list(chain.from_iterable(rows))
    step = width * _ROWS_PER_INSERT
    whole = len(values) // step * step
    if whole:
        conn.executemany(f"INSERT INTO {table} VALUES {', '.join([one] * _ROWS_PER_INSERT)}",
                         (values[at:at + step] for at in range(0, whole, step)))
    if whole < len(values):
        conn.executemany(f"INSERT INTO {table} VALUES {one}",
                         (values[at:at + width] for at in range(whole, len(values), width)))


def _with_bodies(rows: list[tuple[str, int, int, int, str, int]], body_of: BodyOf
                 ) -> list[Row]:
    """Rows ``set_name, x, y, z, kind, sv`` with the body of each supervoxel."""
    if body_of is None or not rows:
        return [(*r[:5], r[5], r[5]) for r in rows]
    svs = np.array([r[5] for r in rows], np.int64).view(np.uint64)
    bodies = db_labels(body_of(svs))
    return [(*r[:5], body, r[5]) for r, body in zip(rows, bodies, strict=True)]


def has_elements(conn: sqlite3.Connection) -> bool:
    """Whether any set holds an element."""
    return conn.execute("SELECT 1 FROM annotation_elements LIMIT 1").fetchone() is not None


def on_body(conn: sqlite3.Connection, body: int) -> bool:
    """Whether an element of any set is on ``body``."""
    return conn.execute("SELECT 1 FROM annotation_bodies WHERE body = ? LIMIT 1",
                        (to_db(body),)).fetchone() is not None


def in_block(conn: sqlite3.Connection, block: Coord, body_of: BodyOf) -> list[Row]:
    """The elements of every set in the s0 ``block`` ``(z, y, x)`` (one range)."""
    where = "FROM annotation_blocks WHERE bz = ? AND by = ? AND bx = ?"
    if body_of is None:  # (voxel mode: the label is the body)
        return conn.execute(f"SELECT set_name, x, y, z, kind, sv, sv {where}", block).fetchall()
    return _with_bodies(conn.execute(f"SELECT set_name, x, y, z, kind, sv {where}",
                                     block).fetchall(), body_of)


def of_bodies(conn: sqlite3.Connection, bodies: Sequence[int], keys: Sequence[int]
              ) -> list[Row]:
    """The elements of every set whose body is one of ``bodies`` and whose
    supervoxel one of ``keys`` (as stored: :func:`~app.model.journal.journal_db.to_db`;
    up to :data:`SEEKS` of them, looked up one by one, else each body's read
    whole and sifted), by body and supervoxel."""
    out: list[Row] = []
    wanted = set(keys) if len(keys) > SEEKS else None
    for body in bodies:
        if wanted is not None:
            out += [r for r in conn.execute(f"SELECT {_STORED} FROM annotation_bodies "
                                            "WHERE body = ?", (to_db(body),)) if r[6] in wanted]
            continue
        for at in range(0, len(keys), 500):
            part = keys[at:at + 500]
            out += conn.execute(
                f"SELECT {_STORED} FROM annotation_bodies WHERE body = ? AND sv IN "
                f"({','.join('?' * len(part))})", (to_db(body), *part))
    return out


def count(conn: sqlite3.Connection, deltas: Mapping[tuple[str, str, int], int]) -> None:
    """Add ``{(set, kind, body): delta}`` to the synapse counts (PreSyn and
    PostSyn only; body 0 is not counted; a count reaching 0 is deleted)."""
    rows = [(name, kind, to_db(body), d) for (name, kind, body), d in deltas.items()
            if d and kind in SYNAPTIC and body != 0]
    if not rows:
        return
    conn.executemany(
        "INSERT INTO annotation_counts VALUES (?, ?, ?, ?) ON CONFLICT (set_name, kind, body) "
        "DO UPDATE SET n = n + excluded.n", rows)
    fallen = [r[:3] for r in rows if r[3] < 0]
    if fallen:
        conn.executemany("DELETE FROM annotation_counts WHERE set_name = ? AND kind = ? "
                         "AND body = ? AND n = 0", fallen)


def put(conn: sqlite3.Connection, name: str, batch: Batch, svs: NDArray[np.uint64],
        bodies: NDArray[np.uint64], block_size: tuple[int, int, int]) -> None:
    """Write the elements of ``batch`` in set ``name``, on supervoxels ``svs``
    and bodies ``bodies`` (new positions: :func:`remove` those they replace
    first), tags and counts included."""
    pos = batch.pos
    order = _table_order(pos)
    texts = np.array(batch.texts, object)  # (UTF-8: stored as the text it is)
    insert_rows(conn, "annotation_elements", 5,
               zip(repeat(name), *pos[order].T.tolist(), texts[order].tolist()),
               "(?, ?, ?, ?, CAST(? AS TEXT))")
    blocks = blocks_of(pos, block_size)
    by_block = _block_order(pos, blocks, block_size)
    insert_rows(conn, "annotation_blocks", 9,
               zip(*blocks[by_block].T.tolist(), repeat(name), *pos[by_block].T.tolist(),
                   _KIND_NAMES[batch.kinds[by_block]].tolist(), db_labels(svs[by_block])))
    by_body = np.lexsort((_position_keys(pos), svs.view(np.int64), bodies.view(np.int64)))
    insert_rows(conn, "annotation_bodies", 7,
               zip(db_labels(bodies[by_body]), db_labels(svs[by_body]), repeat(name),
                   *pos[by_body].T.tolist(), _KIND_NAMES[batch.kinds[by_body]].tolist()))
    tagged = list(compress(range(len(batch.tags)), batch.tags))  # (most have none)
    insert_rows(conn, "annotation_tags", 5, [(name, t, *pos[i].tolist())
                                             for i in tagged for t in batch.tags[i]])
    counted: dict[tuple[str, str, int], int] = {}
    for kind in SYNAPTIC:
        on, n = np.unique(bodies[batch.kinds == KIND_CODES[kind]], return_counts=True)
        counted.update(zip(((name, kind, body) for body in on.tolist()), n.tolist(),
                           strict=True))
    count(conn, counted)


def remove(conn: sqlite3.Connection, name: str, pos: NDArray[np.int64], body_of: BodyOf,
           block_size: tuple[int, int, int]) -> list[Stored]:
    """Delete the elements of set ``name`` at ``pos`` ``(x, y, z)`` (n, 3)
    (those there), on the bodies ``body_of`` gives, tags and counts included;
    returns those deleted, in the order of ``pos``.  ``block_size``: the s0
    block shape ``(z, y, x)``."""
    if not len(pos) or conn.execute("SELECT 1 FROM annotation_elements WHERE set_name = ? "
                                    "LIMIT 1", (name,)).fetchone() is None:
        return []
    blocks = blocks_of(pos, block_size)
    order = _block_order(pos, blocks, block_size)
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS annotation_points (i INTEGER NOT NULL, "
                 "bz INTEGER NOT NULL, by INTEGER NOT NULL, bx INTEGER NOT NULL, "
                 "x INTEGER NOT NULL, y INTEGER NOT NULL, z INTEGER NOT NULL)")
    insert_rows(conn, "temp.annotation_points", 7,
               zip(order.tolist(), *blocks[order].T.tolist(), *pos[order].T.tolist(),
                   strict=True))
    found = conn.execute(
        "SELECT p.i, b.set_name, b.x, b.y, b.z, b.kind, b.sv FROM temp.annotation_points p "
        "JOIN annotation_blocks b ON b.bz = p.bz AND b.by = p.by AND b.bx = p.bx "
        "AND b.set_name = ? AND b.x = p.x AND b.y = p.y AND b.z = p.z ORDER BY p.rowid",
        (name,)).fetchall()
    conn.execute("DELETE FROM temp.annotation_points")
    rows = _with_bodies([r[1:] for r in found], body_of)  # (each table's rows are deleted
    i = np.array([r[0] for r in found], np.intp)          # in its order: not scattered)
    conn.executemany(f"DELETE FROM annotation_blocks {BLOCK_KEY}",
                     [(*b, *r[:4]) for b, r in zip(blocks[i].tolist(), rows, strict=True)])
    gone = [rows[j][:4] for j in _table_order(pos[i]).tolist()]
    conn.executemany(f"DELETE FROM annotation_elements {_KEY}", gone)
    if conn.execute("SELECT 1 FROM annotation_tags WHERE set_name = ? LIMIT 1",
                    (name,)).fetchone() is not None:
        conn.executemany(f"DELETE FROM annotation_tags {_KEY}", gone)
    conn.executemany(f"DELETE FROM annotation_bodies {BODY_KEY}",
                     sorted((r[5], r[6], *r[:4]) for r in rows))
    removed = Counter((name, r[4], from_db(r[5])) for r in rows)
    count(conn, {k: -n for k, n in removed.items()})
    return [stored(rows[j]) for j in np.argsort(i, kind="stable").tolist()]


def _table_order(pos: NDArray[np.int64]) -> NDArray[np.intp]:
    """The order of positions ``(x, y, z)`` (n, 3) in the tables keyed by
    position (x, then y, then z): rows written or looked up in it go next to
    the last ones."""
    return np.argsort(_position_keys(pos))


def _position_keys(pos: NDArray[np.int64]) -> NDArray[np.int64]:
    """One integer per position ``(x, y, z)`` (n, 3), in their order (x, then y, then z)."""
    x, y, z = pos.T
    return (x * (int(y.max(initial=0)) + 1) + y) * (int(z.max(initial=0)) + 1) + z


def blocks_of(pos: NDArray[np.int64], block_size: tuple[int, int, int]) -> NDArray[np.int64]:
    """The s0 blocks ``(z, y, x)`` (n, 3) of positions ``(x, y, z)`` (n, 3)."""
    return np.asarray(pos, np.int64).reshape(-1, 3)[:, ::-1] // np.asarray(block_size, np.int64)


def _block_order(pos: NDArray[np.int64], blocks: NDArray[np.int64],
                 block_size: tuple[int, int, int]) -> NDArray[np.intp]:
    """The order of positions ``(x, y, z)`` (n, 3) in ``annotation_blocks``
    (by block ``(z, y, x)`` (n, 3), then position; ``block_size``: the s0
    block shape ``(z, y, x)``)."""
    grid = blocks.max(axis=0, initial=0) + 1
    bz, by, bx = block_size
    local = pos - blocks[:, ::-1] * (bx, by, bz)
    return np.argsort((((blocks[:, 0] * grid[1] + blocks[:, 1]) * grid[2] + blocks[:, 2])
                       * bx + local[:, 0]) * by * bz + local[:, 1] * bz + local[:, 2])


def at(conn: sqlite3.Connection, name: str, pos: Point, body_of: BodyOf,
       block_size: tuple[int, int, int]) -> Stored | None:
    """The element of set ``name`` at ``pos``, if any (on the body ``body_of``
    gives; ``block_size``: the s0 block shape ``(z, y, x)``)."""
    rows = conn.execute(f"SELECT set_name, x, y, z, kind, sv FROM annotation_blocks {BLOCK_KEY}",
                        (*blocks_of(np.array(pos), block_size)[0].tolist(), name, *pos)
                        ).fetchall()
    return stored(_with_bodies(rows, body_of)[0]) if rows else None


def elements_at(conn: sqlite3.Connection, name: str, points: Iterable[Point]
                ) -> dict[Point, Element]:
    """The elements of set ``name`` at those of ``points`` that hold one."""
    shape = (1 << 31, 1 << 31, 1 << 31)  # (stored elements were checked when posted)
    out = {}
    for p in points:
        row = conn.execute(f"SELECT element FROM annotation_elements {_KEY}",
                           (name, *p)).fetchone()
        if row is not None:
            out[p] = element_of(json.loads(row[0]), shape, "stored element")
    return out


def body_elements(conn: sqlite3.Connection, name: str, body: int) -> list[str]:
    """The JSON of set ``name``'s elements on ``body``, sorted by position (z, y, x)."""
    return [r[0] for r in conn.execute(
        "SELECT e.element FROM annotation_bodies b JOIN annotation_elements e "
        "ON e.set_name = b.set_name AND e.x = b.x AND e.y = b.y AND e.z = b.z "
        "WHERE b.body = ? AND b.set_name = ? ORDER BY b.z, b.y, b.x", (to_db(body), name))]


def tagged(conn: sqlite3.Connection, name: str, tag: str) -> list[str]:
    """The JSON of set ``name``'s elements tagged ``tag``, sorted by position (z, y, x)."""
    return [r[0] for r in conn.execute(
        "SELECT e.element FROM annotation_tags t JOIN annotation_elements e "
        "ON e.set_name = t.set_name AND e.x = t.x AND e.y = t.y AND e.z = t.z "
        "WHERE t.set_name = ? AND t.tag = ? ORDER BY t.z, t.y, t.x", (name, tag))]


def all_elements(conn: sqlite3.Connection, name: str) -> list[str]:
    """The JSON of every element of set ``name``, sorted by position (z, y, x)."""
    return [r[0] for r in conn.execute(
        "SELECT element FROM annotation_elements WHERE set_name = ? ORDER BY z, y, x",
        (name,))]


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
