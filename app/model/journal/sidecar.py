"""Where a dataset's journal, lock and rollback file live: a directory beside it.

The directory is named after the file's real path (symlinks resolved), so
that every spelling of the path — relative, absolute, through a symlink —
finds the same journal and the same writer lock.  ``FILE.h5`` has
``FILE.h5.segmend/`` holding

- ``journal.sqlite`` — the write-ahead journal (mutation log, staged blocks,
  label index, counters, event outbox, blob store), SQLite in WAL mode;
- ``writer.lock`` — held (``flock``) by the one process writing the dataset;
- ``checkpoint.lock`` — held exclusively while a checkpoint commits to the HDF5
  file and shared by segmend's readers while they read it; it holds the token
  of the last commit;
- ``commit.intent`` — taken by a commit before ``checkpoint.lock`` and briefly
  by readers before it, so that new readers let a waiting commit in;
- ``hdf5.rollback`` — pre-images of HDF5 bytes overwritten by a checkpoint in
  progress (see :mod:`app.model.storage.safefile`).
"""

from __future__ import annotations

import os
from pathlib import Path


def sidecar_dir(h5_path: str | Path) -> Path:
    """The sidecar directory of the dataset at ``h5_path`` (beside its real path)."""
    return Path(os.path.realpath(h5_path) + ".segmend")


def journal_path(h5_path: str | Path) -> Path:
    """The SQLite journal of the dataset at ``h5_path``."""
    return sidecar_dir(h5_path) / "journal.sqlite"


def lock_path(h5_path: str | Path) -> Path:
    """The writer lock file of the dataset at ``h5_path``."""
    return sidecar_dir(h5_path) / "writer.lock"


def checkpoint_lock_path(h5_path: str | Path) -> Path:
    """The lock a checkpoint commit holds (readers open the HDF5 file under it)."""
    return sidecar_dir(h5_path) / "checkpoint.lock"


def intent_lock_path(h5_path: str | Path) -> Path:
    """The lock a commit takes before ``checkpoint.lock`` (readers let it in)."""
    return sidecar_dir(h5_path) / "commit.intent"


def rollback_path(h5_path: str | Path) -> Path:
    """The HDF5 rollback file of the dataset at ``h5_path``."""
    return sidecar_dir(h5_path) / "hdf5.rollback"
