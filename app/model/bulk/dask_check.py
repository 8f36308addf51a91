"""``verify`` and ``reindex`` on a Dask cluster: workers read the HDF5 file
itself, block-aligned slices of each level per task.

Each task opens the pyramid read-only and reads while no checkpoint commits
(:func:`app.model.journal.file_locks.no_commit_meanwhile`): what it compares
is one committed state of the file.  The file must hold every journaled edit
(the caller checks); edits a writer stages meanwhile are not seen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

from app.model.bulk.cluster import RETRIES, run_tasks
from app.model.bulk.index_check import index_differences, recount
from app.model.bulk.verify import BlockMismatch, VerifyReport, compare_block, level_jobs
from app.model.errors import SegmendError
from app.model.geometry import Coord
from app.model.journal.file_locks import no_commit_meanwhile
from app.model.storage.store import LABELS, PyramidStore

__all__ = ["recount_on_cluster", "verify_on_cluster"]

BLOCKS_PER_TASK = 64
"""Blocks a task checks or recounts (consecutive in z, y, x order)."""

Progress = Callable[[int, int], None]


def verify_on_cluster(
    client: Any,
    path: Path,
    *,
    index_rows: Iterable[tuple[int, Coord, int]] | None = None,
    max_reports: int = 20,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> VerifyReport:
    """Every level ≥ 1 against its recompute from the level below, and (given
    the label index's ``index_rows``) the index against a recount of s0, on
    ``client``'s workers.  Reports the same first differences as
    :func:`app.model.bulk.verify.verify_levels`.

    Raises
    ------
    app.model.errors.CancelledError
        See :func:`app.model.bulk.cluster.run_tasks`.
    app.model.errors.SegmendError
        A task failed (:func:`~app.model.bulk.cluster.run_tasks`), or a writer
        committed to the file meanwhile (its tasks saw different states).
    """
    with no_commit_meanwhile(path) as before, closing(PyramidStore.open(path, "r")) as store:
        jobs = level_jobs(store)
        s0 = list(store.level(LABELS, 0).coords())
    report = VerifyReport()
    futures = [
        (client.submit(_check_blocks, str(path), part, retries=RETRIES),
         _describe(part))
        for part in _parts(jobs)
    ]
    recounts: list[tuple[Coord, dict[int, int]]] = []
    if index_rows is not None:
        futures += _submit_recounts(client, path, s0)

    def take(result: tuple[str, Any]) -> None:
        what, value = result
        if what == "levels":
            report.add(value[0], value[1], max_reports)
        else:
            recounts.extend(value)

    run_tasks(client, futures, take, progress=progress, cancel=cancel)
    with no_commit_meanwhile(path) as after:
        if after != before:
            raise SegmendError(
                f"{path} was checkpointed by its writer during the verify; run it again"
            )
    if index_rows is not None:
        report.problems.extend(index_differences(index_rows, sorted(recounts), max_reports))
    return report


def recount_on_cluster(
    client: Any,
    path: Path,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> list[tuple[Coord, dict[int, int]]]:
    """The voxels of each label in every s0 block, counted on ``client``'s
    workers, in block order."""
    with closing(PyramidStore.open(path, "r")) as store:
        s0 = list(store.level(LABELS, 0).coords())
    recounts: list[tuple[Coord, dict[int, int]]] = []
    futures = _submit_recounts(client, path, s0)
    run_tasks(client, futures, lambda r: recounts.extend(r[1]), progress=progress, cancel=cancel)
    return sorted(recounts)


def _submit_recounts(client: Any, path: Path, coords: list[Coord]) -> list[tuple[Any, str]]:
    """The tasks recounting s0 blocks ``coords``, each with the blocks it covers."""
    return [
        (client.submit(_recount_blocks, str(path), part, retries=RETRIES),
         _describe([(LABELS, 0, c) for c in part]))
        for part in _parts(coords)
    ]


def _parts(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + BLOCKS_PER_TASK] for i in range(0, len(items), BLOCKS_PER_TASK)]


def _describe(jobs: list[tuple[str, int, Coord]]) -> str:
    (kind, scale, first), (_, _, last) = jobs[0], jobs[-1]
    return f"{kind}/s{scale} blocks {first}..{last}"


def _check_blocks(
    path: str, jobs: list[tuple[str, int, Coord]]
) -> tuple[str, tuple[int, list[BlockMismatch]]]:
    """(Worker) compare ``jobs``' blocks with their recompute."""
    with no_commit_meanwhile(Path(path)), closing(PyramidStore.open(path, "r")) as store:
        found = [m for job in jobs if (m := compare_block(store, *job)) is not None]
    return "levels", (len(jobs), found)


def _recount_blocks(
    path: str, coords: list[Coord]
) -> tuple[str, list[tuple[Coord, dict[int, int]]]]:
    """(Worker) the label counts of s0 blocks ``coords``."""
    with no_commit_meanwhile(Path(path)), closing(PyramidStore.open(path, "r")) as store:
        return "index", [(c, recount(store, c)) for c in coords]
