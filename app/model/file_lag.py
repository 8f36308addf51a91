"""How far the HDF5 file is behind its journal, and who writes it.

Edits are durable in the journal; the file holds them once a checkpoint writes
them.  After a kill, a full disk or a failed checkpoint, the journal holds
edits the file lacks: plain HDF5 readers see the file only.  Opening a dataset
read-only first brings the file up to date when nobody writes it
(:class:`app.model.dataset.Dataset`); :func:`measure_lag` says where it stands.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from app.model.errors import FormatError
from app.model.journal.file_locks import no_commit_meanwhile, writer_holding
from app.model.journal.journal_db import connect, table_exists
from app.model.journal.sidecar import journal_path, rollback_path
from app.model.storage.pyramid_file import open_h5_own_handle

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

    Raises
    ------
    app.model.errors.FormatError
        If the file is not HDF5, or its journal is not an SQLite database.
    """
    with no_commit_meanwhile(path):
        h5, raw = open_h5_own_handle(path, rollback_path(path))
        try:
            checkpointed = int(h5.attrs.get("checkpoint_mutation_id", 0))
        finally:
            h5.close()
            raw.close()
    journaled, behind = checkpointed, 0
    if journal_path(path).exists():
        try:
            behind, journaled = _journaled_after(journal_path(path), checkpointed)
        except sqlite3.DatabaseError as exc:
            raise FormatError(f"{journal_path(path)}: damaged journal ({exc})") from exc
    interrupted = rollback_path(path).exists()
    writer = writer_holding(path) if behind or interrupted else None
    return FileLag(checkpointed, journaled, behind, interrupted, writer)


def _journaled_after(journal: Path, checkpointed: int) -> tuple[int, int]:
    """How many mutations the journal holds after ``checkpointed``, and its last one."""
    conn = connect(journal, readonly=True)
    try:
        if not table_exists(conn, "mutations"):
            return 0, checkpointed
        count, last = conn.execute(
            "SELECT COUNT(*), MAX(id) FROM mutations WHERE id > ?", (checkpointed,)
        ).fetchone()
        return int(count), max(checkpointed, int(last or 0))
    finally:
        conn.close()
