"""A summary of a dataset for ``segmend info``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.model.store import IMAGE, LABELS, PyramidStore


def dataset_info(path: str | Path) -> dict[str, Any]:
    """Shape, levels, block size, rule, labels, mutation count and outbox of a pyramid file."""
    store = PyramidStore.open(path, "r")
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
            "max_label": int(store.attr("max_label", 0)),
            "next_label": int(store.attr("next_label", 1)),
            "mutations": 0,
            "outbox_pending": 0,
        }
    finally:
        store.close()
