"""Background jobs on a ``QThreadPool`` whose results come back by Qt signals.

A :class:`Job` wraps a callable ``fn(job) -> result`` run on a pool thread.  The
callable may report progress with :meth:`Job.report` and should poll
:attr:`Job.cancel_event` (or hand it to the model, e.g. ``build_pyramid(...,
cancel=job.cancel_event)``).  :class:`TaskRunner` owns the pool, keeps jobs alive
until their result is delivered, runs *lanes* of jobs one at a time in
submission order (edits must apply in the order the user asked for them), and
calls the completion callbacks **on the GUI thread**.

The GUI thread never waits on a job: everything is delivered through queued
signals.
"""

from __future__ import annotations

import itertools
import threading
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

Callback = Callable[[Any], None]
ProgressCallback = Callable[[int, int], None]

BACKGROUND_NICE = 10
"""How far below the GUI thread a dataset's block pool and checkpoint thread
run (``open_dataset(..., background_nice=)``): on a 2-core machine an edit's
cascade would otherwise take the cores the view's redraw needs."""


class _Box:
    """Carries a result through a queued signal.

    PySide6 (seen with 6.12) mis-counts references of ``None`` sent through a
    ``Signal(object)`` across threads and crashes the interpreter; results
    always travel boxed.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class JobSignals(QObject):
    """Signals of one job.

    All three are emitted from the pool thread that runs the job; connected
    to a slot of a QObject living on the GUI thread they are delivered there
    (queued).
    """

    finished = Signal(int, object)
    """``(job id, boxed result)``: the job returned."""
    failed = Signal(int, object)
    """``(job id, exception)``: the job raised."""
    progress = Signal(int, int, int)
    """``(job id, done, total)``: progress reported by the job."""


class Job(QRunnable):
    """One unit of background work.

    Parameters
    ----------
    job_id : int
        Identifier, unique per :class:`TaskRunner`.
    fn : callable
        ``fn(job) -> result``; runs on a pool thread.
    name : str
        What the job does (shown in the status bar and in error messages).
    essential : bool
        Must run even at shutdown (edits the user asked for, closing a dataset).
    """

    def __init__(self, job_id: int, fn: Callable[[Job], Any], name: str,
                 essential: bool = False) -> None:
        super().__init__()
        self.id = job_id
        self.fn = fn
        self.name = name
        self.essential = essential
        self.signals = JobSignals()
        self.cancel_event = threading.Event()
        self.traceback = ""

    def run(self) -> None:
        """Run ``fn`` (on a pool thread) and emit finished or failed."""
        try:
            result = self.fn(self)
        except BaseException as exc:  # delivered to the GUI thread, never lost
            self.traceback = traceback.format_exc()
            self.signals.failed.emit(self.id, exc)
        else:
            self.signals.finished.emit(self.id, _Box(result))

    def report(self, done: int, total: int) -> None:
        """Report progress (call from ``fn``, any thread)."""
        self.signals.progress.emit(self.id, int(done), int(total))

    def cancel(self) -> None:
        """Ask the job to stop (it decides when, by polling :attr:`cancel_event`)."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self.cancel_event.is_set()


class _Pending:
    __slots__ = ("job", "lane", "on_done", "on_error", "on_progress")

    def __init__(self, job: Job, on_done: Callback | None, on_error: Callback | None,
                 on_progress: ProgressCallback | None, lane: str | None) -> None:
        self.job = job
        self.on_done = on_done
        self.on_error = on_error
        self.on_progress = on_progress
        self.lane = lane


class TaskRunner(QObject):
    """Runs jobs on a ``QThreadPool`` and delivers their results on the GUI thread.

    Create it on the GUI thread.  Callbacks given to :meth:`submit` are always
    called on the GUI thread.

    Parameters
    ----------
    max_threads : int, optional
        Size of the private pool (default: Qt's ideal thread count, at least 2).
    parent : QObject, optional
        Qt parent.
    """

    pending_changed = Signal(int)
    """Jobs submitted and not yet delivered; emitted on the GUI thread."""
    job_failed = Signal(str, object)
    """``(job name, exception)`` for every failed job; emitted on the GUI thread."""

    def __init__(self, max_threads: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        ideal = QThreadPool.globalInstance().maxThreadCount()
        self.pool.setMaxThreadCount(max(2, max_threads or ideal))
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._lanes: dict[str, deque[_Pending]] = {}
        self._lane_running: dict[str, int] = {}

    # ---------------------------------------------------------------- submit
    def submit(
        self,
        fn: Callable[[Job], Any],
        *,
        name: str = "job",
        on_done: Callback | None = None,
        on_error: Callback | None = None,
        on_progress: ProgressCallback | None = None,
        lane: str | None = None,
        essential: bool = False,
    ) -> Job:
        """Run ``fn(job)`` on the pool.

        Parameters
        ----------
        fn : callable
            ``fn(job) -> result``, run on a pool thread.
        name : str
            What the job does.
        on_done, on_error, on_progress : callable, optional
            Called on the GUI thread with the result, the exception, or
            ``(done, total)``.
        lane : str, optional
            Jobs of one lane run one at a time, in submission order.
        essential : bool
            Must run even at shutdown (see :meth:`drain_lane`).

        Returns
        -------
        Job
            The job (call :meth:`Job.cancel` to ask it to stop).
        """
        job = Job(next(self._ids), fn, name, essential)
        entry = _Pending(job, on_done, on_error, on_progress, lane)
        self._pending[job.id] = entry
        job.signals.finished.connect(self._on_finished)
        job.signals.failed.connect(self._on_failed)
        job.signals.progress.connect(self._on_progress)
        if lane is None:
            self.pool.start(job)
        else:
            self._lanes.setdefault(lane, deque()).append(entry)
            self._start_lane(lane)
        self.pending_changed.emit(len(self._pending))
        return job

    def _start_lane(self, lane: str) -> None:
        if lane in self._lane_running:
            return
        queue = self._lanes.get(lane)
        if not queue:
            return
        entry = queue.popleft()
        self._lane_running[lane] = entry.job.id
        self.pool.start(entry.job)

    # --------------------------------------------------------------- results
    @Slot(int, object)
    def _on_finished(self, job_id: int, boxed: _Box) -> None:
        entry = self._retire(job_id)
        if entry is not None and entry.on_done is not None:
            entry.on_done(boxed.value)

    @Slot(int, object)
    def _on_failed(self, job_id: int, exc: Any) -> None:
        entry = self._retire(job_id)
        if entry is None:
            return
        self.job_failed.emit(entry.job.name, exc)
        if entry.on_error is not None:
            entry.on_error(exc)

    @Slot(int, int, int)
    def _on_progress(self, job_id: int, done: int, total: int) -> None:
        entry = self._pending.get(job_id)
        if entry is not None and entry.on_progress is not None:
            entry.on_progress(done, total)

    def _retire(self, job_id: int) -> _Pending | None:
        entry = self._pending.pop(job_id, None)
        if entry is None:
            return None
        if entry.lane is not None and self._lane_running.get(entry.lane) == job_id:
            del self._lane_running[entry.lane]
            self._start_lane(entry.lane)
        self.pending_changed.emit(len(self._pending))
        return entry

    # ----------------------------------------------------------------- state
    @property
    def pending(self) -> int:
        """Jobs submitted and not yet delivered."""
        return len(self._pending)

    def pending_in(self, lane: str) -> int:
        """Jobs of ``lane`` queued or running."""
        return sum(1 for e in self._pending.values() if e.lane == lane)

    def drain_lane(self, lane: str) -> list[Job]:
        """Remove the jobs of ``lane`` that have not started; returns them in order.

        Their callbacks will not be called.  Used at shutdown, to run them
        synchronously rather than lose them.
        """
        queue = self._lanes.get(lane)
        jobs: list[Job] = []
        while queue:
            entry = queue.popleft()
            self._pending.pop(entry.job.id, None)
            jobs.append(entry.job)
        if jobs:
            self.pending_changed.emit(len(self._pending))
        return jobs

    def wait_for_done(self, msecs: int = -1) -> bool:
        """Block until the pool is idle (shutdown only: never during normal work)."""
        return bool(self.pool.waitForDone(msecs))
