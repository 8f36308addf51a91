"""Opening a dataset's files: the editable store, the journal's owner, an
interrupted commit's rollback, a reader's store (the steps
:class:`app.model.dataset.Dataset` runs)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import h5py

from app.model.errors import FormatError
from app.model.journal.file_locks import commit_guard, no_commit_meanwhile
from app.model.journal.journal import Journal
from app.model.journal.sidecar import journal_path, rollback_path
from app.model.storage.ome_zarr_read import is_zarr_path, refuse_editing
from app.model.storage.pyramid_file import open_h5
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
        _refuse_unless_editable(path, store)
    except FormatError:
        store.close()
        raise
    return store


def check_editable(path: Path) -> None:
    """Refuse, before anything is made beside it (a sidecar folder, a lock), a
    file segmend cannot edit: an OME-Zarr store, a file that is not a segmend
    pyramid, or one whose label levels are not stored block by block.  Read
    while no checkpoint commits, as of the last completed one (a checkpoint
    a kill cut short is rolled back by the open that follows).

    Raises
    ------
    app.model.errors.FormatError
        Naming the file and why.
    """
    if is_zarr_path(path):
        refuse_editing(path)
    with no_commit_meanwhile(path):
        store = PyramidStore.open(path, "r", own_handle=True, rollback=rollback_path(path))
        try:
            _refuse_unless_editable(path, store)
        finally:
            store.close()


def _refuse_unless_editable(path: Path, store: PyramidStore) -> None:
    if not store.native:
        raise FormatError(
            f"{path}: not a segmend pyramid; import it with 'segmend build' to edit it"
        )
    if any(lv.codec is None for lv in store.levels(LABELS)):
        raise FormatError(f"{path}: label levels are not chunked one block per chunk")


def check_journal_home(path: Path) -> None:
    """Refuse to edit a file through a name without its journal when it was
    edited through another name (a hard link): that name's journal holds the
    edits the file may lack, and a new journal here would take the same
    MutationIDs (the file records its journal: ``journal_id``).

    Raises
    ------
    app.model.errors.FormatError
        Naming the file.
    """
    if journal_path(path).exists() or os.stat(path).st_nlink < 2:
        return
    with open_h5(path, "r") as h5:
        stamped = h5.attrs.get("journal_id")
    if stamped is not None:
        raise FormatError(
            f"{path} was edited through another name of the same file (a hard link), whose "
            "journal holds its edits; open it by that name"
        )


def claim_journal(path: Path, data_uuid: str, stamped: str | None, version_uuid: str) -> Journal:
    """The journal of the dataset at ``path``, which records the dataset it belongs
    to (``data_uuid``) and its own id (``journal_id``, which checkpoints write
    into the file) on first use.

    Records journaled before segmend stamped the version's UUID (they carry
    ``data_uuid``) are stamped with ``version_uuid`` once, so that their
    replayed events and ``segmend log --format dvid`` name the version as DVID does.

    Parameters
    ----------
    stamped : str or None
        The ``journal_id`` the file holds (None: never checkpointed by a journal).
    version_uuid : str
        The version (repo node) UUID records carry.

    Raises
    ------
    app.model.errors.FormatError
        If the journal belongs to another dataset, or holds edits while the
        file was last written from another journal (a copy put over an
        edited pyramid): its edits would not apply.
    """
    journal = Journal(journal_path(path))
    owner, journal_id = journal.get_meta("data_uuid"), journal.get_meta("journal_id")
    if owner is None or journal_id is None:
        with journal.transaction() as cur:
            Journal.set_meta(cur, "data_uuid", owner or data_uuid)
            Journal.set_meta(cur, "journal_id", journal_id or uuid.uuid4().hex)
        owner, journal_id = journal.get_meta("data_uuid"), journal.get_meta("journal_id")
    if owner != data_uuid:
        problem = f"belongs to dataset {owner}, not to {data_uuid}"
    elif stamped not in (None, journal_id) and journal.mutation_count():
        problem = "holds edits, but the file was last written from another journal"
    else:
        if journal.get_meta("records_uuid") != "version":
            with journal.transaction() as cur:
                Journal.restamp_uuid(cur, data_uuid, version_uuid)
                Journal.set_meta(cur, "records_uuid", "version")
        return journal
    journal.close()
    raise FormatError(
        f"{journal_path(path)} {problem} ({path}); move it away to start a new journal"
    )


def recover_interrupted_commit(path: Path) -> None:
    """Roll back a checkpoint a writer, now gone, left half committed (the caller
    holds the writer lock); readers wait meanwhile."""
    if rollback_path(path).exists():
        with commit_guard(path, hdf5_lock=False):
            recover(path, rollback_path(path))


def open_read_only_store(path: Path, cache_bytes: int) -> tuple[PyramidStore, bytes]:
    """The pyramid of ``path`` read-only, through a handle of its own (reopened
    after a writer's commits), opened while no checkpoint commits; and the
    token of the commit it holds (:func:`~app.model.journal.file_locks.file_token`).
    A checkpoint cut short that nobody could roll back (a read-only folder) is
    read as rolled back."""
    with no_commit_meanwhile(path) as token:
        store = PyramidStore.open(
            path, "r", cache_bytes=cache_bytes, own_handle=True, rollback=rollback_path(path)
        )
        return store, token
