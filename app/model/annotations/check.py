"""``verify``'s check of the annotations: every element on the body (and
supervoxel) at its position, once, in its block, with its JSON; every
synapse count equal to a recount."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.model.annotations import tables
from app.model.annotations.elements import SYNAPTIC
from app.model.annotations.sets import labels_at
from app.model.geometry import Coord
from app.model.journal.journal_db import from_db

SHOWN = 5
"""Problems named per kind of problem (the rest are counted)."""


def annotation_problems(
    conn: sqlite3.Connection,
    block_size: tuple[int, int, int],
    read_block: Callable[[Coord], NDArray[Any]],
    body_of: Callable[[NDArray[np.uint64]], NDArray[np.uint64]] | None,
    where: str,
) -> list[str]:
    """What is wrong with the annotation tables (empty: nothing).

    Parameters
    ----------
    conn : sqlite3.Connection
        The journal, in a read transaction (or under the writer's lock).
    block_size : (int, int, int)
        The s0 block shape ``(z, y, x)``.
    read_block : callable
        The s0 labels (supervoxels in labelmap mode) of a block.
    body_of : callable or None
        The mapping (None: voxel mode).
    where : str
        The dataset, named in the error of a journal of an earlier layout.

    Raises
    ------
    app.model.errors.FormatError
        The annotation tables are of an earlier layout (:func:`.tables.read`).
    """
    found = tables.read(conn, _stored, None, where)
    if found is None:
        return []
    rows, texts, entries, counted = found
    points = [(x, y, z) for *_, x, y, z, _, _ in rows]
    labels = labels_at(points, block_size, read_block, body_of)
    blocks = tables.blocks_of(np.array(points), block_size).tolist()
    on_body = {(name, x, y, z): (kind, from_db(body), from_db(sv))
               for name, x, y, z, kind, body, sv in entries}
    wrong = []
    for (*block, name, x, y, z, kind, sv), (s, b), at in zip(rows, labels, blocks, strict=True):
        entry = on_body.pop((name, x, y, z), None)
        if (name, x, y, z) in texts:
            texts.remove((name, x, y, z))
        else:
            wrong.append(f"{name} element at {[x, y, z]}: no JSON")
        if block != at:
            wrong.append(f"{name} element at {[x, y, z]}: listed in block {block}")
        if entry is None:
            wrong.append(f"{name} element at {[x, y, z]}: on no body, the labels say {b} ({s})")
        elif entry != (kind, b, s) or from_db(sv) != s:
            wrong.append(f"{name} element at {[x, y, z]}: on body {entry[1]} (supervoxel "
                         f"{from_db(sv)}), the labels say {b} ({s})")
    wrong += [f"{name} body entry at {[x, y, z]} (body {body}): no element there"
              for (name, x, y, z), (_, body, _) in sorted(on_body.items())]
    wrong += [f"{name} element JSON at {[x, y, z]}: no element there"
              for name, x, y, z in sorted(texts)]
    recount = Counter((name, kind, from_db(body)) for name, _, _, _, kind, body, _ in entries
                      if kind in SYNAPTIC and body != 0)
    stored = {(name, kind, from_db(body)): n for name, kind, body, n in counted}
    miscounted = [f"{name} {kind} count of body {body}: {stored.get(k, 0)}, a recount "
                  f"gives {recount.get(k, 0)}"
                  for k in sorted(set(recount) | set(stored))
                  for name, kind, body in [k] if stored.get(k, 0) != recount.get(k, 0)]
    return [*_shown(wrong, "elements on the wrong body"),
            *_shown(miscounted, "wrong synapse counts")]


def _stored(conn: sqlite3.Connection) -> tuple[list[Any], set[Any], list[Any], list[Any]]:
    """Every row of ``annotation_blocks``, the keys of ``annotation_elements``,
    every row of ``annotation_bodies`` and of ``annotation_counts``."""
    return (conn.execute("SELECT bz, by, bx, set_name, x, y, z, kind, sv FROM annotation_blocks"
                         ).fetchall(),
            set(conn.execute("SELECT set_name, x, y, z FROM annotation_elements")),
            conn.execute("SELECT set_name, x, y, z, kind, body, sv FROM annotation_bodies"
                         ).fetchall(),
            conn.execute("SELECT set_name, kind, body, n FROM annotation_counts").fetchall())


def _shown(problems: list[str], what: str) -> list[str]:
    extra = len(problems) - SHOWN
    return problems[:SHOWN] + ([f"... and {extra} more {what}"] if extra > 0 else [])
