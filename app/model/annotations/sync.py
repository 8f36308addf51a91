"""Annotations kept right through every label mutation, in its own transaction.

After a mutation's record is written (inside its journal transaction,
:meth:`app.model.engine.commit.Committer.commit`), :func:`sync_elements`
gives every element whose label changed its new body (and supervoxel), moves
the synapse counts with it, and appends one DVID annotation sync message per
set whose elements changed body, on that set's topic.  Nothing here switches
on the mutation's kind; two facts of its record say what changed:

- the s0 blocks it rewrote (``changes``): the elements in them take the label
  now at their position (in labelmap mode a supervoxel, mapped to its body
  after the mutation);
- the mapping moves it made (:meth:`~app.model.mutations.base.Mutation.moves`):
  the elements of a move's source body whose supervoxel moved take its
  target.

So the cost grows with the elements of the edited blocks and of the moved
supervoxels (of a few of them looked up by supervoxel, else of their source
bodies), never with the set; the elements are handled as arrays, and only
those that change become Python objects.  The messages are DVID's (``datatype/annotation/sync.go``:
``{"Action", "Delta": {"Add": [ElementPos], "Del": [ElementPos]},
"MutationID", "Timestamp", "UUID"}``, ``null`` for an empty list), with two
fixes: only elements whose body changed are listed (DVID's ``mutate-block``
lists every element of the block), and nothing is sent when none did (DVID's
``split`` is sent even empty).  Body 0 is never listed (DVID keeps no
background list).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.kernels import element_positions_json
from app.model.annotations import tables
from app.model.annotations.elements import KINDS, kind_codes, paused_gc
from app.model.annotations.tables import Row
from app.model.events import outbox
from app.model.events.blobstore import put_blob
from app.model.events.encoding import RawJSON, encode_message
from app.model.journal.journal_db import from_db
from app.model.mutations.base import BlockChange, Message, Move, Mutation
from app.model.storage.palette_block import PaletteBlock


def sync_elements(
    conn: sqlite3.Connection,
    record: Mutation,
    changes: Sequence[BlockChange],
    moves: Sequence[Move],
    body_of: tables.BodyOf,
    block_size: tuple[int, int, int],
) -> None:
    """Relabel the elements ``record`` changed and send its sync messages.

    Parameters
    ----------
    conn : sqlite3.Connection
        The journal connection, inside the mutation's transaction.
    record : Mutation
        The mutation just recorded.
    changes : sequence of BlockChange
        Its rewritten s0 blocks (``new`` set).
    moves : sequence of Move
        Its mapping moves, in order (labelmap mode).
    body_of : callable or None
        The mapping before the moves (None: voxel mode, labels are bodies).
    block_size : (int, int, int)
        The s0 block shape ``(z, y, x)``.
    """
    with paused_gc():  # (thousands of short-lived objects: no collection of the heap)
        changed = _changed(conn, changes, moves, body_of, block_size)
        if not changed:
            return
        tables.relabel(conn, changed, block_size)
        for name, message in _messages(record, changed).items():
            payload = encode_message(message, lambda data: put_blob(conn, data))
            outbox.append_events(conn, record.mutation_id, record.action, [payload],
                                 instance=name)


def _changed(
    conn: sqlite3.Connection,
    changes: Sequence[BlockChange],
    moves: Sequence[Move],
    body_of: tables.BodyOf,
    block_size: tuple[int, int, int],
) -> list[tuple[Row, int, int]]:
    """The elements whose labels changed: ``(row, body, sv)``, their new ones."""
    target = _final_targets(moves)
    changed: dict[tuple[str, int, int, int], tuple[Row, int, int]] = {}
    rewritten = {c.coord: c.new for c in changes if c.new is not None}
    moved = np.array(sorted(target) if rewritten else (), np.uint64)
    to = np.array([target[sv] for sv in moved.tolist()], np.uint64)

    def after(svs: NDArray[np.uint64], before: NDArray[np.uint64]) -> NDArray[np.uint64]:
        """The bodies of ``svs`` after the moves (``before``: those not moved)."""
        if not moved.size:
            return before
        at = np.minimum(np.searchsorted(moved, svs), moved.size - 1)
        return np.where(moved[at] == svs, to[at], before)

    for coord, block in rewritten.items():
        rows = tables.in_block(conn, coord, body_of)
        if not rows:
            continue
        pos, old_svs, old_bodies = tables.labels_of(rows)
        svs = _labels_at(block, pos[:, ::-1] - np.multiply(coord, block_size))
        bodies = svs if body_of is None else after(svs, body_of(svs))
        at = np.flatnonzero((svs != old_svs) | (bodies != old_bodies))
        for i, body, sv in zip(at.tolist(), bodies[at].tolist(), svs[at].tolist(), strict=True):
            changed[rows[i][:4]] = (rows[i], body, sv)
    sources = sorted({m.source for m in moves if m.source})
    if sources:
        stored = dict(zip(tables.db_labels(np.fromiter(target.keys(), np.uint64)),
                          tables.db_labels(np.fromiter(target.values(), np.uint64)),
                          strict=True))  # (as rows hold them)
        for row in tables.of_bodies(conn, sources, sorted(stored)):
            body = stored.get(row[6])
            if body is not None and body != row[5]:
                changed.setdefault(row[:4], (row, from_db(body), from_db(row[6])))
    return list(changed.values())


def _final_targets(moves: Sequence[Move]) -> dict[int, int]:
    """Each moved supervoxel → its body after every move."""
    out: dict[int, int] = {}
    for move in moves:
        out.update(dict.fromkeys(move.svs.tolist(), move.target))
    return out


def _labels_at(block: NDArray[np.uint64] | PaletteBlock,
               local: NDArray[np.int64]) -> NDArray[np.uint64]:
    """The labels of a block at local ``(z, y, x)`` positions (n, 3)."""
    z, y, x = local.T
    if isinstance(block, PaletteBlock):
        return np.asarray(block.labels[block.index[z, y, x]], np.uint64)
    return np.asarray(block[z, y, x], np.uint64)


def _messages(record: Mutation, relabelled: list[tuple[Row, int, int]]
              ) -> dict[str, Message]:
    """One sync message per set whose elements changed body."""
    Items = list[tuple[int, str, int, int, int]]
    deltas: dict[str, tuple[Items, Items]] = {}
    for (name, x, y, z, kind, stored, _), body, _sv in relabelled:
        old = from_db(stored)
        if body == old:
            continue
        add, delete = deltas.get(name) or deltas.setdefault(name, ([], []))
        if body:
            add.append((body, kind, x, y, z))
        if old:
            delete.append((old, kind, x, y, z))
    return {name: delta_message(record.action, ElementPositions.of(add),
                                ElementPositions.of(delete), record.stamp.uuid,
                                record.stamp.timestamp, record.mutation_id)
            for name, (add, delete) in sorted(deltas.items()) if add or delete}


@dataclass(frozen=True)
class ElementPositions:
    """A list of DVID's ``ElementPos`` (``{"Label", "Kind", "Pos"}``), column by column.

    Attributes
    ----------
    labels : NDArray[np.uint64], shape (n,)
        Each element's label (its body).
    kinds : NDArray[np.uint8], shape (n,)
        Each element's kind's code (:data:`~.elements.KIND_CODES`).
    pos : NDArray[np.int64], shape (n, 3)
        Each element's ``(x, y, z)``.
    """

    labels: NDArray[np.uint64]
    kinds: NDArray[np.uint8]
    pos: NDArray[np.int64]

    @classmethod
    def of(cls, items: Sequence[tuple[int, str, int, int, int]]) -> ElementPositions:
        """The list of ``(label, kind, x, y, z)`` items."""
        return cls(np.array([i[0] for i in items], np.uint64),
                   kind_codes([i[1] for i in items]),
                   np.array([i[2:] for i in items], np.int64).reshape(-1, 3))

    def __len__(self) -> int:
        return len(self.labels)

    def json(self) -> str:
        """The list as Go writes it (``null`` when empty)."""
        return element_positions_json(self.labels, self.kinds, self.pos, KINDS)


def delta_message(action: str, add: ElementPositions, delete: ElementPositions, uuid: str,
                  timestamp: str, mutation_id: int | None = None) -> Message:
    """A DVID annotation message with a ``Delta`` (``null`` for an empty list)."""
    msg: Message = {"Action": action,
                    "Delta": RawJSON(f'{{"Add":{add.json()},"Del":{delete.json()}}}')}
    if mutation_id is not None:
        msg["MutationID"] = mutation_id
    msg["Timestamp"] = timestamp
    msg["UUID"] = uuid
    return msg
