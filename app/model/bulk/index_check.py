"""Check the label index against a recount of every s0 block."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from app.kernels import label_counts
from app.model.geometry import Coord
from app.model.journal.journal import Journal
from app.model.storage.store import LABELS, PyramidStore


def check_label_index(
    store: PyramidStore, journal: Journal, pool: ThreadPoolExecutor, max_reports: int = 20
) -> list[str]:
    """Differences between the label index and a recount (empty if they agree)."""
    indexed: dict[Coord, dict[int, int]] = {}
    for label, coord, count in journal.label_index_rows():
        indexed.setdefault(coord, {})[label] = count

    def recount(coord: Coord) -> tuple[Coord, dict[int, int]]:
        labels, counts = label_counts(store.read_block(LABELS, 0, coord))
        return coord, {int(lab): int(n) for lab, n in zip(labels, counts, strict=True) if lab}

    problems: list[str] = []
    for coord, actual in pool.map(recount, list(store.level(LABELS, 0).coords())):
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
