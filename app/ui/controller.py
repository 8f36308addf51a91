"""The Qt side of a proofreading session: one dataset, a worker pool, signals.

:class:`Session` is what every widget talks to.  It opens and closes the
dataset, runs each edit on the worker pool (edits and the dataset's opening and
closing run one at a time, in the order asked for, on the ``"dataset"`` lane;
reads run concurrently), and re-emits the model's psygnal events -- which the
model emits from the thread running the mutation -- as Qt signals on the GUI
thread.

Every signal of :class:`Session` is emitted on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from qtpy.QtCore import QObject, QTimer, Signal, Slot

from app.model.error_text import one_line
from app.model.errors import SegmendError
from app.model.events.settings import KafkaSettings, load_settings
from app.ui.messages import MessageReporter
from app.ui.stats import DatasetStats, dataset_stats
from app.ui.workers import BACKGROUND_NICE, Job, TaskRunner

if TYPE_CHECKING:
    from app.model.dataset import Dataset, SplitResult
    from app.model.mutations import Mutation

BUILDING_DEMO = "building the demo"
"""The :attr:`Session.open_progress` stage of the demo's first build."""
INDEXING = "indexing"
"""The :attr:`Session.open_progress` stage of building the label index."""
LANE = "dataset"
"""The lane of edits and of opening/closing: one at a time, in order."""
STATUS_POLL_MS = 2000
"""How often the Kafka sender's state and backlog are read."""


class HistoryLine(NamedTuple):
    """One mutation as the history panel lists it (made off the GUI thread)."""

    text: str
    """``#id  description  [user]``."""
    tooltip: str
    """Its timestamp and version UUID."""


def kafka_settings(servers: str, prefix: str) -> tuple[KafkaSettings, str]:
    """Kafka settings: the config file's, with the settings dialog's servers and prefix.

    Returns the settings and a notice (empty if fine); unusable settings turn
    publishing off (events still wait in the outbox) rather than fail the open.
    """
    try:
        return load_settings(bootstrap_servers=servers or None, topic_prefix=prefix or None), ""
    except SegmendError as exc:
        return KafkaSettings(), f"Kafka off: {one_line(exc)}"


class _ModelBridge(QObject):
    """Receives the model's psygnal events on any thread and re-emits them as Qt signals.

    The Qt signals are emitted on the thread that ran the mutation; the
    :class:`Session` slots connected to them run on the GUI thread (queued).
    """

    started = Signal(object)
    completed = Signal(object)
    blocks = Signal(int, object)
    labels = Signal(object)

    def on_started(self, record: Mutation) -> None:
        self.started.emit(record)  # immutable: safe to hand to the GUI thread

    def on_completed(self, record: Mutation) -> None:
        self.completed.emit(record)

    def on_blocks(self, scale: int, coords: list[Any]) -> None:
        self.blocks.emit(int(scale), [tuple(int(v) for v in c) for c in coords])

    def on_labels(self, labels: list[Any]) -> None:
        self.labels.emit([int(v) for v in labels])


class Session(QObject):
    """One open dataset and the background work on it.

    Parameters
    ----------
    runner : TaskRunner, optional
        The worker pool (a private one by default).
    reporter : MessageReporter, optional
        Where errors are shown (a box-less one by default).
    user : str, optional
        Recorded in mutation records and events.
    workers : int, optional
        Threads of the model's block pool (default: one per core).
    kafka_servers, topic_prefix : str
        Kafka bootstrap servers (empty: the config file's, else off) and topic prefix.
    parent : QObject, optional
        Qt parent.
    """

    opened = Signal(object)
    """The dataset is open (a :class:`~app.model.dataset.Dataset`). GUI thread."""
    closed = Signal()
    """The dataset was closed (or replaced); widgets drop their layers. GUI thread."""
    open_failed = Signal(str)
    opening = Signal(object)
    """Opening this path (a ``Path``) started in the background. GUI thread."""
    open_progress = Signal(str, int, int)
    """``(stage, done, total)`` of an open: stage :data:`BUILDING_DEMO` or :data:`INDEXING`
    (emitted on the worker, delivered queued to GUI-thread receivers)."""
    """Opening failed; the one-line reason.  The previous dataset stays open. GUI thread."""
    notice = Signal(str)
    """Something the user should know (e.g. "opened read-only: ..."). GUI thread."""
    mutation_started = Signal(object)
    """A mutation's s0 blocks are durable (its typed record,
    :class:`~app.model.mutations.base.Mutation`). GUI thread."""
    mutation_completed = Signal(object)
    """Every level of a mutation is written (its record). GUI thread."""
    blocks_changed = Signal(int, object)
    """``(scale, [block coords])`` now show new data. GUI thread."""
    labels_changed = Signal(object)
    """Labels whose size or blocks changed. GUI thread."""
    edit_finished = Signal(str, object)
    """``(action, result)``: an edit returned (MutationID, SplitResult, or a cleave's
    ``(cleaved body, MutationID)``). GUI thread."""
    edit_failed = Signal(str, str)
    """``(action, message)``: an edit was refused or failed; nothing changed. GUI thread."""
    history_changed = Signal(object)
    """The mutation log (:class:`HistoryLine` s, oldest first). GUI thread."""
    undo_state_changed = Signal(bool, bool)
    """``(can_undo, can_redo)``. GUI thread."""
    stats_changed = Signal(object)
    """A :class:`~app.ui.stats.DatasetStats` (mutation count, outbox backlog). GUI thread."""
    pending_changed = Signal(int)
    """Background jobs not yet delivered (reads and edits). GUI thread."""
    edits_pending_changed = Signal(int)
    """Edits (and opens/closes) queued or running. GUI thread."""

    def __init__(
        self,
        runner: TaskRunner | None = None,
        *,
        reporter: MessageReporter | None = None,
        user: str | None = None,
        workers: int | None = None,
        kafka_servers: str = "",
        topic_prefix: str = "",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.kafka_servers = kafka_servers
        self.topic_prefix = topic_prefix
        self.runner = runner if runner is not None else TaskRunner(parent=self)
        self.reporter = reporter if reporter is not None else MessageReporter(show_boxes=False)
        self.user = user or None
        self.workers = workers or None
        self.dataset: Dataset | None = None
        self.generation = 0
        self.history: list[HistoryLine] = []
        self.can_undo = False
        self.can_redo = False
        self.stats = DatasetStats(0, None)
        self._bridge = _ModelBridge(self)
        self._bridge.started.connect(self._on_started)
        self._bridge.completed.connect(self._on_completed)
        self._bridge.blocks.connect(self._on_blocks)
        self._bridge.labels.connect(self._on_labels)
        self._history_job: Job | None = None
        self._history_dirty = False
        self._status_job: Job | None = None
        self.runner.pending_changed.connect(self._on_pending)
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(STATUS_POLL_MS)
        self._status_timer.timeout.connect(self.poll_status)

    # ------------------------------------------------------------ properties
    @property
    def path(self) -> Path | None:
        """The open dataset's file, or None."""
        return self.dataset.path if self.dataset is not None else None

    @property
    def writable(self) -> bool:
        """True if the open dataset accepts edits."""
        return self.dataset is not None and self.dataset.mode == "r+"

    @property
    def busy(self) -> bool:
        """True while any background job is pending."""
        return self.runner.pending > 0

    @property
    def edits_pending(self) -> int:
        """Edits (and opens/closes) queued or running."""
        return self.runner.pending_in(LANE)

    # ---------------------------------------------------------- open / close
    def open(self, path: str | Path, *, writable: bool = True, demo: bool = False) -> Job:
        """Open ``path`` in the background; emits :attr:`opened` or :attr:`open_failed`.

        Opens for editing if it can; a dataset locked by another process, or a
        pyramid written by another tool, opens read-only with a notice.  On
        failure the current dataset stays open.  ``demo``: ``path`` is the demo
        pyramid (labelmap mode), built first (with the job's progress) if missing,
        outdated or in voxel mode.

        The first open imports the model (store, HDF5, kernels) on the worker,
        not on the GUI thread.
        """
        path = Path(path).expanduser()
        reopen_same = self.dataset is not None and self.dataset.path.resolve() == path.resolve()
        if reopen_same:
            self.close_async()
        user, workers = self.user, self.workers
        servers, prefix = self.kafka_servers, self.topic_prefix
        signal = self.open_progress

        def stage(name: str) -> Callable[[int, int], None]:
            return lambda done, total: signal.emit(name, int(done), int(total))

        def work(job: Job) -> tuple[Dataset, str]:
            from app.model.dataset import open_dataset, open_editable

            if demo:
                from app.model.demo import ensure_demo

                ensure_demo(path, progress=stage(BUILDING_DEMO))
            if not writable:
                return open_dataset(path, "r", workers=workers,
                                    background_nice=BACKGROUND_NICE), ""
            kafka, kafka_note = kafka_settings(servers, prefix)
            ds, refused = open_editable(path, workers=workers, user=user, progress=stage(INDEXING),
                                        kafka=kafka, background_nice=BACKGROUND_NICE)
            if refused is not None:
                return ds, f"opened read-only: {one_line(refused)}"
            return ds, kafka_note

        job = self.runner.submit(
            work, name=f"open {path.name}", lane=LANE,
            on_done=self._opened_ok, on_error=lambda exc: self._open_error(path, exc),
        )
        self.opening.emit(path)
        return job

    def attach(self, dataset: Dataset) -> None:
        """Use a dataset opened elsewhere (e.g. by the napari reader)."""
        self._install(dataset)

    def _opened_ok(self, result: tuple[Dataset, str]) -> None:
        dataset, note = result
        self._install(dataset)
        if note:
            self.notice.emit(note)
            self.reporter.info(note)

    def _open_error(self, path: Path, exc: BaseException) -> None:
        line = one_line(exc)
        if "segmend build" in line:
            line += " (File > Import volume... builds one)"
        line = f"cannot open {path.name}: {line}"
        self.open_failed.emit(line)
        self.reporter.error(line)

    def _install(self, dataset: Dataset) -> None:
        if self.dataset is not None:
            self.close_async()
        self.generation += 1
        self.dataset = dataset
        sig = dataset.signals
        sig.mutation_started.connect(self._bridge.on_started)
        sig.mutation_completed.connect(self._bridge.on_completed)
        sig.blocks_changed.connect(self._bridge.on_blocks)
        sig.labels_changed.connect(self._bridge.on_labels)
        self.history = []
        self.opened.emit(dataset)
        self.refresh_history()
        self._status_timer.start()

    def _detach(self) -> Dataset | None:
        dataset = self.dataset
        if dataset is None:
            return None
        sig = dataset.signals
        for signal, slot in (
            (sig.mutation_started, self._bridge.on_started),
            (sig.mutation_completed, self._bridge.on_completed),
            (sig.blocks_changed, self._bridge.on_blocks),
            (sig.labels_changed, self._bridge.on_labels),
        ):
            signal.disconnect(slot, missing_ok=True)
        self._status_timer.stop()
        self._history_job = self._status_job = None  # their results are dropped now
        self._history_dirty = False
        self.dataset = None
        self.generation += 1
        self.history = []
        self.can_undo = self.can_redo = False
        self.closed.emit()
        self.undo_state_changed.emit(False, False)
        return dataset

    def close_async(self, on_closed: Callable[[], None] | None = None) -> None:
        """Close the dataset in the background, after the edits already asked for."""
        dataset = self._detach()
        if dataset is None:
            if on_closed is not None:
                on_closed()
            return
        def closed(failure: BaseException | None = None) -> None:
            if failure is not None:
                self.reporter.error(failure, context=f"closing {dataset.path.name}")
            if on_closed is not None:
                on_closed()

        self.runner.submit(
            lambda _job: dataset.close(), name=f"close {dataset.path.name}", lane=LANE,
            on_done=lambda _r: closed(), on_error=closed, essential=True,
        )

    def shutdown(self) -> None:
        """Finish every edit and close the dataset (blocks: for application exit only)."""
        self.runner.wait_for_done()
        leftovers = self.runner.drain_lane(LANE)
        for job in leftovers:  # queued edits the event loop never started: run them now
            if job.essential:
                job.run()
        dataset = self._detach()
        self.runner.wait_for_done()
        if dataset is not None:
            try:
                dataset.close()
            except SegmendError as exc:  # a failed last checkpoint: the edits are in the journal
                logging.getLogger("segmend").error("closing %s: %s", dataset.path, one_line(exc))

    # -------------------------------------------------------------- editing
    def merge(self, target: int, labels: Sequence[int]) -> Job | None:
        """Merge ``labels`` into ``target`` in the background."""
        target, labels = int(target), [int(v) for v in labels]
        return self._edit("merge", lambda ds: ds.merge(target, labels))

    def cleave(self, body: int, supervoxels: Sequence[int]) -> Job | None:
        """Move ``supervoxels`` of ``body`` to a new body in the background (labelmap
        mode); emits ``edit_finished("cleave", (cleaved_body, mutation_id))``."""
        body, svs = int(body), [int(v) for v in supervoxels]
        return self._edit("cleave", lambda ds: ds.cleave(body, svs))

    def split(self, target: int, mask: NDArray[np.bool_],
              offset: tuple[int, int, int]) -> Job | None:
        """Split the voxels of ``target`` under ``mask`` (placed at s0 ``offset``) off."""
        target = int(target)
        off = (int(offset[0]), int(offset[1]), int(offset[2]))
        return self._edit("split", lambda ds: ds.split(target, mask=mask, offset=off))

    def split_coarse(self, target: int, blocks: Sequence[Sequence[int]]) -> Job | None:
        """Split the voxels of ``target`` in these s0 blocks off."""
        target = int(target)
        coords = [tuple(int(v) for v in b) for b in blocks]
        return self._edit("split-coarse", lambda ds: ds.split_coarse(target, coords))

    def split_by_seeds(self, body: int,
                       seeds: Sequence[Sequence[tuple[int, int, int]]]) -> Job | None:
        """Split ``body`` by a seeded watershed: one split per seed group but the last
        (in labelmap mode: one cleave of whole supervoxels per group but the last).

        ``seeds``: two or more groups of s0 voxels (z, y, x); the result
        (emitted as ``edit_finished("seeded-split", [SplitResult, ...])``) lists
        the new bodies, first group first; the last group's part keeps the id.
        """
        body = int(body)
        groups = [[(int(z), int(y), int(x)) for z, y, x in group] for group in seeds]
        return self._edit("seeded-split", lambda ds: ds.split_by_seeds(body, groups))

    def undo(self) -> Job | None:
        """Undo the last mutation (as a new mutation)."""
        return self._edit("undo", lambda ds: ds.undo())

    def redo(self) -> Job | None:
        """Redo the last undone mutation."""
        return self._edit("redo", lambda ds: ds.redo())

    def _edit(self, action: str,
              fn: Callable[[Dataset], int | tuple[int, int] | SplitResult | list[SplitResult]],
              ) -> Job | None:
        dataset = self.dataset
        if dataset is None:
            self._edit_error(action, "no dataset is open")
            return None
        if dataset.mode != "r+":
            self._edit_error(action, f"{dataset.path.name} is open read-only")
            return None
        gen = self.generation
        return self.runner.submit(
            lambda _job: fn(dataset), name=action, lane=LANE, essential=True,
            on_done=lambda result: self._edit_ok(gen, action, result),
            on_error=lambda exc: self._edit_error(action, exc),
        )

    def _edit_ok(self, gen: int, action: str, result: Any) -> None:
        if gen == self.generation:
            self.edit_finished.emit(action, result)
            self.refresh_history()

    def _edit_error(self, action: str, exc: BaseException | str) -> None:
        line = self.reporter.error(exc, context=f"{action} failed")
        self.edit_failed.emit(action, line)

    # ---------------------------------------------------------------- reads
    def read(
        self,
        fn: Callable[[Dataset], Any],
        on_done: Callable[[Any], None],
        *,
        name: str = "read",
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Job | None:
        """Run ``fn(dataset)`` on the pool; ``on_done(result)`` on the GUI thread.

        Results for a dataset closed meanwhile are dropped.  Errors go to
        ``on_error`` or are shown.
        """
        dataset = self.dataset
        if dataset is None:
            return None
        gen = self.generation

        def done(result: Any) -> None:
            if gen == self.generation:
                on_done(result)

        def failed(exc: BaseException) -> None:
            if gen != self.generation:
                return
            if on_error is not None:
                on_error(exc)
            else:
                self.reporter.error(exc, context=f"{name} failed")

        return self.runner.submit(lambda _job: fn(dataset), name=name, on_done=done,
                                  on_error=failed)

    def refresh_history(self) -> None:
        """Re-read the mutation log, undo state and counters in the background."""
        if self.dataset is None:
            return
        if self._history_job is not None:
            self._history_dirty = True
            return

        def fetch(ds: Dataset) -> tuple[list[HistoryLine], bool, bool, DatasetStats]:
            lines = [HistoryLine(r.summary(), f"{r.stamp.timestamp}\n{r.stamp.uuid}")
                     for r in ds.history()]
            return lines, ds.can_undo, ds.can_redo, dataset_stats(ds, len(lines))

        self._history_dirty = False
        self._history_job = self.read(fetch, self._history_ready, name="read history",
                                      on_error=self._history_error)

    def _history_ready(self, result: tuple[list[HistoryLine], bool, bool, DatasetStats]) -> None:
        self._history_job = None
        self.history, self.can_undo, self.can_redo, self.stats = result
        self.history_changed.emit(self.history)
        self.undo_state_changed.emit(self.can_undo, self.can_redo)
        self.stats_changed.emit(self.stats)
        if self._history_dirty:
            self.refresh_history()

    def poll_status(self) -> None:
        """Re-read the Kafka sender's state and the outbox backlog in the background."""
        if self.dataset is None or self._status_job is not None:
            return
        mutations = self.stats.mutations
        self._status_job = self.read(lambda ds: dataset_stats(ds, mutations), self._status_ready,
                                     name="read events status", on_error=self._status_error)

    def _status_ready(self, stats: DatasetStats) -> None:
        self._status_job = None
        if stats != self.stats:
            self.stats = stats
            self.stats_changed.emit(stats)

    def _status_error(self, _exc: BaseException) -> None:
        self._status_job = None

    def _history_error(self, exc: BaseException) -> None:
        self._history_job = None
        self.reporter.error(exc, context="reading the mutation log failed")

    # --------------------------------------------------------- model events
    @Slot(object)
    def _on_started(self, record: Mutation) -> None:
        self.mutation_started.emit(record)

    @Slot(object)
    def _on_completed(self, record: Mutation) -> None:
        self.mutation_completed.emit(record)
        self.refresh_history()

    @Slot(int, object)
    def _on_blocks(self, scale: int, coords: list[Any]) -> None:
        self.blocks_changed.emit(scale, coords)

    @Slot(object)
    def _on_labels(self, labels: list[Any]) -> None:
        self.labels_changed.emit(labels)

    @Slot(int)
    def _on_pending(self, n: int) -> None:
        self.pending_changed.emit(n)
        self.edits_pending_changed.emit(self.runner.pending_in(LANE))
