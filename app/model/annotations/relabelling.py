"""Elements given new labels by an edit: the journal rows rewritten in few statements.

A label mutation's sync (:mod:`app.model.annotations.sync`) gathers the
elements whose body or supervoxel changed into a :class:`Relabelling`, then
:func:`relabel` rewrites them, counts included.  Most edits move whole groups
alike, and those go in one statement each: a body whose every element goes
to one other body (a merge's) in ``annotation_bodies``, and a block's
elements on one label that all take one new label (a voxel-mode merge's, a
relabelled supervoxel's) in ``annotation_blocks``; the rest row by row.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.model.annotations.tables import (
    BLOCK_KEY,
    BODY_KEY,
    Row,
    blocks_of,
    count,
    insert_rows,
    labels_of,
)
from app.model.journal.journal_db import from_db


@dataclass(frozen=True)
class Relabelling:
    """Elements to give new labels, column by column (:meth:`of`).

    Attributes
    ----------
    rows : list of Row
        The elements as stored.
    pos : NDArray[np.int64], shape (n, 3)
        Their ``(x, y, z)``.
    old_bodies, old_svs : NDArray[np.uint64], shape (n,)
        Their body and supervoxel as stored.
    bodies, svs : NDArray[np.uint64], shape (n,)
        Their new ones.
    """

    rows: list[Row]
    pos: NDArray[np.int64]
    old_bodies: NDArray[np.uint64]
    old_svs: NDArray[np.uint64]
    bodies: NDArray[np.uint64]
    svs: NDArray[np.uint64]

    @classmethod
    def of(cls, rows: list[Row], bodies: NDArray[np.uint64], svs: NDArray[np.uint64]
           ) -> Relabelling:
        """``rows`` to move to ``bodies`` and ``svs``."""
        pos, old_svs, old_bodies = labels_of(rows)
        return cls(rows, pos, old_bodies, old_svs, np.asarray(bodies, np.uint64),
                   np.asarray(svs, np.uint64))

    def __len__(self) -> int:
        return len(self.rows)


def relabel(conn: sqlite3.Connection, change: Relabelling,
            block_size: tuple[int, int, int]) -> None:
    """Give elements their new ``(body, sv)``, counts included: a body whose
    elements all go to one other body, on their supervoxels (a labelmap
    merge's) or on one (a voxel-mode merge's), is moved in two statements.
    ``block_size``: the s0 block shape ``(z, y, x)``."""
    rows = change.rows
    old, body = change.old_bodies.view(np.int64), change.bodies.view(np.int64)
    old_sv, sv = change.old_svs.view(np.int64), change.svs.view(np.int64)
    resited = np.flatnonzero(sv != old_sv)
    if resited.size:
        _resite(conn, rows, blocks_of(change.pos[resited], block_size), resited,
                old_sv[resited], sv[resited])
    to_sv = [None if same else s for s, same in zip(sv.tolist(), (sv == old_sv).tolist(),
                                                      strict=True)]  # (None: its own)
    moves = Counter(zip((r[0] for r in rows), (r[4] for r in rows), old.tolist(),
                        body.tolist(), to_sv, strict=True))
    whole = _whole_bodies(conn, moves)
    for source, (target, target_sv) in whole.items():
        conn.execute("INSERT INTO annotation_bodies SELECT ?1, coalesce(?2, sv), set_name, "
                     "x, y, z, kind FROM annotation_bodies WHERE body = ?3",
                     (target, target_sv, source))
        conn.execute("DELETE FROM annotation_bodies WHERE body = ?", (source,))
    rest = [i for i, source in enumerate(old.tolist()) if source not in whole]
    conn.executemany(f"DELETE FROM annotation_bodies {BODY_KEY}",
                     sorted((rows[i][5], rows[i][6], *rows[i][:4]) for i in rest))
    insert_rows(conn, "annotation_bodies", 7, sorted(
        (b, s, *rows[i][:5]) for i, b, s in zip(rest, body[rest].tolist(), sv[rest].tolist(),
                                                strict=True)))
    deltas: Counter[tuple[str, str, int]] = Counter()
    for (name, kind, source, target, _), n in moves.items():
        if target != source:
            deltas[name, kind, from_db(target)] += n
            deltas[name, kind, from_db(source)] -= n
    count(conn, deltas)


def _resite(conn: sqlite3.Connection, rows: list[Row], blocks: NDArray[np.int64],
            at: NDArray[np.intp], old: NDArray[np.int64], new: NDArray[np.int64]) -> None:
    """Move the elements ``rows[at]`` in s0 ``blocks`` ``(z, y, x)`` (n, 3)
    from supervoxels ``old`` to ``new`` (as stored) in ``annotation_blocks``:
    where they are all of a block's elements on an old supervoxel (a voxel
    merge's, a relabelled supervoxel's), in one statement."""
    groups: dict[tuple[int, int, int, int, int], list[int]] = {}
    for b, i, source, target in zip(blocks.tolist(), at.tolist(), old.tolist(), new.tolist(),
                                    strict=True):
        groups.setdefault((*b, source, target), []).append(i)
    one_by_one = []
    on = "WHERE bz = ? AND by = ? AND bx = ? AND sv = ?"
    for (bz, by, bx, source, target), members in groups.items():
        if len(members) > 1 and conn.execute(  # (those still on it: each row is one group's)
                f"SELECT count(*) FROM annotation_blocks {on}",
                (bz, by, bx, source)).fetchone()[0] == len(members):
            conn.execute(f"UPDATE annotation_blocks SET sv = ? {on}", (target, bz, by, bx, source))
        else:
            one_by_one += [(bz, by, bx, *rows[i][:4], target) for i in members]
    conn.executemany(f"UPDATE annotation_blocks SET sv = ?8 {BLOCK_KEY}", sorted(one_by_one))


def _whole_bodies(conn: sqlite3.Connection,
                  moves: Mapping[tuple[str, str, int, int, int | None], int]
                  ) -> dict[int, tuple[int, int | None]]:
    """``{old: (new, sv)}`` bodies (as stored) whose every element goes to one
    new body and one supervoxel (None: each its own), of ``{(set, kind, old,
    new, sv or None): elements}``."""
    targets: dict[int, set[tuple[int, int | None]]] = {}
    sizes: Counter[int] = Counter()
    for (_, _, old, body, sv), n in moves.items():
        targets.setdefault(old, set()).add((body, sv))
        sizes[old] += n
    whole = {}
    for old, to in targets.items():
        if len(to) != 1:
            continue
        [(body, sv)] = to
        if body != old and sizes[old] == conn.execute(
                "SELECT count(*) FROM annotation_bodies WHERE body = ?", (old,)).fetchone()[0]:
            whole[old] = (body, sv)
    return whole
