"""When each parent block of an edit can be refreshed: as soon as the blocks
below it are final.

An edit changes some s0 blocks; each block of scale k+1 above them must be
recomputed once all its candidate children of scale k are final, and only if
one of them actually changed (a branch whose blocks come out unchanged ends
there).  :class:`CascadeTree` does that bookkeeping, so that parents are
refreshed while other blocks of the same edit are still being computed,
instead of level by level.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.model.geometry import Coord
from app.model.storage.octants import parent_of

Ready = tuple[int, Coord, list[Coord]]
"""(scale, parent block, its changed children of scale - 1)."""


class CascadeTree:
    """The ancestors of a set of s0 blocks, and which of them are ready.

    Parameters
    ----------
    coords : iterable of s0 block coords
        The blocks an edit may change.
    n_scales : int
        Levels of the pyramid.
    """

    def __init__(self, coords: Iterable[Coord], n_scales: int) -> None:
        self.n_scales = n_scales
        self._pending: list[dict[Coord, int]] = [{} for _ in range(n_scales)]
        self._changed: list[dict[Coord, list[Coord]]] = [{} for _ in range(n_scales)]
        level = set(coords)
        for scale in range(1, n_scales):
            pending = self._pending[scale]
            for child in level:
                parent = parent_of(child)
                pending[parent] = pending.get(parent, 0) + 1
            level = set(pending)

    def resolve(self, scale: int, coord: Coord, changed: bool) -> list[Ready]:
        """Block ``coord`` of ``scale`` is final; returns the parents now ready.

        A parent is ready when all its candidate children are final and one of
        them changed; a parent whose children all came out unchanged is final
        (and unchanged) at once, which may in turn make its own parent ready.
        """
        ready: list[Ready] = []
        while scale + 1 < self.n_scales:
            parent = parent_of(coord)
            if changed:
                self._changed[scale + 1].setdefault(parent, []).append(coord)
            left = self._pending[scale + 1][parent] - 1
            self._pending[scale + 1][parent] = left
            if left:
                break
            children = self._changed[scale + 1].pop(parent, [])
            if children:
                ready.append((scale + 1, parent, sorted(children)))
                break
            scale, coord, changed = scale + 1, parent, False
        return ready
