"""A writable dataset's annotation sets: post, delete and move elements, and
keep them synced with every label mutation.

Each set is a DVID ``annotation`` data instance of its own (registered with
its data UUID, so its events go to its own topic).  A command here runs with
the edits' gate closed (no label mutation is under way: the labels read at
the elements' positions are those of the last committed mutation) and
commits in one durable journal transaction with its events:

- ``element-post``, ``element-delete``, ``element-move``: DVID's messages
  (``datatype/annotation``), each with the ``Delta`` of the bodies it adds
  and removes (a segmend field: DVID sends the posted JSON by ``DataRef``
  only, so that a consumer could not know the elements' bodies), ``null``
  for an empty list;
- the label mutations' sync messages, from :func:`sync_after`, the
  committer's hook (:mod:`app.model.annotations.sync`).

Relationships follow DVID's rules and fix two of its gaps: deleting an
element drops the relationships to it of the partners its own relationships
name, in any block (DVID: the partners in its own block); moving one updates
those partners and the element's own body even when it stays in its body
(DVID keeps the old position in the body's list).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.model.annotations import tables
from app.model.annotations.elements import (
    Batch,
    Element,
    Point,
    paused_gc,
    point_of,
)
from app.model.annotations.parsing import parse_elements
from app.model.annotations.sync import ElementPositions, delta_message, sync_elements
from app.model.engine.engine import MutationEngine
from app.model.errors import InvalidMutationError
from app.model.events import outbox
from app.model.events.blobstore import put_blob
from app.model.events.encoding import encode_message
from app.model.events.gotime import now_go
from app.model.events.instances import check_instance_name, register_instance
from app.model.geometry import Coord
from app.model.journal.journal import Journal
from app.model.mutations.base import BlockChange, Mutation

ANNOTATION_TYPE = "annotation"
"""The DVID datatype of an annotation set's data instance."""


class AnnotationSets:
    """The annotation sets of a dataset open for editing.

    Parameters
    ----------
    engine : MutationEngine
        The dataset's engine: its gate, labels, mapping and journal.
    uuid : str
        The version UUID stamped on the events.
    user : str, optional
        Stamped on the events.
    """

    def __init__(self, engine: MutationEngine, uuid: str, user: str | None) -> None:
        self.engine = engine
        self.journal: Journal = engine.journal
        self.uuid = uuid
        self.user = user
        with self.journal.reading() as conn:
            self._any = tables.has_elements(conn)

    # ------------------------------------------------------------ the sync hook
    def sync_after(self, cur: sqlite3.Cursor, record: Mutation,
                   changes: Sequence[BlockChange]) -> None:
        """The committer's hook: relabel the elements ``record`` changed (nothing
        to do, at no cost, while no set holds an element)."""
        if not self._any:
            return
        sync_elements(cur.connection, record, changes, record.moves(self.journal.get_blob),
                      self._body_of(), self.engine.store.block_size)

    # ---------------------------------------------------------------- commands
    def post(self, name: str, data: bytes | str) -> int:
        """Add (or replace, at their positions) the elements of a DVID ``POST
        /elements`` body in set ``name``; returns how many.

        Raises
        ------
        app.model.errors.InvalidMutationError
            A bad set name or bad elements (:func:`parse_elements`): nothing changes.
        app.model.errors.JournalWriteError
            The journal refused the write: nothing changes.
        """
        name = check_instance_name(name)
        with paused_gc():
            batch = parse_elements(data, self.engine.shape)
            with self.engine.gate.exclusive(), ThreadPoolExecutor(1) as beside:
                svs, bodies = self._labels_at(batch.pos)
                # (the message's list, written by a kernel that needs no GIL, beside the rows)
                added = beside.submit(_added(batch, bodies).json)
                with self.journal.transaction(large=len(batch) >= tables.BULK) as cur:
                    conn = cur.connection
                    register_instance(conn, name, ANNOTATION_TYPE)
                    replaced = tables.remove(conn, name, batch.pos, self._body_of(),
                                             self.engine.store.block_size)
                    tables.put(conn, name, batch, svs, bodies, self.engine.store.block_size)
                    self._send(conn, name, "element-post", {}, replaced, added.result())
                self._any = self._any or bool(len(batch))
        return len(batch)

    def delete(self, name: str, pos: Point) -> None:
        """Delete the element of set ``name`` at ``pos`` and the relationships
        to it of the partners it names.

        Raises
        ------
        app.model.errors.InvalidMutationError
            No element there (one line): nothing changes.
        """
        pos = point_of(list(pos), self.engine.shape, "point")
        with self.engine.gate.exclusive(), self.journal.transaction() as cur:
            conn = cur.connection
            element = self._element(conn, name, pos)
            partners = _relinked(conn, name, element, None, self._body_of(),
                                 self.engine.store.block_size)
            removed = tables.remove(conn, name, np.array([pos, *partners], np.int64),
                                   self._body_of(), self.engine.store.block_size)
            self._put(conn, name, list(partners.values()))
            self._send(conn, name, "element-delete", {"Point": list(pos)},
                       [s for s in removed if s.pos == pos], "null")

    def move(self, name: str, old: Point, new: Point) -> None:
        """Move the element of set ``name`` at ``old`` to ``new``, with the
        relationships of the partners it names.

        Raises
        ------
        app.model.errors.InvalidMutationError
            No element at ``old``, one at ``new`` already (DVID overwrites it),
            or ``new`` outside the volume: nothing changes.
        """
        old = point_of(list(old), self.engine.shape, "point")
        new = point_of(list(new), self.engine.shape, "new point")
        with self.engine.gate.exclusive():
            svs, bodies = self._labels_at(np.array([new], np.int64))
            with self.journal.transaction() as cur:
                conn = cur.connection
                element = self._element(conn, name, old)
                if new != old and tables.at(conn, name, new, self._body_of(),
                                            self.engine.store.block_size) is not None:
                    raise InvalidMutationError(
                        f"annotation set {name!r} already has an element at {list(new)}")
                partners = _relinked(conn, name, element, new, self._body_of(),
                                     self.engine.store.block_size)
                removed = tables.remove(conn, name, np.array([old, *partners], np.int64),
                                       self._body_of(), self.engine.store.block_size)
                self._put(conn, name, list(partners.values()))
                moved = Batch.of([element.moved(new)])
                tables.put(conn, name, moved, svs, bodies, self.engine.store.block_size)
                self._send(conn, name, "element-move", {"From": list(old), "To": list(new)},
                           [s for s in removed if s.pos == old], _added(moved, bodies).json())

    # ----------------------------------------------------------------- helpers
    def _element(self, conn: sqlite3.Connection, name: str, pos: Point) -> Element:
        found = tables.elements_at(conn, name, [pos]).get(pos)
        if found is None:
            raise InvalidMutationError(
                f"annotation set {name!r} has no element at {list(pos)}")
        return found

    def _put(self, conn: sqlite3.Connection, name: str,
             placed: Sequence[tuple[Element, int, int]]) -> None:
        """Write elements ``(element, body, sv)`` of set ``name``."""
        tables.put(conn, name, Batch.of([e for e, _, _ in placed]),
                   np.array([sv for _, _, sv in placed], np.uint64),
                   np.array([body for _, body, _ in placed], np.uint64),
                   self.engine.store.block_size)

    def _body_of(self) -> tables.BodyOf:
        """The mapping (None: voxel mode)."""
        return None if self.engine.mapping is None else self.engine.mapping.body_of

    def _labels_at(self, xyz: NDArray[np.int64]) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
        """The supervoxels and the bodies at ``(x, y, z)`` (n, 3) (in voxel mode
        the labels twice)."""
        return label_arrays(xyz, self.engine.store.block_size, self.engine.context.read_block,
                            self._body_of())

    def _send(self, conn: sqlite3.Connection, name: str, action: str, fields: dict[str, Any],
              removed: Sequence[tables.Stored], added: str) -> None:
        """Append the command's message to set ``name``'s events: ``removed``
        leave their bodies, the list ``added`` (its JSON: :func:`_added`)
        join theirs."""
        delete = ElementPositions.of([(s.body, s.kind, *s.pos) for s in removed if s.body])
        msg = delta_message(action, added, delete.json(), self.uuid, now_go())
        msg.update(fields)
        if self.user:
            msg["User"] = self.user
        payload = encode_message(msg, lambda data: put_blob(conn, data))
        outbox.append_events(conn, 0, action, [payload], instance=name)


def _added(batch: Batch, bodies: NDArray[np.uint64]) -> ElementPositions:
    """The elements of ``batch`` joining ``bodies`` (those on body 0 join none)."""
    on = bodies != 0
    return ElementPositions(bodies[on], batch.kinds[on], batch.pos[on])


def _relinked(conn: sqlite3.Connection, name: str, element: Element, to: Point | None,
              body_of: tables.BodyOf, block_size: tuple[int, int, int]
              ) -> dict[Point, tuple[Element, int, int]]:
    """The partners ``element`` names, their relationships to it moved to ``to``
    (None: dropped), with their body (``body_of``) and supervoxel
    (``block_size``: the s0 block shape ``(z, y, x)``)."""
    out = {}
    named = {r.to for r in element.rels} - {element.pos}
    found = tables.elements_at(conn, name, sorted(named))
    for pos, partner in found.items():
        stored = tables.at(conn, name, pos, body_of, block_size)
        assert stored is not None
        out[pos] = (partner.relinked(element.pos, to), stored.body, stored.sv)
    return out


def labels_at(
    points: Sequence[Point],
    block_size: tuple[int, int, int],
    read_block: Callable[[Coord], NDArray[Any]],
    body_of: Callable[[NDArray[np.uint64]], NDArray[np.uint64]] | None,
) -> list[tuple[int, int]]:
    """``(label, body)`` at each ``(x, y, z)`` of ``points`` (:func:`label_arrays`)."""
    labels, bodies = label_arrays(np.asarray(points, np.int64).reshape(-1, 3), block_size,
                                  read_block, body_of)
    return list(zip(labels.tolist(), bodies.tolist(), strict=True))


def label_arrays(
    xyz: NDArray[np.int64],
    block_size: tuple[int, int, int],
    read_block: Callable[[Coord], NDArray[Any]],
    body_of: Callable[[NDArray[np.uint64]], NDArray[np.uint64]] | None,
) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """The labels at ``(x, y, z)`` (n, 3): the s0 label there (each block read
    once) and its body (``body_of``; None: the label)."""
    labels = np.zeros(len(xyz), np.uint64)
    if len(xyz):
        zyx = xyz[:, ::-1]
        size = np.asarray(block_size, np.int64)
        blocks = zyx // size
        grid = blocks.max(axis=0) + 1
        order = np.argsort((blocks[:, 0] * grid[1] + blocks[:, 1]) * grid[2] + blocks[:, 2],
                           kind="stable")
        ordered = blocks[order]
        starts = np.flatnonzero(np.append(True, (ordered[1:] != ordered[:-1]).any(axis=1)))
        for start, end in zip(starts.tolist(), [*starts[1:].tolist(), len(order)], strict=True):
            at = order[start:end]
            key = ordered[start]
            block = read_block((int(key[0]), int(key[1]), int(key[2])))
            local = zyx[at] - key * size
            labels[at] = block[local[:, 0], local[:, 1], local[:, 2]]
    return labels, labels if body_of is None else body_of(labels)
