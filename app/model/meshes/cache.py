"""Block meshes kept per (label, scale, block), dropped block by block when an
edit changes the blocks they were made from.

A block's mesh reads the block and one plane of its lower neighbours
(:mod:`app.model.meshes.blocks`), so a changed block ``c`` invalidates the
meshes of ``c`` and of its upper neighbours ``c + {0, 1}³``, of every label.
Connected to the engine's ``blocks_changed`` (:meth:`MeshCache.connect`), the
cache is told on the edit's own thread, as soon as the new blocks are staged.

A block's mesh reads only the blocks the label index names as holding the
body, so each mesh is kept with its *holders* (:func:`holders_bits`: which of
the blocks it reads were holders); it is used again only with the same ones
(an index that moved on since -- an edit's blocks are staged before its index
rows commit -- makes it be meshed again).

Thread-safe.  A mesh computed from blocks that changed while it was computed is
not kept: :meth:`MeshCache.epoch` before reading, :meth:`MeshCache.put` after.
The epochs are one count per block an edit changed (and its upper
neighbours): they grow with the blocks a session edits, not with the meshes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable
from typing import Any

from app.model.engine.signals import EngineSignals
from app.model.geometry import Coord
from app.model.meshes.blocks import NEIGHBOURS, BlockMesh

CACHE_BYTES = 256 << 20
"""Default capacity: bytes of block meshes kept (least recently used dropped first)."""
Key = tuple[int, int, Coord]
"""``(label, scale, block)``."""


def holders_bits(coord: Coord, holders: Collection[Coord]) -> int:
    """Which of the blocks that block ``coord``'s mesh reads (``coord - d``, ``d`` in
    :data:`~app.model.meshes.blocks.NEIGHBOURS`) are in ``holders``: bit ``i`` for
    the ``i``-th offset."""
    bits = 0
    for i, d in enumerate(NEIGHBOURS):
        if (coord[0] - d[0], coord[1] - d[1], coord[2] - d[2]) in holders:
            bits |= 1 << i
    return bits


class MeshCache:
    """Block meshes by ``(label, scale, block)``.

    Parameters
    ----------
    max_bytes : int
        Capacity; the least recently used meshes are dropped beyond it.
    """

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, tuple[int, BlockMesh]] = OrderedDict()
        self._labels: dict[tuple[int, Coord], set[int]] = {}
        self._epochs: dict[tuple[int, Coord], int] = {}
        self._bytes = 0
        self._signals: EngineSignals | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes of block meshes held."""
        with self._lock:
            return self._bytes

    def epoch(self, scale: int, coord: Coord) -> int:
        """How many times the inputs of block ``coord``'s meshes changed so far."""
        with self._lock:
            return self._epochs.get((scale, coord), 0)

    def get(self, label: int, scale: int, coord: Coord, holders: int) -> BlockMesh | None:
        """The kept mesh made with these ``holders`` (:func:`holders_bits`), or None."""
        key = (label, scale, coord)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != holders:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, label: int, scale: int, coord: Coord, mesh: BlockMesh, holders: int,
            epoch: int) -> bool:
        """Keep ``mesh`` (made with ``holders``) unless its blocks changed since
        :meth:`epoch` returned ``epoch``.

        Returns True if kept.
        """
        key = (label, scale, coord)
        with self._lock:
            if self._epochs.get((scale, coord), 0) != epoch:
                return False
            self._drop(key)
            self._entries[key] = (holders, mesh)
            self._labels.setdefault((scale, coord), set()).add(label)
            self._bytes += mesh.nbytes
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                self._drop(next(iter(self._entries)))
            return True

    def invalidate(self, scale: int, coords: Iterable[Coord]) -> int:
        """Blocks ``coords`` of ``scale`` changed: drop the meshes that read them.

        Returns the number of meshes dropped.
        """
        dropped = 0
        with self._lock:
            for c in coords:
                for d in NEIGHBOURS:
                    b = (int(c[0]) + d[0], int(c[1]) + d[1], int(c[2]) + d[2])
                    where = (scale, b)
                    self._epochs[where] = self._epochs.get(where, 0) + 1
                    for label in self._labels.pop(where, ()):
                        self._drop((label, scale, b))
                        dropped += 1
        return dropped

    def connect(self, signals: EngineSignals) -> None:
        """Follow an engine's ``blocks_changed`` (a dataset's ``signals``)."""
        self.disconnect()
        signals.blocks_changed.connect(self._on_blocks_changed)
        self._signals = signals

    def disconnect(self) -> None:
        """Stop following the engine's signals (if connected)."""
        if self._signals is not None:
            self._signals.blocks_changed.disconnect(self._on_blocks_changed, missing_ok=True)
            self._signals = None

    def _on_blocks_changed(self, scale: int, coords: list[Any]) -> None:
        self.invalidate(int(scale), [tuple(int(v) for v in c) for c in coords])  # type: ignore[misc]

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= entry[1].nbytes
        labels = self._labels.get((key[1], key[2]))
        if labels is not None:
            labels.discard(key[0])
            if not labels:
                del self._labels[(key[1], key[2])]
