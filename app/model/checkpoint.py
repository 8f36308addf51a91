"""Checkpoints: the staged blocks and the counters into the HDF5 file, crash-safely.

Edits are durable in the journal when they return; the HDF5 file is written
only here, through :class:`app.model.storage.safefile.SafeFile`, with the id of the
last mutation it holds (``checkpoint_mutation_id``).  A background thread
checkpoints every ``interval`` seconds, or sooner when many blocks wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.model.engine import MutationEngine
from app.model.journal.file_locks import file_lock
from app.model.journal.journal import Journal
from app.model.priority import lower_thread_priority
from app.model.storage.safefile import SafeFile
from app.model.storage.store import PyramidStore

CHECKPOINT_BLOCKS = 1024
"""Staged blocks that wake the checkpoint before its interval is up."""
CHECKPOINT_UNENCODED_BYTES = 512 << 20
"""Or staged blocks held in memory, not yet encoded, that do."""
MAX_RETRY_DELAY = 300.0
"""Seconds between retries of a failing background checkpoint, at most."""


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
    commit_lock : Path
        The lock held exclusively while committing (readers open the file
        under it, shared).
    interval : float
        Seconds between background checkpoints.
    background_nice : int
        How far below normal the background thread's OS priority is.

    Attributes
    ----------
    interval : float
        As given; the background thread reads it before each wait.
    error : str or None
        Why the last background checkpoint failed (None if it did not).
    """

    def __init__(
        self,
        store: PyramidStore,
        journal: Journal,
        engine: MutationEngine,
        safefile: SafeFile,
        commit_lock: Path,
        *,
        interval: float,
        background_nice: int = 0,
    ) -> None:
        self.store = store
        self.journal = journal
        self.engine = engine
        self.safefile = safefile
        self.commit_lock = commit_lock
        self.interval = interval
        self.background_nice = background_nice
        self.error: str | None = None
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
        """
        store = self.store
        with self._lock:
            with self.engine.gate.exclusive():
                items = store.staged_items()
                values = self.engine.counters.file_attrs()
            if not items and all(store.attr(k) == v for k, v in values.items()):
                return 0
            for key, staged in items:
                coord = (key[2], key[3], key[4])
                payload = staged.payload
                if payload is None:
                    block = staged.unencoded()
                    assert block is not None
                    payload = store.encode_block(key[0], key[1], coord, block)
                store.write_payload(key[0], key[1], coord, payload)
            store.set_attrs(**{k: np.uint64(v) for k, v in values.items()})
            store.flush()
            self._journal_sync()
            with file_lock(self.commit_lock, exclusive=True):
                self.safefile.commit()
            store.unstage([(key, staged.gen) for key, staged in items])
            return len(items)

    def _journal_sync(self) -> None:
        """Make the journal durable up to here: the file about to be committed holds
        mutations whose last (non-fsync'ed) journal writes must not be lost."""
        with self.journal.transaction():
            pass

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
        """Checkpoint every :attr:`interval` or when woken.  A failure is kept in
        :attr:`error` and retried later, ever more slowly; edits stay durable in
        the journal meanwhile."""
        lower_thread_priority(self.background_nice)
        delay = self.interval
        while not self._closing.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._closing.is_set():
                return
            try:
                if self.store.staged_count:
                    run()
            except Exception as exc:  # reported to the user, retried
                self.error = f"checkpoint failed: {exc}"
                delay = min(delay * 2, MAX_RETRY_DELAY)
            else:
                self.error = None
                delay = self.interval
