"""A summary of a dataset for ``segmend info``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.model.events.outbox import backlog
from app.model.journal.journal import Journal
from app.model.journal.sidecar import journal_path
from app.model.storage.store import IMAGE, LABELS, PyramidStore


def dataset_info(path: str | Path) -> dict[str, Any]:
    """Shape, levels, block size, rule, labels, mutation count and outbox of a pyramid file."""
    store = PyramidStore.open(path, "r")
    mutations, pending = 0, 0
    if journal_path(path).exists():
        journal = Journal(journal_path(path), readonly=True)
        try:
            mutations = journal.mutation_count()
            pending = backlog(journal.connection)
            max_label = max(
                int(journal.get_meta("max_label") or 0), int(store.attr("max_label", 0))
            )
            next_label = max(
                int(journal.get_meta("next_label") or 0), int(store.attr("next_label", 1))
            )
        finally:
            journal.close()
    else:
        max_label, next_label = int(store.attr("max_label", 0)), int(store.attr("next_label", 1))
    try:
        return {
            "file": str(path),
            "format": "segmend-pyramid" if store.native else "foreign pyramid (read-only)",
            "shape": list(store.shape),
            "block_size": list(store.block_size),
            "downres_rule": store.rule,
            "levels": [list(lv.shape) for lv in store.levels(LABELS)],
            "image_levels": [list(lv.shape) for lv in store.levels(IMAGE)],
            "compression": store.attr("compression", "unknown"),
            "voxel_size_nm": [float(v) for v in store.attr("voxel_size_nm", (1.0, 1.0, 1.0))],
            "repo_uuid": store.attr("repo_uuid", ""),
            "data_uuid": store.attr("data_uuid", ""),
            "max_label": max_label,
            "next_label": next_label,
            "mutations": mutations,
            "outbox_pending": pending,
        }
    finally:
        store.close()
