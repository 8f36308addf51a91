"""Building a pyramid's levels on a Dask cluster (see :mod:`app.model.bulk.box_tree`).

The client submits every task of every stage at once (a stage's tasks depend
on the tops of the stage below, which stay on the workers) and handles the
results as they complete: for an HDF5 output it writes the encoded chunks
(``write_direct_chunk``: the single writer only does I/O); a Zarr output's
tasks write their own shards.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from app.model.bulk.box_tree import BoxResult, TreePlan, run_box
from app.model.bulk.cluster import RETRIES, run_tasks
from app.model.storage.store import PyramidStore

__all__ = ["build_levels"]


def build_levels(
    client: Any,
    plans: list[TreePlan],
    *,
    store: PyramidStore | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Compute every level of each plan's pyramid on ``client``'s workers.

    Parameters
    ----------
    client : distributed.Client
    plans : list of TreePlan
        Labels first, then the grayscale (if any).
    store : PyramidStore, optional
        The HDF5 output the encoded chunks are written into (plans with
        ``codecs``); None for a Zarr output.
    progress : callable, optional
        ``progress(done, total)`` in tasks.

    Returns
    -------
    int
        The largest label.

    Raises
    ------
    app.model.errors.CancelledError, app.model.errors.SegmendError
        See :func:`app.model.bulk.cluster.run_tasks`.
    """
    job = uuid.uuid4().hex[:8]
    results: list[tuple[Any, str]] = []
    for plan in plans:
        results += _submit_tree(client, plan, job)
    top = [0]

    def take(result: tuple[str, list[tuple[int, Any, bytes]], int]) -> None:
        kind, payloads, max_label = result
        top[0] = max(top[0], max_label)
        if store is not None:
            for level, coord, payload in payloads:
                store.write_payload(kind, level, coord, payload)

    run_tasks(client, results, take, progress=progress, cancel=cancel, job=f"segmend-{job}")
    return top[0]


def _submit_tree(client: Any, plan: TreePlan, job: str) -> list[tuple[Any, str]]:
    """Submit every task of ``plan``; returns the futures of their results
    (without the tops), each with the boxes it covers."""
    out = []
    tops: dict[Any, Any] = {}
    for stage, (base, _top) in enumerate(plan.stages()):
        stage_tops = {}
        for box in plan.boxes(base):
            inputs = [tops[c] for c in plan.children(base, box)] if stage else None
            key = f"segmend-{job}-{plan.kind}-{stage}-{'-'.join(map(str, box))}"
            task = client.submit(
                run_box, plan, stage, box, inputs, key=key, retries=RETRIES, priority=stage
            )
            start, stop = plan.box_region(base, base, box)
            what = f"{plan.kind}/s{base} voxels {start}..{stop} (box {box} of stage {stage})"
            out.append((client.submit(_without_top, task, plan.kind, key=f"{key}-out",
                                      priority=stage + 1), what))
            stage_tops[box] = client.submit(_top_of, task, key=f"{key}-top", priority=stage + 1)
        tops = stage_tops
    return out


def _without_top(result: BoxResult, kind: str) -> tuple[str, list[tuple[int, Any, bytes]], int]:
    return kind, result.payloads, result.max_label


def _top_of(result: BoxResult) -> Any:
    return result.top
