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

So the cost grows with the elements of the edited blocks and bodies, never
with the set.  The messages are DVID's (``datatype/annotation/sync.go``:
``{"Action", "Delta": {"Add": [ElementPos], "Del": [ElementPos]},
"MutationID", "Timestamp", "UUID"}``, ``null`` for an empty list), with two
fixes: only elements whose body changed are listed (DVID's ``mutate-block``
lists every element of the block), and nothing is sent when none did (DVID's
``split`` is sent even empty).  Body 0 is never listed (DVID keeps no
background list).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.model.annotations import tables
from app.model.annotations.elements import element_pos
from app.model.annotations.tables import Stored
from app.model.events import outbox
from app.model.events.blobstore import put_blob
from app.model.events.encoding import encode_message
from app.model.mutations.base import BlockChange, Message, Move, Mutation
from app.model.storage.palette_block import PaletteBlock

BodyOf = Callable[[NDArray[np.uint64]], NDArray[np.uint64]]
"""The bodies of supervoxels (1D uint64) before the mutation's moves."""


def sync_elements(
    conn: sqlite3.Connection,
    record: Mutation,
    changes: Sequence[BlockChange],
    moves: Sequence[Move],
    body_of: BodyOf | None,
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
    target = _final_targets(moves)

    def bodies(svs: NDArray[np.uint64]) -> NDArray[np.uint64]:
        if body_of is None:
            return svs
        out = body_of(svs).copy()
        for i, sv in enumerate(svs.tolist()):
            out[i] = target.get(sv, out[i])
        return out

    changed: dict[tuple[str, tuple[int, int, int]], tuple[Stored, int, int]] = {}
    rewritten = {c.coord: c.new for c in changes if c.new is not None}
    by_block: dict[tuple[int, int, int], list[Stored]] = {}
    for s in tables.in_blocks(conn, list(rewritten)):
        x, y, z = s.pos
        key = (z // block_size[0], y // block_size[1], x // block_size[2])
        by_block.setdefault(key, []).append(s)
    for coord, found in by_block.items():
        origin = [c * b for c, b in zip(coord, block_size, strict=True)]
        svs = _labels_at(rewritten[coord], [(s.pos[2] - origin[0], s.pos[1] - origin[1],
                                             s.pos[0] - origin[2]) for s in found])
        for s, sv, body in zip(found, svs.tolist(), bodies(svs).tolist(), strict=True):
            if (sv, body) != (s.sv, s.body):
                changed[(s.set_name, s.pos)] = (s, body, sv)
    sources = {m.source for m in moves if m.source}
    for s in tables.of_bodies(conn, sorted(sources)) if sources else []:
        body = target.get(s.sv)
        if body is not None and body != s.body and (s.set_name, s.pos) not in changed:
            changed[(s.set_name, s.pos)] = (s, body, s.sv)
    if not changed:
        return
    relabelled = list(changed.values())
    tables.relabel(conn, relabelled)
    for name, message in _messages(record, relabelled).items():
        payload = encode_message(message, lambda data: put_blob(conn, data))
        outbox.append_events(conn, record.mutation_id, record.action, [payload], instance=name)


def _final_targets(moves: Sequence[Move]) -> dict[int, int]:
    """Each moved supervoxel → its body after every move."""
    out: dict[int, int] = {}
    for move in moves:
        out.update(dict.fromkeys(move.svs.tolist(), move.target))
    return out


def _labels_at(block: NDArray[np.uint64] | PaletteBlock,
               local: list[tuple[int, int, int]]) -> NDArray[np.uint64]:
    """The labels of a block at local ``(z, y, x)`` positions."""
    z, y, x = (np.array(a, np.intp) for a in zip(*local, strict=True))
    if isinstance(block, PaletteBlock):
        return np.asarray(block.labels[block.index[z, y, x]], np.uint64)
    return np.asarray(block[z, y, x], np.uint64)


def _messages(record: Mutation, relabelled: list[tuple[Stored, int, int]]
              ) -> dict[str, Message]:
    """One sync message per set whose elements changed body."""
    deltas: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for s, body, _sv in relabelled:
        if body == s.body:
            continue
        delta = deltas.setdefault(s.set_name, {"Add": [], "Del": []})
        if body:
            delta["Add"].append(element_pos(body, s.kind, s.pos))
        if s.body:
            delta["Del"].append(element_pos(s.body, s.kind, s.pos))
    return {name: delta_message(record.action, delta, record.stamp.uuid,
                                record.stamp.timestamp, record.mutation_id)
            for name, delta in sorted(deltas.items()) if delta["Add"] or delta["Del"]}


def delta_message(action: str, delta: dict[str, list[dict[str, Any]]], uuid: str,
                  timestamp: str, mutation_id: int | None = None) -> Message:
    """A DVID annotation message with a ``Delta`` (``null`` for an empty list)."""
    msg: Message = {"Action": action,
                    "Delta": {"Add": delta.get("Add") or None, "Del": delta.get("Del") or None}}
    if mutation_id is not None:
        msg["MutationID"] = mutation_id
    msg["Timestamp"] = timestamp
    msg["UUID"] = uuid
    return msg
