"""Replacing a build's output safely: never under a writer, never an edited
pyramid unless asked."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from app.model.errors import SegmendError, WriterLockedError
from app.model.journal.file_locks import writer_holding
from app.model.journal.sidecar import journal_path, sidecar_dir
from app.model.storage.store import PyramidStore

__all__ = [
    "EditedOutputError",
    "check_output",
    "close_quietly",
    "remove_sidecar",
]


class EditedOutputError(SegmendError):
    """A build would replace a pyramid that has a journal of edits."""


def check_output(out: Path, *, discard_journal: bool = False) -> None:
    """Refuse to replace ``out`` while a process writes it, or when it has a
    journal (unless ``discard_journal``).

    Raises
    ------
    app.model.errors.WriterLockedError
        A process writes ``out`` (through any name of the file).
    EditedOutputError
        ``out`` has a journal and ``discard_journal`` is false.
    """
    writer = writer_holding(out)
    if writer is not None:
        raise WriterLockedError(f"{out} is open for writing by {writer}; close it to replace it")
    journal = journal_path(out)
    if journal.exists() and not discard_journal:
        raise EditedOutputError(
            f"{out} is an edited pyramid (journal {journal}); replacing it would discard "
            "its edits: use --force to replace it and delete the journal"
        )


def remove_sidecar(out: Path) -> None:
    """Remove the sidecar folder of the pyramid being replaced (it belongs to the old one)."""
    sidecar = sidecar_dir(out)
    if sidecar.exists():
        shutil.rmtree(sidecar)


def close_quietly(store: PyramidStore) -> None:
    """Close a store whose file is being discarded (a full disk fails its flush)."""
    with contextlib.suppress(OSError, RuntimeError):
        store.close()
