"""Building an OME-Zarr pyramid straight from a source volume, on Dask workers
that each write their own shards (see :mod:`app.model.bulk.box_tree`)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

from app.model.bulk.box_tree import TreePlan
from app.model.bulk.cluster import Cluster, dask_client
from app.model.bulk.dask_build import build_levels
from app.model.omezarr.writer import LevelsSpec, building_ome_zarr
from app.model.storage.layout import level_shapes
from app.model.storage.store import IMAGE, LABELS

__all__ = ["build_ome_zarr", "is_zarr_output"]


def is_zarr_output(out: str | Path) -> bool:
    """True if a build to ``out`` writes an OME-Zarr (``*.zarr``)."""
    return Path(out).suffix == ".zarr"


def build_ome_zarr(
    labels: str | Path,
    out: Path,
    *,
    shape: tuple[int, int, int],
    image: str | Path | None,
    image_dtype: str | None,
    block_size: tuple[int, int, int],
    rule: str,
    levels: int | None,
    compression: str,
    voxel_size_nm: tuple[float, float, float],
    cluster: Cluster,
    task_blocks: int,
    progress: Callable[[int, int], None] | None,
    cancel: threading.Event | None,
    created_by: str,
) -> Path:
    """Write the label (and grayscale) pyramid of a source as an OME-Zarr
    (see :func:`app.model.omezarr.writer.building_ome_zarr`): every shard
    written whole by one task, the levels equal to an HDF5 build's.

    Arguments as :func:`app.model.bulk.build.build_pyramid`, which checks
    them and the sources (of voxel ``shape``; grayscale of ``image_dtype``).

    Raises
    ------
    app.model.errors.CancelledError, app.model.errors.SegmendError
        See :func:`app.model.bulk.cluster.run_tasks`; nothing is left at ``out``.
    """
    shapes = tuple(level_shapes(shape, block_size, levels))
    plan = TreePlan(LABELS, str(labels), shapes, block_size, rule, task_blocks)
    specs = {LABELS: LevelsSpec(shapes, "uint64", block_size)}
    sources = {LABELS: str(labels)}
    if image is not None and image_dtype is not None:  # (both or neither)
        specs[IMAGE] = LevelsSpec(shapes, image_dtype, block_size)
        sources[IMAGE] = str(image)
    with building_ome_zarr(
        out, labels=specs[LABELS], image=specs.get(IMAGE), voxel_size_nm=voxel_size_nm,
        compression=compression, rule=rule, shard_blocks=plan.shard_blocks(),
        created_by=created_by,
    ) as pyramid:
        plans = [
            dataclasses.replace(plan, kind=kind, source=source, zarr=pyramid)
            for kind, source in sources.items()
        ]
        with dask_client(cluster) as client:
            max_label = build_levels(client, plans, progress=progress, cancel=cancel)
        pyramid.record(max_label=max_label)
    return Path(out)
