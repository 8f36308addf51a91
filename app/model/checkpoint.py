"""Checkpoints: the staged blocks and the counters into the HDF5 file, crash-safely.

Edits are durable in the journal when they return; the HDF5 file is written
only here, through :class:`app.model.storage.safefile.SafeFile`, with the id of the
last mutation it holds (``checkpoint_mutation_id``) and, in labelmap mode, the
mapping as of that mutation (``/mapping``: only its changed chunks).  A background thread
checkpoints every ``interval`` seconds, or sooner when many blocks wait.

A checkpoint the disk refuses (full, I/O error, the file held by another
program) loses nothing: the file stays as last committed, the edits it lacks
stay in the journal (and staged in memory), and the thread retries ever more
slowly (at most every :data:`MAX_RETRY_DELAY` seconds).  The failure is kept
in :attr:`Checkpointer.error`, logged (logger ``segmend``) and written to
``checkpoint.error`` in the sidecar folder, for other processes to report
(:mod:`app.model.checkpoint_problem`).  While checkpoints fail, staged blocks
beyond :data:`STAGED_BLOCKS_LIMIT` (or :data:`STAGED_BYTES_LIMIT`) make new
edits refused (:meth:`Checkpointer.admit`) rather than fill the memory.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import h5py
import numpy as np

from app.model.checkpoint_problem import ProblemFile, problem_path
from app.model.engine import MutationEngine
from app.model.error_text import write_failure
from app.model.errors import CheckpointError, FileBusyError, FileWriteError, StagingFullError
from app.model.journal.file_locks import commit_guard
from app.model.journal.journal import Journal
from app.model.labelmap.mapping import Mapping
from app.model.labelmap.mapping_file import write_changed_rows, write_file_mapping
from app.model.labelmap.state import FOLD_AT, MappingView
from app.model.priority import lower_thread_priority
from app.model.storage.safefile import SafeFile
from app.model.storage.store import PyramidStore

CHECKPOINT_BLOCKS = 1024
"""Staged blocks that wake the checkpoint before its interval is up."""
CHECKPOINT_UNENCODED_BYTES = 512 << 20
"""Or staged blocks held in memory, not yet encoded, that do."""
FIRST_RETRY_DELAY = 1.0
"""Seconds before the first retry of a failed background checkpoint (then doubled)."""
MAX_RETRY_DELAY = 60.0
"""Seconds between retries of a failing background checkpoint, at most."""
STAGED_BLOCKS_LIMIT = 8 * CHECKPOINT_BLOCKS
"""Staged blocks past which, while checkpoints fail, new edits are refused."""
STAGED_BYTES_LIMIT = 2 * CHECKPOINT_UNENCODED_BYTES
"""Or bytes held in memory for the file (staged blocks not yet encoded, and
written pages not yet committed) past which they are."""

log = logging.getLogger("segmend")


class Checkpointer:
    """Writes a writable dataset's staged blocks into its HDF5 file.

    Parameters
    ----------
    store : PyramidStore
        The dataset's store, open on ``safefile``.
    journal : Journal
        The dataset's journal, made durable before each commit.
    engine : MutationEngine
        The engine staging the blocks: its gate and counters.
    safefile : SafeFile
        The HDF5 file object, committed atomically.
    interval : float
        Seconds between background checkpoints.
    background_nice : int
        How far below normal the background thread's OS priority is.

    Attributes
    ----------
    interval : float
        As given; the background thread reads it before each wait.
    error : str or None
        Why checkpoints fail (None: the last one succeeded).
    """

    def __init__(
        self,
        store: PyramidStore,
        journal: Journal,
        engine: MutationEngine,
        safefile: SafeFile,
        *,
        interval: float,
        background_nice: int = 0,
    ) -> None:
        self.store = store
        self.journal = journal
        self.engine = engine
        self.safefile = safefile
        self.interval = interval
        self.background_nice = background_nice
        self.error: str | None = None
        self._reason = ""
        self._committed = int(store.attr("checkpoint_mutation_id", 0))
        self._journal_id = journal.get_meta("journal_id") or ""
        self._stamped = False
        mapping = engine.mapping
        self._mapping_written = mapping.version if mapping is not None else 0
        self._problem = ProblemFile(problem_path(safefile.path))
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def checkpoint(self) -> int:
        """Write the staged blocks into the HDF5 file, crash-safely; returns how many.

        Edits wait only while it takes a snapshot of the staged blocks and the
        counters (it needs a state in which every mutation is complete or not
        begun).  They go on while the snapshot is written and committed: edits
        only stage newer blocks in memory, and nothing else writes the file.

        Raises
        ------
        app.model.errors.CheckpointError
            If the file cannot be written: it stays as last committed, the
            failure is recorded (:attr:`error`, the problem file), and the next
            checkpoint writes everything again.
        """
        try:
            written = self._write()
        except Exception as exc:
            raise self._failed(exc) from exc
        self._succeeded()
        return written

    @property
    def behind(self) -> int:
        """Journaled mutations the HDF5 file lacks."""
        return max(0, self.engine.counters.next_mutation_id - 1 - self._committed)

    def admit(self) -> None:
        """Refuse a new edit while checkpoints fail and too much waits in memory
        for the file (give it to the engine's committer as its admission check).

        Raises
        ------
        app.model.errors.StagingFullError
            Naming the file, why it cannot be written, and that the edits made
            are safe in the journal.
        """
        if self.error is None:
            return
        count = self.store.staged_count
        held = self.store.unencoded_nbytes + self.safefile.pending_bytes
        if count <= STAGED_BLOCKS_LIMIT and held <= STAGED_BYTES_LIMIT:
            return
        raise StagingFullError(
            f"cannot write {self.safefile.path}: {self._reason}; edits are safe in the "
            f"journal, and new ones are refused until the file can be written ({count} "
            f"edited blocks, {held >> 20} MiB wait in memory)"
        )

    def stamp_journal(self) -> None:
        """Write the journal's id into the file before the journal's first edit
        (once): a writer through another name of the file (a hard link) then
        knows the file has a journal elsewhere.  Edits go on while another
        program has the file open, or a checkpoint is under way (it waits for
        the edit, and stamps the file).

        Raises
        ------
        app.model.errors.FileWriteError
            If the file cannot be written (the edit is refused).
        """
        if self._stamped or not self._lock.acquire(blocking=False):
            return  # (a checkpoint under way waits for this edit, and stamps the file)
        try:
            if self.store.attr("journal_id") != self._journal_id:
                self.store.set_attrs(journal_id=self._journal_id)
                self.store.flush()
                try:
                    with commit_guard(self.safefile.path):
                        self.safefile.commit()
                except FileBusyError:
                    return
                except Exception as exc:
                    self._failed(exc)
                    raise FileWriteError(
                        f"cannot write {self.safefile.path}: {self._reason}; the edit was not made"
                    ) from exc
            self._stamped = True
        finally:
            self._lock.release()

    def close(self) -> None:
        """The dataset closes: the problem file goes if the file is up to date, and
        stays (for other processes to report) if not."""
        if self.error is None or not self.behind:
            self._problem.remove()

    def _write(self) -> int:
        store = self.store
        with self._lock:
            mapping = self.engine.mapping
            with self.engine.gate.exclusive():
                items = store.staged_items()
                values = self.engine.counters.file_attrs()
                version = mapping.version if mapping is not None else 0
                view = mapping.view() if mapping is not None else None
            remapped = version != self._mapping_written
            if (
                not items
                and not remapped
                and not self.safefile.pending_bytes
                and all(store.attr(k) == v for k, v in values.items())
            ):
                return 0
            for key, staged in items:
                coord = (key[2], key[3], key[4])
                payload = staged.payload
                if payload is None:
                    block = staged.unencoded()
                    assert block is not None
                    payload = store.encode_block(key[0], key[1], coord, block)
                store.write_payload(key[0], key[1], coord, payload)
            fold = None
            if remapped:
                assert view is not None and mapping is not None and store.h5 is not None
                fold = _write_mapping(store.h5, view, folding=mapping.overlay_size >= FOLD_AT)
            store.set_attrs(
                **{k: np.uint64(v) for k, v in values.items()}, journal_id=self._journal_id
            )
            store.flush()
            self.journal.sync()  # (the file about to be committed holds mutations whose
            # last, non-fsync'ed journal writes must not be lost)
            with commit_guard(self.safefile.path):
                self.safefile.commit()
            self._committed = values["checkpoint_mutation_id"]
            self._mapping_written = version
            if fold is not None and mapping is not None:
                fold.build_reverse()  # (here, not in the next edit)
                mapping.fold(fold, version)
            store.unstage([(key, staged.gen) for key, staged in items])
            return len(items)

    def _failed(self, exc: Exception) -> CheckpointError:
        """Record a failed checkpoint; returns the error to raise."""
        self._reason = write_failure(exc, self.safefile.path)
        self.error = f"checkpoint failed: {self._reason}"
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._problem.show(f"{self.error} (process {os.getpid()}, {stamp})")
        behind = self.behind
        edits = f"{behind} edit(s) are" if behind else "all edits are"
        when = "when space returns" if _is_disk_full(exc) else "once it can be written"
        return CheckpointError(
            f"cannot write {self.safefile.path}: {self._reason}; {edits} safe in the journal "
            f"and reach the file {when} (the next segmend command on it writes them)"
        )

    def _succeeded(self) -> None:
        """Forget a recorded failure: the file holds every staged block again."""
        self.error = None
        self._problem.clear()

    # ---------------------------------------------------------- the thread
    def start(self, run: Callable[[], int]) -> None:
        """Start the background thread (``segmend-checkpoint``).

        Parameters
        ----------
        run : callable
            What the thread calls to checkpoint: :meth:`checkpoint`, or a
            caller's method around it (the dataset's, which may be wrapped).
        """
        self._thread = threading.Thread(
            target=self._loop, args=(run,), name="segmend-checkpoint", daemon=True
        )
        self._thread.start()

    def maybe_wake(self, _record: Any) -> None:
        """Wake the thread now if many blocks, or many bytes, wait (connect to
        the engine's ``mutation_completed``)."""
        if (
            self.store.staged_count >= CHECKPOINT_BLOCKS
            or self.store.unencoded_nbytes >= CHECKPOINT_UNENCODED_BYTES
        ):
            self._wake.set()

    def stop(self) -> None:
        """Stop the background thread and wait for it (its current checkpoint ends)."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self, run: Callable[[], int]) -> None:
        """Checkpoint every :attr:`interval` or when woken.  A failure is recorded
        (:attr:`error`, the log, the problem file) and retried after
        :func:`retry_delay`, wakes or not; edits stay durable in the journal
        meanwhile."""
        lower_thread_priority(self.background_nice)
        failures = 0
        while not self._closing.is_set():
            if failures:
                self._closing.wait(retry_delay(failures))
            else:
                self._wake.wait(self.interval)
            self._wake.clear()
            if self._closing.is_set():
                return
            try:
                if self.store.staged_count or failures:
                    run()
            except Exception as exc:  # reported to the user, retried
                if not isinstance(exc, CheckpointError):  # else recorded by checkpoint()
                    self._failed(exc)
                failures += 1
                log.warning(
                    "%s: %s; retrying in %.0f s (edits are safe in the journal)",
                    self.safefile.path,
                    self.error,
                    retry_delay(failures),
                )
            else:
                if failures:
                    log.warning("%s: checkpoint succeeded again", self.safefile.path)
                    self._succeeded()
                failures = 0


def retry_delay(failures: int) -> float:
    """Seconds before retrying a background checkpoint that failed ``failures``
    times in a row: doubling from :data:`FIRST_RETRY_DELAY`, at most
    :data:`MAX_RETRY_DELAY`."""
    return float(min(FIRST_RETRY_DELAY * 2 ** min(failures - 1, 32), MAX_RETRY_DELAY))


def _is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _write_mapping(h5: h5py.File, view: MappingView, *, folding: bool) -> Mapping | None:
    """Write the rows of ``/mapping`` the mapping's changes (``view``'s overlay)
    touch: only those (O(changes)) when the file lists exactly the base's
    supervoxels, else through the whole mapping.  Returns the whole mapping
    when ``folding`` (it becomes the new base), else None."""
    changed = view.changed()
    if not folding and write_changed_rows(h5, view.base.svs, view.body_of, changed):
        return None
    merged = Mapping.from_pairs(view.pairs())
    write_file_mapping(h5, merged, changed=changed)
    return merged if folding else None
