"""Check the label index against a recount of every s0 block."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from app.kernels import label_counts
from app.model.geometry import Coord
from app.model.journal.journal import Journal
from app.model.storage.store import LABELS, PyramidStore


def recount(store: PyramidStore, coord: Coord) -> dict[int, int]:
    """Voxels of each non-zero label in s0 block ``coord``."""
    labels, counts = label_counts(store.read_block(LABELS, 0, coord))
    return {int(lab): int(n) for lab, n in zip(labels, counts, strict=True) if lab}


def check_label_index(
    store: PyramidStore, journal: Journal, pool: ThreadPoolExecutor, max_reports: int = 20
) -> list[str]:
    """Differences between the label index and a recount (empty if they agree)."""
    coords = list(store.level(LABELS, 0).coords())
    recounts = zip(coords, pool.map(lambda c: recount(store, c), coords), strict=True)
    return index_differences(journal.label_index_rows(), recounts, max_reports)


def index_differences(
    rows: Iterable[tuple[int, Coord, int]],
    recounts: Iterable[tuple[Coord, dict[int, int]]],
    max_reports: int = 20,
) -> list[str]:
    """Differences between label index ``rows`` ``(label, block, count)`` and
    the recount of every s0 block (empty if they agree)."""
    indexed: dict[Coord, dict[int, int]] = {}
    for label, coord, count in rows:
        indexed.setdefault(coord, {})[label] = count
    problems: list[str] = []
    for coord, actual in recounts:
        expected = indexed.pop(coord, {})
        if expected != actual:
            for label in sorted(set(expected) | set(actual)):
                if expected.get(label, 0) != actual.get(label, 0) and len(problems) < max_reports:
                    problems.append(
                        f"label index: label {label} in block {coord}: index says "
                        f"{expected.get(label, 0)} voxels, recount finds {actual.get(label, 0)}"
                    )
    for coord in sorted(indexed):
        if len(problems) < max_reports:
            problems.append(f"label index: names block {coord}, which is outside s0")
    return problems
