"""The segmend model: pyramid store, label index, mutation engine, journal, events.

Never imports Qt or napari (an import-linter contract enforces it), so headless
installs, batch jobs and CI workers use it directly::

    from app.model import open_dataset, build_pyramid

The names below are loaded on first use (PEP 562): importing a light module
such as :mod:`app.model.errors` does not load the store, HDF5 and the kernels,
so the desktop app's GUI thread can start while a worker opens the dataset.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.model.bulk.build import build_pyramid
    from app.model.dataset import Dataset, SplitResult, open_dataset
    from app.model.errors import (
        FormatError,
        InvalidMutationError,
        NothingToUndoError,
        ReadOnlyError,
        SegmendError,
        WriterLockedError,
    )

__all__ = [
    "Dataset",
    "FormatError",
    "InvalidMutationError",
    "NothingToUndoError",
    "ReadOnlyError",
    "SegmendError",
    "SplitResult",
    "WriterLockedError",
    "build_pyramid",
    "open_dataset",
]

_HOMES = {
    "build_pyramid": "app.model.bulk.build",
    "Dataset": "app.model.dataset",
    "SplitResult": "app.model.dataset",
    "open_dataset": "app.model.dataset",
}
"""The module of each name not in :mod:`app.model.errors`."""


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'app.model' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES.get(name, "app.model.errors")), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
