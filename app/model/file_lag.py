"""How far the HDF5 file is behind its journal, and who writes it.

Edits are durable in the journal; the file holds them once a checkpoint writes
them.  After a kill, a full disk or a failed checkpoint, the journal holds
edits the file lacks: plain HDF5 readers see the file only.  Opening a dataset
read-only first brings the file up to date when nobody writes it
(:class:`app.model.dataset.Dataset`); :func:`measure_lag` says where it stands.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app.model.journal.file_locks import lock_shared, read_lock_fd, writer_holding
from app.model.journal.journal_db import connect, table_exists
from app.model.journal.sidecar import checkpoint_lock_path, journal_path, rollback_path
from app.model.storage.pyramid_file import open_h5

__all__ = ["FileLag", "measure_lag"]


@dataclass(frozen=True)
class FileLag:
    """Where the HDF5 file stands against its journal.

    Attributes
    ----------
    checkpointed : int
        The last MutationID the file holds (its ``checkpoint_mutation_id``).
    journaled : int
        The last MutationID the journal holds (``checkpointed`` without one).
    behind : int
        Journaled mutations the file lacks.
    interrupted : bool
        A checkpoint was cut short (its rollback file is there).
    writer : str or None
        Who writes the dataset now (None: nobody).
    blocked : str or None
        Why nobody could bring the file up to date (e.g. a read-only folder).
    """

    checkpointed: int
    journaled: int
    behind: int
    interrupted: bool
    writer: str | None
    blocked: str | None = None

    @property
    def current(self) -> bool:
        """True when the file holds every journaled mutation, whole."""
        return not self.behind and not self.interrupted

    def describe(self, path: Path) -> str:
        """One line saying how far behind the file is, and why (empty if current)."""
        if self.current:
            return ""
        what = f"{self.behind} edits behind its journal" if self.behind else "mid-checkpoint"
        why = (
            f"{self.writer} writes it"
            if self.writer
            else f"it cannot be brought up to date: {self.blocked or 'unknown reason'}"
        )
        return f"{path} is {what} (file at mutation {self.checkpointed}, journal at " \
               f"{self.journaled}); {why}"


def measure_lag(path: Path) -> FileLag:
    """Compare the file's last checkpointed mutation with the journal's last one.

    Reads the file's root attributes while no checkpoint commits.
    """
    lock_fd = read_lock_fd(checkpoint_lock_path(path))
    try:
        lock_shared(lock_fd)
        with open_h5(path, "r") as h5:
            checkpointed = int(h5.attrs.get("checkpoint_mutation_id", 0))
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    journaled, behind = checkpointed, 0
    if journal_path(path).exists():
        conn = connect(journal_path(path), readonly=True)
        try:
            if table_exists(conn, "mutations"):
                count, last = conn.execute(
                    "SELECT COUNT(*), MAX(id) FROM mutations WHERE id > ?", (checkpointed,)
                ).fetchone()
                behind, journaled = int(count), max(checkpointed, int(last or 0))
        finally:
            conn.close()
    interrupted = rollback_path(path).exists()
    writer = writer_holding(path) if behind or interrupted else None
    return FileLag(checkpointed, journaled, behind, interrupted, writer)
