"""A summary of a dataset for ``segmend info``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py

from app.model.checkpoint_problem import read_checkpoint_problem
from app.model.dataset import open_dataset
from app.model.labelmap.mapping_file import MAPPING_DATASET
from app.model.mutations.checks import MAX_LABEL
from app.model.storage.store import IMAGE, LABELS, PyramidStore


def dataset_info(path: str | Path) -> dict[str, Any]:
    """Mode, shape, levels, block size, rule, labels, mutations, outbox, and
    where the HDF5 file stands against its journal, of a pyramid file.

    Opening it read-only first brings the file up to date when nobody writes
    it (see :class:`app.model.dataset.Dataset`); ``file_note`` says why not
    when it could not be (None when the file holds every edit), and
    ``checkpoint_problem`` why its writer's checkpoints fail.  ``next_label``
    is None when the label space is exhausted.  ``mode`` is ``voxel`` or
    ``labelmap``; a labelmap dataset's ``mapped_supervoxels`` counts the
    rows of its mapping.
    """
    path = Path(path)
    with open_dataset(path, "r", workers=1) as ds, ds.snapshot():
        store = ds.store
        lag = ds.lag
        assert lag is not None  # opened read-only
        info: dict[str, Any] = {
            "file": str(path),
            "format": "segmend-pyramid" if store.native else "foreign pyramid (read-only)",
            "mode": store.mode,
            "shape": list(store.shape),
            "block_size": list(store.block_size),
            "downres_rule": store.rule,
            "levels": [list(lv.shape) for lv in store.levels(LABELS)],
            "image_levels": [list(lv.shape) for lv in store.levels(IMAGE)],
            "compression": store.attr("compression", "unknown"),
            "voxel_size_nm": [float(v) for v in store.attr("voxel_size_nm", (1.0, 1.0, 1.0))],
            "repo_uuid": store.attr("repo_uuid", ""),
            "data_uuid": store.attr("data_uuid", ""),
            "max_label": ds.max_label,
            "next_label": ds.next_free_label if ds.next_free_label <= MAX_LABEL else None,
            "mutations": ds.mutation_count(),
            "outbox_pending": ds.outbox_pending(),
            "checkpointed_mutation": lag.checkpointed,
            "journaled_mutation": lag.journaled,
            "writer": lag.writer,
            "file_note": lag.describe(path) or None,
            "checkpoint_problem": read_checkpoint_problem(path),
        }
        if info["mode"] == "labelmap":
            info["mapped_supervoxels"] = _mapped_supervoxels(store)
        return info


def _mapped_supervoxels(store: PyramidStore) -> int:
    """The rows of the file's mapping (0 without one)."""
    node = None if store.h5 is None else store.h5.get(MAPPING_DATASET)
    return int(node.shape[0]) if isinstance(node, h5py.Dataset) else 0
