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
bodies), never with the set, and an edit of bodies without elements costs
one lookup per body, whatever their size; the elements are handled as
arrays, and only those that change become Python objects.

The messages are DVID's (``datatype/annotation/sync.go``: ``{"Action",
"Delta": {"Add": [ElementPos], "Del": [ElementPos]}, "MutationID",
"Timestamp", "UUID"}``, ``null`` for an empty list), with two fixes: only
elements whose body changed are listed (DVID's ``mutate-block`` lists every
element of the block), and nothing is sent when none did (DVID's ``split``
is sent even empty).  Body 0 is never listed (DVID keeps no background list).
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
from app.model.annotations.relabelling import Relabelling, relabel
from app.model.annotations.tables import Row
from app.model.events import outbox
from app.model.events.blobstore import put_blob
from app.model.events.encoding import RawJSON, encode_message
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
        relabel(conn, changed, block_size)
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
) -> Relabelling:
    """The elements whose labels changed, with their new ones."""
    blocks = [(c.coord, c.new) for c in changes if c.new is not None]
    sources = [body for body in sorted({m.source for m in moves if m.source})
               if tables.on_body(conn, body)]  # (a body without elements loses none)
    if not blocks and not sources:
        return Relabelling.of([], np.zeros(0, np.uint64), np.zeros(0, np.uint64))
    moved, to = _final_targets(moves)

    def after(svs: NDArray[np.uint64], before: NDArray[np.uint64]) -> NDArray[np.uint64]:
        """The bodies of ``svs`` after the moves (``before``: those not moved)."""
        if not moved.size:
            return before
        at = np.minimum(np.searchsorted(moved, svs), moved.size - 1)
        return np.where(moved[at] == svs, to[at], before)

    rows: list[Row] = []
    bodies: list[NDArray[np.uint64]] = []
    svs: list[NDArray[np.uint64]] = []
    for coord, block in blocks:
        found = tables.in_block(conn, coord, body_of)
        if not found:
            continue
        pos, old_svs, old_bodies = tables.labels_of(found)
        now = _labels_at(block, pos[:, ::-1] - np.multiply(coord, block_size))
        now_bodies = now if body_of is None else after(now, body_of(now))
        at = np.flatnonzero((now != old_svs) | (now_bodies != old_bodies))
        rows += [found[i] for i in at.tolist()]
        bodies.append(now_bodies[at])
        svs.append(now[at])
    if sources:  # (their elements on moved supervoxels, not in a rewritten block)
        found = tables.of_bodies(conn, sources, tables.db_labels(moved))
        _, old_svs, old_bodies = tables.labels_of(found)
        now_bodies = after(old_svs, old_bodies)
        keep = now_bodies != old_bodies
        if rows:
            seen = {r[:4] for r in rows}
            keep &= np.array([r[:4] not in seen for r in found], bool)
        at = np.flatnonzero(keep)
        rows += [found[i] for i in at.tolist()]
        bodies.append(now_bodies[at])
        svs.append(old_svs[at])
    return Relabelling.of(rows, np.concatenate([np.zeros(0, np.uint64), *bodies]),
                          np.concatenate([np.zeros(0, np.uint64), *svs]))


def _final_targets(moves: Sequence[Move]) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """The moved supervoxels, sorted and distinct, and each one's body after
    every move (the last move of a supervoxel holds)."""
    if not moves:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    if len(moves) == 1:  # (its supervoxels are sorted and distinct)
        svs = np.asarray(moves[0].svs, np.uint64)
        return svs, np.full(svs.size, moves[0].target, np.uint64)
    svs = np.concatenate([m.svs for m in moves]).astype(np.uint64, copy=False)
    targets = np.repeat(np.array([m.target for m in moves], np.uint64),
                        [len(m.svs) for m in moves])
    moved, last = np.unique(svs[::-1], return_index=True)
    return moved, targets[::-1][last]


def _labels_at(block: NDArray[np.uint64] | PaletteBlock,
               local: NDArray[np.int64]) -> NDArray[np.uint64]:
    """The labels of a block at local ``(z, y, x)`` positions (n, 3)."""
    z, y, x = local.T
    if isinstance(block, PaletteBlock):
        return np.asarray(block.labels[block.index[z, y, x]], np.uint64)
    return np.asarray(block[z, y, x], np.uint64)


def _messages(record: Mutation, change: Relabelling) -> dict[str, Message]:
    """One sync message per set whose elements changed body."""
    names = np.array([r[0] for r in change.rows], object)
    kinds = kind_codes([r[4] for r in change.rows])
    moved = change.bodies != change.old_bodies
    out = {}
    for name in sorted(set(names[moved].tolist())):
        ours = moved & (names == name)
        add = ours & (change.bodies != 0)
        delete = ours & (change.old_bodies != 0)
        if add.any() or delete.any():
            out[name] = delta_message(
                record.action,
                ElementPositions(change.bodies[add], kinds[add], change.pos[add]).json(),
                ElementPositions(change.old_bodies[delete], kinds[delete],
                                 change.pos[delete]).json(),
                record.stamp.uuid, record.stamp.timestamp, record.mutation_id)
    return out


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

    def json(self) -> str:
        """The list as Go writes it (``null`` when empty)."""
        return element_positions_json(self.labels, self.kinds, self.pos, KINDS)


def delta_message(action: str, add: str, delete: str, uuid: str, timestamp: str,
                  mutation_id: int | None = None) -> Message:
    """A DVID annotation message with a ``Delta`` of the ``Add`` and ``Del``
    lists ``add`` and ``delete`` (their JSON: :meth:`ElementPositions.json`)."""
    msg: Message = {"Action": action, "Delta": RawJSON(f'{{"Add":{add},"Del":{delete}}}')}
    if mutation_id is not None:
        msg["MutationID"] = mutation_id
    msg["Timestamp"] = timestamp
    msg["UUID"] = uuid
    return msg
