"""The Python API: open a dataset, read it at any scale, edit it durably.

>>> ds = open_dataset("demo.h5", "r+")          # doctest: +SKIP
>>> mid = ds.merge(7, [8, 9])                   # doctest: +SKIP
>>> label, mid = ds.split(7, rles=rle_bytes)    # doctest: +SKIP
>>> ds.labels(2)[10:20, :, 5]                   # doctest: +SKIP
>>> ds.close()                                  # doctest: +SKIP

Writers hold ``FILE.h5.segmend/writer.lock``.  Edits are durable in the journal
when they return; the HDF5 file is written only by checkpoints, through
:class:`app.model.storage.safefile.SafeFile`, with the id of the last mutation it holds
(``checkpoint_mutation_id``).  Opening replays the mutations recorded after it,
which repairs whatever a crash interrupted.

An OME-Zarr store (``x.zarr``) opens read-only only, as a foreign pyramid:
no journal, lock or folder beside it is read or made.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from app.model.annotations.access import Annotations, BodyAnnotations
from app.model.annotations.body_values import BodyValues
from app.model.annotations.check import annotation_problems
from app.model.annotations.sets import AnnotationSets
from app.model.bulk.cluster import Cluster, dask_client, default_workers
from app.model.bulk.dask_check import recount_on_cluster, verify_on_cluster
from app.model.bulk.index_check import check_label_index
from app.model.bulk.partials import remove_stale_partials
from app.model.bulk.verify import VerifyReport, verify_levels
from app.model.checkpoint import Checkpointer
from app.model.checkpoint_problem import read_checkpoint_problem
from app.model.dataset_reads import DatasetReads
from app.model.engine import EngineSignals, MutationEngine
from app.model.error_text import one_line
from app.model.errors import (
    CheckpointError,
    FileBusyError,
    FormatError,
    ReadOnlyError,
    SegmendError,
    WriterLockedError,
)
from app.model.events.sender import OutboxSender, SenderStatus
from app.model.events.settings import KafkaSettings
from app.model.file_lag import FileLag, measure_lag
from app.model.geometry import Coord
from app.model.journal.file_locks import WriterLock, take_writer_lock
from app.model.journal.journal import Journal
from app.model.journal.sidecar import journal_path, rollback_path, sidecar_dir
from app.model.labelmap.mapping_file import load_mapping_state, read_file_mapping
from app.model.labelmap.state import MappingState
from app.model.mutations.base import BlockChange, Mutation
from app.model.mutations.regions import SplitRegion
from app.model.opening import (
    check_editable,
    check_journal_home,
    claim_journal,
    open_editable_store,
    open_read_only_store,
    recover_interrupted_commit,
)
from app.model.priority import lower_thread_priority
from app.model.read_snapshot import ReadSnapshot
from app.model.storage.memory import recycle_block_memory
from app.model.storage.ome_zarr_read import is_zarr_path
from app.model.storage.pyramid_file import check_hdf5
from app.model.storage.safefile import SafeFile
from app.model.storage.store import LABELS, PyramidStore

if TYPE_CHECKING:
    from app.model.seeded_split import Voxel

Progress = Callable[[int, int], None]
log = logging.getLogger("segmend")
CLOSE_PATIENCE = 5.0
"""Seconds closing waits for other programs to let go of the file (see
:meth:`Dataset.close`)."""
SENDER_PATIENCE = 0.02
"""Seconds closing waits for a Kafka sender thread that gave up sending what
waits; one still blocked on a broker that does not answer ends alone (a
daemon: the events it could not send stay in the outbox)."""


@dataclass(frozen=True)
class SplitResult:
    """What a split created."""

    label: int
    mutation_id: int


class Dataset(DatasetReads):
    """An open segmend dataset.  Create with :func:`open_dataset`.

    Attributes
    ----------
    signals : EngineSignals
        psygnal events (mutation started/completed, blocks changed, labels
        changed), emitted from the thread that runs the mutation (see
        :class:`app.model.engine.EngineSignals`); a mutation's events carry its
        typed record (:class:`app.model.mutations.Mutation`; ``to_json()`` is
        the journal's JSON, as :meth:`mutations` lists it).
    """

    def __init__(
        self,
        path: Path,
        mode: str,
        *,
        workers: int | None,
        user: str | None,
        progress: Progress | None,
        checkpoint_interval: float,
        cache_bytes: int,
        kafka: KafkaSettings | None = None,
        background_nice: int = 0,
    ) -> None:
        self.path = path
        self.mode = mode
        self._writer_lock: WriterLock | None = None
        self._snapshot: ReadSnapshot | None = None
        self._replayed_to: int | None = None
        self._replay_pool: ThreadPoolExecutor | None = None
        self._replayer: MutationEngine | None = None
        self.lag: FileLag | None = None
        """Where the file stands against its journal, as found at opening (readers)."""
        self._safefile: SafeFile | None = None
        self._journal: Journal | None = None
        self._engine: MutationEngine | None = None
        self._mapping: MappingState | None = None
        self._batching = False  # (inside batched())
        self._workers = workers or default_workers()
        self._background_nice = background_nice
        self._pool = ThreadPoolExecutor(
            self._workers,
            "segmend-block",
            initializer=lower_thread_priority,
            initargs=(background_nice,),
        )
        self._committer = ThreadPoolExecutor(1, "segmend-commit")
        self._closed = False
        self._checkpointer: Checkpointer | None = None
        self._checkpoint_interval = checkpoint_interval
        self.sender: OutboxSender | None = None
        self.kafka = kafka or KafkaSettings()
        self.events_waiting = 0
        """Events left unsent in the outbox when the dataset closed, Kafka on."""
        self._sender_patience = 5.0
        try:
            if mode == "r+":
                self._open_writer(user, progress, cache_bytes)
            else:
                self._open_reader(cache_bytes)
        except BaseException:
            self._release()
            raise
        self.signals: EngineSignals = self._engine.signals if self._engine else EngineSignals()
        self._annotation_sets: AnnotationSets | None = None
        self._body_values: BodyValues | None = None
        if self._engine is not None:
            self._annotation_sets = AnnotationSets(self._engine, self.version_uuid, user)
            self._body_values = BodyValues(
                self._engine.journal, self._engine.gate, self.version_uuid, user)
            self._engine.committer.after_record = self._after_record
        self.annotations = Annotations(
            lambda: self._journal, self.snapshot, self._annotation_sets, str(self.path))
        """The annotation sets (synapses, bookmarks): see
        :class:`app.model.annotations.access.Annotations`."""
        self.body_annotations = BodyAnnotations(
            lambda: self._journal, self.snapshot, self._body_values, str(self.path))
        """The body annotations (status, name...): see
        :class:`app.model.annotations.access.BodyAnnotations`."""

    # ----------------------------------------------------------------- opening
    def _open_writer(self, user: str | None, progress: Progress | None, cache_bytes: int) -> None:
        check_editable(self.path)
        made = not sidecar_dir(self.path).exists()
        sidecar_dir(self.path).mkdir(exist_ok=True)
        try:
            self._writer_lock = take_writer_lock(self.path)
            check_journal_home(self.path)
        except BaseException:
            if made:  # a refused open leaves no folder beside the file
                shutil.rmtree(sidecar_dir(self.path), ignore_errors=True)
            raise
        remove_stale_partials(self.path)
        recycle_block_memory()
        recover_interrupted_commit(self.path)
        self._safefile = SafeFile(self.path, rollback_path(self.path))
        self.store = open_editable_store(self.path, self._safefile, cache_bytes)
        self._use_mapping(load_mapping_state(self.store.h5))
        data_uuid = str(self.store.attr("data_uuid"))
        self._journal = claim_journal(
            self.path, data_uuid, self.store.attr("journal_id"), self.version_uuid
        )
        self._engine = self._make_engine(self.version_uuid, user)
        self._engine.replay(int(self.store.attr("checkpoint_mutation_id", 0)), complete=True)
        if self._journal.get_meta("index_built") is None:
            self._engine.reindex(progress)
        self._checkpointer = Checkpointer(
            self.store,
            self._journal,
            self._engine,
            self._safefile,
            interval=self._checkpoint_interval,
            background_nice=self._background_nice,
        )
        self._engine.committer.admission = self._admit
        with suppress(CheckpointError):  # (another program reads the file): the thread retries
            self.checkpoint()
        self._checkpointer.start(lambda: self.checkpoint())  # looked up each time: may be wrapped
        self._engine.signals.mutation_completed.connect(self._checkpointer.maybe_wake)
        atexit.register(self._close_at_exit)  # HDF5 must let go of the file object before Python
        sender = OutboxSender(
            journal_path(self.path), self.kafka, repo_uuid=self.repo_uuid, data_uuid=data_uuid
        ).start()
        self._engine.signals.mutation_started.connect(lambda _r: sender.wake())
        self._engine.signals.mutation_completed.connect(lambda _r: sender.wake())
        self.sender = sender

    def _after_record(
        self, cur: sqlite3.Cursor, record: Mutation, changes: list[BlockChange]
    ) -> None:
        """In each mutation's transaction: keep the annotations synced."""
        assert self._annotation_sets is not None and self._body_values is not None
        self._annotation_sets.sync_after(cur, record, changes)
        self._body_values.sync_after(cur, record)

    def _check_protected(self, bodies: Iterable[int], force: bool) -> None:
        """Refuse to edit a body of a protected status, unless ``force``."""
        if not force:
            assert self._body_values is not None
            self._body_values.check_editable(bodies)

    def _admit(self) -> None:
        """Before an edit is journaled (the commit thread): the file names its
        journal, and not too much waits in memory for a failing checkpoint."""
        assert self._checkpointer is not None
        self._checkpointer.stamp_journal()
        self._checkpointer.admit()

    def _make_engine(
        self, uuid: str, user: str | None = None, pool: ThreadPoolExecutor | None = None
    ) -> MutationEngine:
        """An engine over this dataset's store, journal, pool (or ``pool``) and
        commit thread."""
        assert self._journal is not None
        return MutationEngine(
            self.store,
            self._journal,
            pool or self._pool,
            self._committer,
            workers=self._workers,
            uuid=uuid,
            user=user,
            mapping=self._mapping,
        )

    def _open_reader(self, cache_bytes: int) -> None:
        if is_zarr_path(self.path):  # nobody edits it: no journal, lag nor snapshot
            self.store = PyramidStore.open(self.path, "r", cache_bytes=cache_bytes)
            self.lag = FileLag(0, 0, 0, interrupted=False, writer=None)
            return
        check_hdf5(self.path)
        remove_stale_partials(self.path)
        self.lag = self._bring_file_up_to_date()
        self.store, token = open_read_only_store(self.path, cache_bytes)
        self._use_mapping(load_mapping_state(self.store.h5))
        if self.store.native:
            snapshot = ReadSnapshot(self.path, self._catch_up, self._end_read, token)
            self._snapshot = snapshot
            self._replay_pool = ThreadPoolExecutor(
                self._workers, "segmend-replay", initializer=snapshot.enlist
            )
            self.store.read_guard = snapshot.hold
            with snapshot.hold():
                pass

    def _bring_file_up_to_date(self) -> FileLag:
        """Write the journaled edits the file lacks into it, when nobody writes the
        dataset and this process may (a writer session opened and closed: it
        replays them and checkpoints); returns where the file then stands."""
        lag = measure_lag(self.path)
        stale = not lag.current or read_checkpoint_problem(self.path) is not None
        if not stale or lag.writer is not None:
            return lag
        try:
            Dataset(self.path, "r+", workers=self._workers, user=None, progress=None,
                    checkpoint_interval=3600.0, cache_bytes=64 << 20).close()
        except WriterLockedError:
            pass  # a writer came meanwhile: it brings the file up to date itself
        except (OSError, SegmendError) as exc:  # a read-only folder, a full disk...
            return replace(measure_lag(self.path), blocked=one_line(exc))
        return measure_lag(self.path)

    def _catch_up(self, file_changed: bool) -> None:
        """Bring a reader's state to the journal's last mutation (see
        :class:`app.model.read_snapshot.ReadSnapshot`)."""
        if file_changed:
            self.store.reopen()
            self._replayed_to = None
            if self._mapping is not None:
                self._mapping.reset(read_file_mapping(self.store.h5))
                assert self._mapped is not None
                self._mapped.clear()  # (the mapping was re-read: its blocks go)
        journal = self._reading_journal()
        if journal is None:
            return
        journal.begin_read()
        if self._replayed_to is None:
            self._replayed_to = int(self.store.attr("checkpoint_mutation_id", 0))
        assert self._replayer is not None
        replayed = self._replayer.replay(self._replayed_to, complete=False)
        if replayed:
            self._replayed_to = replayed[-1]

    def _reading_journal(self) -> Journal | None:
        """A reader's journal: opened once it exists (a writer may make it after
        this reader opened), opened again when its connection went stale."""
        if self._journal is not None and self._journal.stale:
            self._journal.close()
            self._journal = None
        if self._journal is None and journal_path(self.path).exists():
            self._journal = Journal(journal_path(self.path), readonly=True)
            self._replayer = self._make_engine(self.version_uuid, pool=self._replay_pool)
        return self._journal

    def _end_read(self) -> None:
        if self._journal is not None:
            self._journal.end_read()

    # --------------------------------------------------------------- editing
    @property
    def engine(self) -> MutationEngine:
        """The mutation engine (writable datasets only)."""
        if self._engine is None:
            raise ReadOnlyError(f"{self.path} is open read-only")
        return self._engine

    def merge(self, target: int, labels: Iterable[int], *, force: bool = False) -> int:
        """Every voxel of ``labels`` becomes ``target``; returns the MutationID.
        ``force``: even if a body's status is protected."""
        engine, labels = self.engine, list(labels)
        self._check_protected([target, *labels], force)
        return engine.merge(target, labels)

    def cleave(
        self, body: int, supervoxels: Iterable[int], *, cleaved_label: int | None = None,
        force: bool = False,
    ) -> tuple[int, int]:
        """Supervoxels of ``body`` become a new body (or ``cleaved_label``), in
        labelmap mode; returns (CleavedLabel, MutationID).  ``force``: even if
        the body's status is protected."""
        engine = self.engine
        self._check_protected([body], force)
        return engine.cleave(body, supervoxels, cleaved_label)

    def split(
        self,
        target: int,
        rles: bytes | NDArray[np.integer[Any]] | None = None,
        *,
        mask: NDArray[np.bool_] | None = None,
        offset: tuple[int, int, int] = (0, 0, 0),
        new_label: int | None = None,
        force: bool = False,
    ) -> SplitResult:
        """Voxels of ``target`` in a region become a new label (``force``: even if
        its status is protected).

        Parameters
        ----------
        rles : bytes or ndarray (n, 4), optional
            DVID binary RLEs (with header) or spans ``(x, y, z, length)``.
        mask, offset : optional
            Or a boolean mask (z, y, x) whose first voxel is at s0 ``offset``.
        new_label : int, optional
            Use this unused label instead of allocating one.
        """
        engine = self.engine
        self._check_protected([target], force)
        label, mid = engine.split(target, self._region(rles, mask, offset), new_label)
        return SplitResult(label, mid)

    def split_supervoxel(
        self,
        supervoxel: int,
        rles: bytes | NDArray[np.integer[Any]] | None = None,
        *,
        mask: NDArray[np.bool_] | None = None,
        offset: tuple[int, int, int] = (0, 0, 0),
        split: int | None = None,
        remain: int | None = None,
        force: bool = False,
    ) -> tuple[int, int, int]:
        """Voxels of ``supervoxel`` in a region (as :meth:`split` takes it) become a
        new supervoxel, the others another (or ``split``, ``remain``); both stay
        in its body, and its id is retired.  Labelmap mode only; ``force``: even
        if its body's status is protected.

        Returns
        -------
        (SplitSupervoxel, RemainSupervoxel, MutationID)
        """
        engine = self.engine
        if self.labelmap:
            self._check_protected(self.mapping([supervoxel]).tolist(), force)
        return engine.split_supervoxel(supervoxel, self._region(rles, mask, offset), split, remain)

    def _region(
        self,
        rles: bytes | NDArray[np.integer[Any]] | None,
        mask: NDArray[np.bool_] | None,
        offset: tuple[int, int, int],
    ) -> SplitRegion:
        """A split's region, given as RLEs (binary or spans) or as a mask."""
        if (rles is None) == (mask is None):
            raise SegmendError("give the split region as rles or as a mask, not both or neither")
        if mask is not None:
            return SplitRegion.from_mask(mask, offset, self._pool)
        if isinstance(rles, bytes | bytearray | memoryview):
            return SplitRegion.from_rle_bytes(bytes(rles))
        return SplitRegion(np.asarray(rles))

    def split_by_seeds(
        self,
        body: int,
        seeds: Sequence[Sequence[Voxel]],
        *,
        new_labels: Sequence[int] | None = None,
        force: bool = False,
    ) -> list[SplitResult]:
        """Split ``body`` among seed groups by a seeded watershed (see
        :func:`app.model.seeded_split.seeded_split`): one ordinary split per
        group but the last, first group first; the last group's part keeps
        the id.  In labelmap mode whole supervoxels are given to the groups
        and each group but the last is cleaved off (see
        :func:`app.model.labelmap.seeded_split.cleave_by_seeds`).

        Parameters
        ----------
        seeds : sequence of sequences of (z, y, x)
            At least 2 groups of s0 voxels of ``body``.
        new_labels : sequence of int, optional
            One unused label per group but the last, instead of the next free ones.

        Returns
        -------
        list of SplitResult
            One per group but the last, in group order.

        Raises
        ------
        app.model.errors.InvalidMutationError
            Bad seeds or new labels, a protected body without ``force``: checked
            before the first split, so that nothing changes.
        app.model.errors.ReadOnlyError
            The dataset is open read-only.

        Each part is its own split (its own undo step, first group first): if
        one fails after others were made (a full disk), those stay split.  In
        labelmap mode a failed cleave undoes those made before it.
        """
        from app.model.seeded_split import check_new_labels, seeded_split  # (scikit-image)

        if self._engine is None:  # (before the watershed's work)
            raise ReadOnlyError(f"{self.path} is open read-only")
        self._check_protected([int(body)], force)
        labels = check_new_labels(self, int(body), len(seeds), new_labels)
        if self.labelmap:
            from app.model.labelmap.seeded_split import cleave_by_seeds

            return cleave_by_seeds(self, int(body), seeds, labels)
        parts = seeded_split(self, body, seeds)
        return [
            self.split(body, mask=parts.mask(k), offset=parts.origin, new_label=label, force=True)
            for k, label in enumerate(labels, start=1)
        ]

    def split_coarse(
        self, target: int, blocks: Sequence[Sequence[int]], new_label: int | None = None,
        *, force: bool = False,
    ) -> SplitResult:
        """Every voxel of ``target`` in the given s0 blocks (z, y, x) becomes a new
        label (``force``: even if its status is protected)."""
        engine = self.engine
        self._check_protected([target], force)
        label, mid = engine.split_coarse(target, blocks, new_label)
        return SplitResult(label, mid)

    def next_label(self, n: int = 1, start: int | None = None) -> tuple[int, int]:
        """Reserve ``n`` consecutive unused labels (from ``start``, at or past the
        next free label, if given); returns (start, end)."""
        return self.engine.next_label(n, start)

    def set_max_label(self, value: int) -> int | None:
        """Raise the max label; returns the MutationID (None if the max label
        already was ``value``: nothing recorded, no event)."""
        return self.engine.set_max_label(value)

    def undo(self) -> int:
        """Undo the last mutation (as a new mutation); returns its MutationID."""
        return self.engine.undo()

    def redo(self) -> int:
        """Redo the last undone mutation (as a new mutation); returns its MutationID."""
        return self.engine.redo()

    def set_visible(self, scale: int, coords: Iterable[Coord]) -> None:
        """Tell the engine which blocks of ``scale`` a viewer shows: edits compute
        (and show) them first.  No-op on a read-only dataset."""
        if self._engine is not None:
            self._engine.set_visible(scale, coords)

    def reindex(self, progress: Progress | None = None, cluster: Cluster | None = None) -> int:
        """Rebuild the label index from s0; returns the number of labels.

        With a ``cluster`` the s0 blocks are counted on its worker processes,
        which read the file once a checkpoint has written every edit into it
        (``progress`` then counts tasks).

        Raises
        ------
        app.model.errors.SegmendError
            With a cluster, if an edit arrived between that checkpoint and the
            reindex (nothing is changed: run it again).
        """
        if cluster is None:
            return self.engine.reindex(progress)
        self.checkpoint()

        def recounts() -> list[tuple[Coord, dict[int, int]]]:  # (no edit runs meanwhile)
            behind = 0 if self._checkpointer is None else self._checkpointer.behind
            if behind:
                raise SegmendError(
                    f"{self.path}: {behind} edits arrived while the reindex began; run it again"
                )
            return recount_on_cluster(client, self.path, progress=progress)

        with dask_client(cluster) as client:
            return self.engine.reindex(recounts=recounts)

    # ----------------------------------------------------------- durability
    @contextmanager
    def batched(self) -> Iterator[None]:
        """A group commit: the edits inside are journaled without waiting for
        the disk each, then all made durable at once (one fsync) when the block
        ends, by an error too; this dataset's Kafka sender gets none of their
        events before (if the sync fails, it holds them until the dataset is
        reopened).  An edit inside is durable only after the block: report it
        then (``segmend apply`` prints its results per group).

        Raises
        ------
        app.model.errors.ReadOnlyError
            The dataset is open read-only.
        app.model.errors.SegmendError
            Inside another ``batched`` block.
        app.model.errors.JournalWriteError
            At the end, if the journal cannot be synced: the group's edits may
            not be durable.
        """
        if self._engine is None:
            raise ReadOnlyError(f"{self.path} is open read-only")
        if self._batching:
            raise SegmendError("batched() blocks do not nest")
        journal, sender = self._journal, self.sender
        assert journal is not None
        self._batching = True
        if sender is not None:
            sender.hold(journal.last_event_seq())
        try:
            with journal.deferred():
                yield
        finally:
            self._batching = False
            if sender is not None and journal.synced:
                sender.release()

    def checkpoint(self) -> int:
        """Write the staged blocks into the HDF5 file now, crash-safely (see
        :meth:`app.model.checkpoint.Checkpointer.checkpoint`); returns how many.

        Raises
        ------
        app.model.errors.CheckpointError
            The file cannot be written (disk full, I/O error, another program
            holds it): it stays as last checkpointed, the edits it lacks are
            safe in the journal, and the next checkpoint writes them.
        """
        return 0 if self._checkpointer is None else self._checkpointer.checkpoint()

    @property
    def checkpoint_error(self) -> str | None:
        """Why checkpoints fail (None: the last one succeeded); the background
        thread retries them meanwhile (see :mod:`app.model.checkpoint`)."""
        return None if self._checkpointer is None else self._checkpointer.error

    @property
    def checkpoint_interval(self) -> float:
        """Seconds between background checkpoints (sooner when many blocks wait)."""
        return self._checkpoint_interval

    @checkpoint_interval.setter
    def checkpoint_interval(self, seconds: float) -> None:
        self._checkpoint_interval = seconds
        if self._checkpointer is not None:
            self._checkpointer.interval = seconds

    def wait(self, events_timeout: float = 0.0) -> bool:
        """Block until background work is done: staged blocks are in the HDF5 file and,
        with Kafka on, the outbox is sent (for at most ``events_timeout`` seconds).

        Returns
        -------
        bool
            False if events still wait (broker down or slow); they stay in the
            outbox and go out later.
        """
        self.checkpoint()
        if self.sender is None or not self.kafka.enabled:
            return True
        return self.sender.flush(events_timeout)

    def events_status(self) -> SenderStatus | None:
        """The Kafka sender's state and the outbox backlog (None when read-only)."""
        return None if self.sender is None else self.sender.status()

    # -------------------------------------------------------------- checking
    def verify(self, progress: Progress | None = None, cluster: Cluster | None = None
               ) -> VerifyReport:
        """Every level == recompute from the level below; label index == recount;
        every annotation element on the body at its position, synapse counts ==
        recount.

        With a ``cluster`` its worker processes read the file itself (``progress``
        then counts tasks): it must hold every journaled edit.

        Raises
        ------
        app.model.errors.SegmendError
            With a cluster, if the file lacks journaled edits (a writer has not
            checkpointed them yet, or nobody can write them into it).
        """
        if cluster is not None:
            if self.lag is not None and not self.lag.current:
                raise SegmendError(
                    f"{self.lag.describe(self.path)}; a verify on a cluster reads the file "
                    "itself: run it without --workers/--scheduler"
                )
            self.checkpoint()
            journal = self._journal
            indexed = journal is not None and journal.get_meta("index_built") is not None
            rows = list(journal.label_index_rows()) if journal is not None and indexed else None
            with dask_client(cluster) as client:
                report = verify_on_cluster(client, self.path, index_rows=rows, progress=progress)
        with self.snapshot():
            if cluster is None:
                report = verify_levels(self.store, progress=progress)
                if self._journal is not None and self._journal.get_meta("index_built"):
                    report.problems.extend(
                        check_label_index(self.store, self._journal, self._pool))
                if self._mapping is not None:
                    report.problems.extend(self._mapping_problems(self._mapping))
            if self._journal is not None:
                with self._journal.reading() as conn:
                    report.problems.extend(annotation_problems(
                        conn, self.store.block_size,
                        lambda c: self.store.read_block(LABELS, 0, c),
                        None if self._mapping is None else self._mapping.body_of,
                        str(self.path)))
        return report

    def _mapping_problems(self, mapping: MappingState) -> list[str]:
        """The live mapping's own consistency, and, when the file holds every
        journaled edit, the file's ``/mapping`` against it."""
        found = mapping.problems()
        assert self.store.h5 is not None
        holds = int(self.store.attr("checkpoint_mutation_id", 0))
        if not self.mutations(holds):
            try:
                stored = read_file_mapping(self.store.h5).pairs
            except FormatError as exc:
                return [*found, str(exc)]
            if not np.array_equal(stored, mapping.view().pairs()):
                found.append(f"{self.path}: /mapping differs from the journaled mapping")
        return found

    # --------------------------------------------------------------- closing
    def close(self, events_timeout: float = 2.0) -> None:
        """Checkpoint, let the Kafka sender send what waits (up to ``events_timeout``
        seconds from now: it sends during the checkpoint), close the files,
        release the lock.

        The sender stops trying at its first failed attempt (a broker down or
        not answering): the events wait in the outbox, safe, for the next
        session or ``segmend events flush``; :attr:`events_waiting` then says
        how many.  Closing twice is harmless; a writer left open is closed at
        interpreter exit.  The last checkpoint waits up to
        :data:`CLOSE_PATIENCE` seconds for another program (a plain HDF5
        reader) to close the file.

        Raises
        ------
        app.model.errors.CheckpointError
            The last checkpoint could not write the file (everything is closed
            and released all the same): the message says why and how many
            edits wait, safe in the journal, for the next session to write them.
        """
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._close_at_exit)
        failure: CheckpointError | None = None
        events_deadline = time.monotonic() + events_timeout
        try:
            if self._checkpointer is not None:  # (the sender sends meanwhile)
                self._checkpointer.stop()
                try:
                    self._last_checkpoint()
                except CheckpointError as exc:
                    if self._checkpointer.behind:  # else the file holds every edit already
                        failure = exc
                self._checkpointer.close()
            sender = self.sender if self.kafka.enabled else None
            wait = max(0.0, events_deadline - time.monotonic())
            if sender is not None and not sender.flush(wait, give_up_on_failure=True):
                self.events_waiting = self.outbox_pending()
                self._sender_patience = SENDER_PATIENCE  # (busy with a broker: not waited for)
        finally:
            self._release()
        if failure is not None:
            raise failure

    def _last_checkpoint(self) -> None:
        """Checkpoint, trying again for :data:`CLOSE_PATIENCE` seconds while another
        program has the file open (a plain HDF5 reader soon closes it)."""
        deadline = time.monotonic() + CLOSE_PATIENCE
        while True:
            try:
                self.checkpoint()
                return
            except CheckpointError as exc:
                if not isinstance(exc.__cause__, FileBusyError) or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def _close_at_exit(self) -> None:
        """Close a writer left open at interpreter exit; a failed last checkpoint
        is logged (its edits are safe in the journal)."""
        try:
            self.close()
        except SegmendError as exc:
            log.error("%s", one_line(exc))

    def _release(self) -> None:
        """Let go of everything, in order, each step even if one before failed:
        threads first, then the files, the writer lock last."""
        with ExitStack() as stack:
            if self._writer_lock is not None:
                stack.callback(self._writer_lock.release)
            if self._journal is not None:
                stack.callback(self._journal.close)
            if self._safefile is not None:
                stack.callback(self._safefile.close)
            store = getattr(self, "store", None)
            if store is not None:
                stack.callback(store.close)
            if self._mapped is not None:
                stack.callback(self._mapped.clear)
            stack.callback(self._committer.shutdown, wait=True)
            stack.callback(self._pool.shutdown, wait=True)
            if self._replay_pool is not None:
                stack.callback(self._replay_pool.shutdown, wait=True)
            if self._snapshot is not None:  # (it ends a read transaction of the journal)
                stack.callback(self._snapshot.close)
            if self._checkpointer is not None:
                stack.callback(self._checkpointer.stop)
            if self.sender is not None:
                stack.callback(self.sender.stop, timeout=self._sender_patience)
                self.sender = None

    def __enter__(self) -> Dataset:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_dataset(
    path: str | Path,
    mode: str = "r",
    *,
    workers: int | None = None,
    user: str | None = None,
    progress: Progress | None = None,
    checkpoint_interval: float = 5.0,
    cache_bytes: int = 512 << 20,
    kafka: KafkaSettings | None = None,
    background_nice: int = 0,
) -> Dataset:
    """Open a segmend dataset read-only (``"r"``) or for editing (``"r+"``).

    Opening for editing takes the writer lock (one writer per dataset),
    repairs what a crash interrupted, and builds the label index on first use
    (``progress(done, total)`` reports it).  ``background_nice`` lowers the
    OS priority of the block pool and checkpoint threads (see
    :mod:`app.model.priority`): an interactive app passes it so that its GUI
    thread runs first.

    ``path`` may be an OME-Zarr store (``x.zarr``): it opens read-only only.
    ``cache_bytes`` bounds the decoded blocks kept in memory; a dataset open
    for editing also keeps the palettes of the s0 blocks its checkpoints
    wrote, in up to half as much again; a labelmap dataset its blocks of
    bodies as read (mapped), in up to as much again.

    Raises
    ------
    app.model.errors.FormatError
        Missing, foreign, corrupt file; an OME-Zarr store opened for editing.
    app.model.errors.WriterLockedError
        Another process is writing the dataset.
    """
    if mode not in ("r", "r+"):
        raise ValueError(f"mode must be 'r' or 'r+', got {mode!r}")
    return Dataset(
        Path(path),
        mode,
        workers=workers,
        user=user,
        progress=progress,
        checkpoint_interval=checkpoint_interval,
        cache_bytes=cache_bytes,
        kafka=kafka,
        background_nice=background_nice,
    )


def open_editable(
    path: str | Path,
    *,
    workers: int | None = None,
    user: str | None = None,
    progress: Progress | None = None,
    kafka: KafkaSettings | None = None,
    background_nice: int = 0,
) -> tuple[Dataset, SegmendError | None]:
    """Open a dataset for editing if it can be, else read-only (what a viewer wants).

    A dataset another process is writing, or a pyramid written by another tool
    (an OME-Zarr store too), opens read-only.  The arguments are
    :func:`open_dataset`'s (``user``, ``progress`` and ``kafka`` only matter for
    editing).

    Returns
    -------
    dataset : Dataset
    refused : SegmendError or None
        Why the dataset opened read-only (None: it is open for editing).

    Raises
    ------
    app.model.errors.FormatError
        Missing, foreign non-pyramid or corrupt file, or a segmend file that
        opens only read-only (damaged).
    """

    def read_only() -> Dataset:
        return open_dataset(path, "r", workers=workers, background_nice=background_nice)

    try:
        editable = open_dataset(path, "r+", workers=workers, user=user, progress=progress,
                                kafka=kafka, background_nice=background_nice)
    except WriterLockedError as locked:
        return read_only(), locked
    except FormatError as first:
        try:
            dataset = read_only()
        except FormatError:
            raise first from None
        if dataset.native:  # a segmend file that cannot be edited: damaged
            dataset.close()
            raise
        return dataset, first
    return editable, None
