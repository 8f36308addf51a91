"""Rebuilding the label index from s0 (the whole volume: a bulk job)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from app.model.bulk.index_check import recount
from app.model.engine.counters import Counters
from app.model.geometry import Coord
from app.model.journal.journal import Journal
from app.model.mutations.base import IndexRow
from app.model.storage.store import LABELS, PyramidStore

Recounts = Callable[[], Iterable[tuple[Coord, dict[int, int]]]]
"""Counts the voxels of each label in every s0 block (e.g. on a Dask cluster)."""


def reindex(
    store: PyramidStore,
    journal: Journal,
    counters: Counters,
    pool: ThreadPoolExecutor,
    progress: Callable[[int, int], None] | None = None,
    recounts: Recounts | None = None,
) -> int:
    """Count every label of every s0 block on ``pool`` (or by ``recounts``)
    and replace the label index with the counts, in one transaction; returns
    the number of labels.  The caller holds the engine exclusively."""
    counted = local_recounts(store, pool, progress)() if recounts is None else recounts()
    rows: list[IndexRow] = [
        (label, coord, n) for coord, counts in counted for label, n in counts.items()
    ]
    counters.note_label(max((r[0] for r in rows), default=0))
    with journal.transaction() as cur:
        Journal.clear_label_index(cur)
        Journal.set_label_counts(cur, rows)
        Journal.set_meta(cur, "index_built", "1")
        Journal.raise_counters(cur, counters.values())
    return len({r[0] for r in rows})


def local_recounts(
    store: PyramidStore,
    pool: ThreadPoolExecutor,
    progress: Callable[[int, int], None] | None = None,
) -> Recounts:
    """Recounts of every s0 block of ``store`` on ``pool``."""

    def run() -> list[tuple[Coord, dict[int, int]]]:
        coords = list(store.level(LABELS, 0).coords())
        done = itertools.count(1)

        def count(coord: Coord) -> tuple[Coord, dict[int, int]]:
            counts = recount(store, coord)
            if progress is not None:
                progress(next(done), len(coords))
            return coord, counts

        return list(pool.map(count, coords))

    return run
