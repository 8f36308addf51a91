"""Opening a dataset's files: the editable store, the journal's owner, an
interrupted commit's rollback, a reader's store (the steps
:class:`app.model.dataset.Dataset` runs)."""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from app.model.errors import FormatError
from app.model.journal.file_locks import commit_guard, lock_shared, read_lock_fd
from app.model.journal.journal import Journal
from app.model.journal.sidecar import checkpoint_lock_path, journal_path, rollback_path
from app.model.storage.safefile import SafeFile, recover
from app.model.storage.store import LABELS, PyramidStore


def open_editable_store(path: Path, safefile: SafeFile, cache_bytes: int) -> PyramidStore:
    """The pyramid of ``path``, read and written through ``safefile``.

    Raises
    ------
    app.model.errors.FormatError
        If HDF5 cannot open it, or it is not a segmend pyramid whose label
        levels are chunked one block per chunk.
    """
    try:
        h5 = h5py.File(safefile, "r+")
    except OSError as exc:
        raise FormatError(f"{path}: cannot open HDF5 file ({exc})") from exc
    try:
        store = PyramidStore(h5, cache_bytes=cache_bytes)
    except BaseException:
        h5.close()
        raise
    try:
        if not store.native:
            raise FormatError(
                f"{path}: not a segmend pyramid; import it with 'segmend build' to edit it"
            )
        if any(lv.codec is None for lv in store.levels(LABELS)):
            raise FormatError(f"{path}: label levels are not chunked one block per chunk")
    except FormatError:
        store.close()
        raise
    return store


def claim_journal(path: Path, data_uuid: str) -> Journal:
    """The journal of the dataset at ``path``, which records the dataset it belongs
    to (``data_uuid``) on first use.

    Raises
    ------
    app.model.errors.FormatError
        If the journal belongs to another dataset.
    """
    journal = Journal(journal_path(path))
    owner = journal.get_meta("data_uuid")
    if owner is None:
        with journal.transaction() as cur:
            Journal.set_meta(cur, "data_uuid", data_uuid)
    elif owner != data_uuid:
        journal.close()
        raise FormatError(
            f"{journal_path(path)} belongs to dataset {owner}, not to {data_uuid} "
            f"({path}); move it away to start a new journal"
        )
    return journal


def recover_interrupted_commit(path: Path) -> None:
    """Roll back a checkpoint a writer, now gone, left half committed (the caller
    holds the writer lock); readers wait meanwhile."""
    if rollback_path(path).exists():
        with commit_guard(path, hdf5_lock=False):
            recover(path, rollback_path(path))


def open_read_only_store(path: Path, cache_bytes: int) -> PyramidStore:
    """The pyramid of ``path`` read-only, opened while no checkpoint commits."""
    fd = read_lock_fd(checkpoint_lock_path(path))
    try:
        lock_shared(fd)
        return PyramidStore.open(path, "r", cache_bytes=cache_bytes)
    finally:
        if fd is not None:
            os.close(fd)
