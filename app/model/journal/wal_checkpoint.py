"""Copying a large transaction from the journal's write-ahead log into its
database file on a thread of its own, after the commit instead of inside it.

SQLite *checkpoints* a WAL-mode database (copies the pages its log holds into
the database file, and fsyncs it) inside the commit that leaves more than
1,000 pages in the log.  After an ordinary edit that is a few pages; after a
million annotation elements imported it is 300 MB, and the copy takes longer
than writing and fsyncing the log did.  Durability does not need it (the
log holds the transaction, fsync'ed), so a large transaction
(:meth:`~app.model.journal.journal.Journal.transaction` with ``large``)
commits with the automatic checkpoint off and hands the copy to
:class:`BackgroundCheckpoint`.  Meanwhile the writer's next commits go on:
their own automatic checkpoints find the checkpoint lock held and skip
(SQLite's passive checkpoints never wait), and readers read the log as
always.  A checkpoint that fails (a full disk) leaves the log as it is, as
SQLite's automatic one does; the next checkpoint copies it, at the latest the
one SQLite makes when the journal closes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from app.model.journal.journal_db import connect

log = logging.getLogger("segmend")


class BackgroundCheckpoint:
    """One passive checkpoint at a time of the journal at ``path``, each on a
    thread and a connection of its own.

    Parameters
    ----------
    path : Path
        The journal's SQLite file (in WAL mode).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Checkpoint the log on a new thread, once the one before has ended."""
        self.join()
        self._thread = threading.Thread(target=self._checkpoint, daemon=True,
                                        name="segmend-wal-checkpoint")
        self._thread.start()

    def join(self) -> None:
        """Wait for the checkpoint under way, if one is."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _checkpoint(self) -> None:
        try:
            conn = connect(self.path, readonly=False)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.warning("journal %s: WAL checkpoint left for later: %s", self.path.name, exc)
