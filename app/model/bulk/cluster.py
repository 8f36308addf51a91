"""Where a bulk job runs: threads here, a local Dask cluster, or an existing one.

``segmend build``, ``verify`` and ``reindex`` take ``--workers N`` (a
``LocalCluster`` of N worker processes, started and stopped by segmend) or
``--scheduler ADDRESS`` (a cluster someone started: ``dask scheduler`` and
``dask worker`` processes, or any deployment dask-jobqueue or Kubernetes
gives).  Workers read the sources and the pyramid by path: on other machines
those paths must name the same files (a shared file system).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from app.model.errors import CancelledError, SegmendError

__all__ = ["RETRIES", "Cluster", "dask_client", "default_workers", "run_tasks"]

RETRIES = 2
"""Times a failed task is run again before the job fails (a killed worker's
tasks are rerun elsewhere by the scheduler, without counting here)."""

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for the scheduler at ``--scheduler ADDRESS``."""


def default_workers() -> int:
    """Worker threads for bulk jobs: one per core."""
    return max(
        1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


@dataclass(frozen=True)
class Cluster:
    """Where a bulk job runs.

    Attributes
    ----------
    workers : int, optional
        Start a local cluster of this many worker processes (one thread each).
    scheduler : str, optional
        The address of a running Dask scheduler (``tcp://host:8786``).
    threads : int, optional
        Neither: an in-process cluster of this many threads (None: one per core).
    """

    workers: int | None = None
    scheduler: str | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.scheduler is not None:
            raise ValueError("give either a number of workers or a scheduler address, not both")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")


@contextmanager
def dask_client(cluster: Cluster) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster``; a local cluster is stopped after.

    Raises
    ------
    app.model.errors.SegmendError
        If the scheduler does not answer.
    """
    quiet = logging.CRITICAL  # a failed task is reported once, by run_tasks
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(quiet)
    try:
        with _client(cluster, quiet) as client:
            yield client
    finally:
        logger.setLevel(level)


@contextmanager
def _client(cluster: Cluster, quiet: int) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if cluster.scheduler is not None:
        try:
            client = Client(cluster.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise SegmendError(
                f"cannot reach the Dask scheduler at {cluster.scheduler} ({exc})"
            ) from exc
        with client:
            yield client
        return
    # (the scheduler's HTTP server on a free port: a busy 8787 must not matter)
    if cluster.workers is not None:
        local = LocalCluster(
            n_workers=cluster.workers, threads_per_worker=1, processes=True,
            host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=quiet,
        )
    else:
        local = LocalCluster(
            n_workers=1, threads_per_worker=cluster.threads or default_workers(),
            processes=False, dashboard_address="127.0.0.1:0", silence_logs=quiet,
        )
    with local, Client(local) as client:
        yield client


def run_tasks(
    client: Any,
    futures: Iterable[tuple[Any, str]],
    on_result: Callable[[Any], None],
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    job: str | None = None,
) -> None:
    """Wait for ``futures`` and hand each result to ``on_result`` (in this
    thread, as they complete).

    Parameters
    ----------
    futures : iterable of (distributed.Future, str)
        Each future with what it computes (named in errors, e.g. its blocks).
    progress : callable, optional
        ``progress(done, total)`` in tasks, from this thread.
    cancel : threading.Event, optional
        Set it (from any thread) to cancel the tasks left.
    job : str, optional
        The key prefix of every task of the job (``futures`` and what they
        depend on): on a cancel or a failure, this returns only once none of
        them runs any more, so that no task still writes output the caller
        then removes (a cancelled task that runs is not interrupted).

    Raises
    ------
    app.model.errors.CancelledError
        If ``cancel`` was set.
    app.model.errors.SegmendError
        If a task failed ``RETRIES + 1`` times (naming what it computes);
        the tasks left are cancelled.
    """
    from distributed import as_completed

    what = dict(futures)
    pending = set(what)
    stop_watching = threading.Event()

    def watch() -> None:
        if cancel is None:
            return
        while not stop_watching.wait(0.1):
            if cancel.is_set():
                client.cancel(list(pending))
                return

    watcher = threading.Thread(target=watch, name="segmend-cancel-watch", daemon=True)
    watcher.start()
    try:
        for done, future in enumerate(as_completed(list(what)), 1):
            pending.discard(future)
            if cancel is not None and cancel.is_set():
                raise CancelledError("cancelled")
            if future.status == "error":
                raise _task_error(future, what[future])
            on_result(future.result())
            future.release()
            if progress is not None:
                progress(done, len(what))
    except BaseException:
        client.cancel(list(pending))
        if job is not None:
            _wait_until_stopped(client, job)
        raise
    finally:
        stop_watching.set()
        watcher.join()


STOP_WAIT = 120.0
"""Seconds a cancelled job's running tasks get to finish (see :func:`run_tasks`)."""


def _wait_until_stopped(client: Any, job: str) -> None:
    """Wait until no worker runs a task whose key starts with ``job``."""
    deadline = time.monotonic() + STOP_WAIT
    while time.monotonic() < deadline:
        running = [str(k) for keys in client.processing().values() for k in keys]
        if not any(k.startswith(job) for k in running):
            return
        time.sleep(0.05)


def _task_error(future: Any, what: str) -> SegmendError:
    """The error of a failed task, as one line naming what it computed."""
    exc = future.exception()
    if isinstance(exc, SegmendError):
        return exc
    return SegmendError(
        f"the task for {what} failed {RETRIES + 1} times; last error: "
        f"{type(exc).__name__}: {exc}"
    )
