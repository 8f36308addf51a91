"""The segmend model: pyramid store, label index, mutation engine, journal, events.

Never imports Qt or napari (an import-linter contract enforces it), so headless
installs, batch jobs and CI workers use it directly::

    from app.model import open_dataset, build_pyramid
"""

from app.model.build import build_pyramid
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
