"""Array-like views of one pyramid level, read lazily block by block."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from app.model.geometry import index_box, normalise_index

if TYPE_CHECKING:
    from app.model.storage.store import PyramidStore


class ArrayView(ABC):
    """The NumPy-style basics of a read-only array-like, from its ``shape`` and
    ``dtype`` and a way to read it whole: ``ndim``, ``size``, ``len`` and
    ``np.asarray``."""

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]:
        """Voxel shape."""

    @property
    @abstractmethod
    def dtype(self) -> np.dtype[Any]:
        """Element type."""

    @abstractmethod
    def _read_all(self) -> NDArray[Any]:
        """Every voxel, as a new array."""

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of voxels."""
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NDArray[Any]:
        arr = self._read_all()
        return arr if dtype is None else arr.astype(dtype)


class LevelArray(ArrayView):
    """A read-only, NumPy-style view of one scale of a pyramid.

    Supports ``shape``, ``dtype``, ``ndim``, ``size``, ``__getitem__`` with
    integers, slices (any step) and Ellipsis, and ``np.asarray`` (which reads
    the whole level: avoid it on large volumes).  Only the blocks a request
    touches are read, through the store's block cache, so staged edits are
    visible at once.  ``remap`` (optional) maps what is read (a labelmap
    dataset's supervoxels to bodies).
    """

    def __init__(
        self,
        store: PyramidStore,
        kind: str,
        scale: int,
        remap: Callable[[NDArray[Any]], NDArray[Any]] | None = None,
    ) -> None:
        self._store = store
        self._remap = remap
        self._level = store.level(kind, scale)
        self.kind = kind
        self.scale = scale

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel shape (z, y, x)."""
        return self._level.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """Element type."""
        return np.dtype(np.uint64) if self._remap is not None else self._level.dtype

    def __repr__(self) -> str:
        return f"LevelArray({self.kind}/s{self.scale}, shape={self.shape}, dtype={self.dtype})"

    def _read_all(self) -> NDArray[Any]:
        return self[...]

    def __getitem__(self, key: Any) -> NDArray[Any]:
        start, stop, picks = index_box(normalise_index(key, self.shape))
        region = self._store.read_region(self.kind, self.scale, tuple(start), tuple(stop))  # type: ignore[arg-type]
        picked = region[picks]
        return picked if self._remap is None else self._remap(picked)
