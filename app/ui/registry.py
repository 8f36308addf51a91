"""Datasets opened by the napari reader, waiting for a proofreading widget.

The napari reader must return layers at once, so it opens the dataset itself
(for editing when it can) and leaves it here; a
:class:`~app.ui.proofreading.ProofreadingWidget` in the same viewer then
:func:`take` s it over (and adopts the reader's layers).  Whatever nobody took
is closed (checkpointed) at interpreter exit.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from app.ui.workers import BACKGROUND_NICE

if TYPE_CHECKING:
    from app.model.dataset import Dataset

_lock = threading.Lock()
_shared: dict[str, Dataset] = {}


def _key(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def open_shared(path: str | Path) -> Dataset:
    """The dataset at ``path``, opened once per process (for editing if possible).

    Raises
    ------
    app.model.errors.FormatError
        If the file is not a readable pyramid.
    """
    from app.model.dataset import open_editable

    key = _key(path)
    with _lock:
        dataset = _shared.get(key)
        if dataset is not None:
            return dataset
        dataset, _refused = open_editable(path, background_nice=BACKGROUND_NICE)
        _shared[key] = dataset
        return dataset


def take(path: str | Path) -> Dataset | None:
    """Hand the dataset at ``path`` over to the caller (who will close it), or None."""
    with _lock:
        return _shared.pop(_key(path), None)


def close_all() -> None:
    """Close every dataset nobody took."""
    with _lock:
        datasets = list(_shared.values())
        _shared.clear()
    for dataset in datasets:
        dataset.close()


atexit.register(close_all)
