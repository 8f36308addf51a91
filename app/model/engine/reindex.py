"""Rebuilding the label index from s0 (the whole volume: a bulk job)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from app.model.bulk.index_check import recount
from app.model.engine.counters import Counters
from app.model.geometry import Coord
from app.model.journal.journal import Journal
from app.model.mutations.base import IndexRow
from app.model.storage.store import LABELS, PyramidStore


def reindex(
    store: PyramidStore,
    journal: Journal,
    counters: Counters,
    pool: ThreadPoolExecutor,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Count every label of every s0 block on ``pool`` and replace the label
    index with the counts, in one transaction; returns the number of labels.
    The caller holds the engine exclusively."""
    coords = list(store.level(LABELS, 0).coords())
    done = itertools.count(1)

    def count(coord: Coord) -> list[IndexRow]:
        counts = recount(store, coord)
        if progress is not None:
            progress(next(done), len(coords))
        return [(label, coord, n) for label, n in counts.items()]

    rows = [r for block_rows in pool.map(count, coords) for r in block_rows]
    counters.note_label(max((r[0] for r in rows), default=0))
    with journal.transaction() as cur:
        Journal.clear_label_index(cur)
        Journal.set_label_counts(cur, rows)
        Journal.set_meta(cur, "index_built", "1")
        Journal.raise_counters(cur, counters.values())
    return len({r[0] for r in rows})
