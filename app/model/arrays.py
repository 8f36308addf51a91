"""Array-like views of one pyramid level, read lazily block by block."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from app.model.store import PyramidStore


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
    visible at once.
    """

    def __init__(self, store: PyramidStore, kind: str, scale: int) -> None:
        self._store = store
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
        return self._level.dtype

    def __repr__(self) -> str:
        return f"LevelArray({self.kind}/s{self.scale}, shape={self.shape}, dtype={self.dtype})"

    def _read_all(self) -> NDArray[Any]:
        return self[...]

    def __getitem__(self, key: Any) -> NDArray[Any]:
        index = _normalise_key(key, self.shape)
        start = tuple(r.start for r in index)
        stop = tuple(r.stop for r in index)
        region = self._store.read_region(self.kind, self.scale, start, stop)  # type: ignore[arg-type]
        picks = tuple(0 if r.is_int else slice(None, None, r.step) for r in index)
        return region[picks]


class _AxisRange:
    """The bounding box of one axis' index plus how to pick from it."""

    __slots__ = ("is_int", "start", "step", "stop")

    def __init__(self, start: int, stop: int, step: int, is_int: bool) -> None:
        self.start, self.stop, self.step, self.is_int = start, stop, step, is_int


def _normalise_key(key: Any, shape: tuple[int, ...]) -> list[_AxisRange]:
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1 :]
    if len(key) > len(shape):
        raise IndexError(f"too many indices: {len(key)} for a {len(shape)}-d array")
    key = key + (slice(None),) * (len(shape) - len(key))
    out = []
    for k, n in zip(key, shape, strict=True):
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step < 0:
                raise IndexError("negative slice steps are not supported")
            stop = max(stop, start)
            out.append(_AxisRange(start, stop, step, False))
        elif isinstance(k, int | np.integer):
            i = int(k) + n if k < 0 else int(k)
            if not 0 <= i < n:
                raise IndexError(f"index {int(k)} is out of bounds for axis of size {n}")
            out.append(_AxisRange(i, i + 1, 1, True))
        else:
            raise TypeError(f"unsupported index {k!r}: use integers and slices")
    return out
