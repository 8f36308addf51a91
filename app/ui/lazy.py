"""Pyramid levels for napari that never read the file on the GUI thread.

napari slices layer data on the GUI thread.  :class:`CachedLevel` answers a
slice from the blocks already decoded in the model's block cache; blocks that
are not there yet are asked of a :class:`BlockLoader`, which reads them on the
worker pool and emits :attr:`BlockLoader.loaded` on the GUI thread -- the layer
then refreshes and shows them.  Until then the missing part reads as zeros
(background), so the view fills in block by block and the GUI thread never
waits on HDF5.

Edited blocks are staged by the model straight into the same cache, so a
refresh after an edit shows the new labels without any read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from qtpy.QtCore import QObject, Signal

from app.model.geometry import (
    Coord,
    Item,
    assemble_region,
    blocks_in_box,
    centre_first,
    index_box,
    normalise_index,
)
from app.model.storage.arrays import ArrayView
from app.ui.workers import Job, TaskRunner

BlockKey = tuple[str, int, int, int, int]
BATCH = 4
"""Blocks read by one pool job."""


class BlockSource(Protocol):
    """Where a :class:`BlockLoader` reads blocks: a dataset
    (:class:`app.model.dataset.Dataset`) or plain volumes
    (:class:`app.model.storage.volumes.VolumeSource`)."""

    def cached_block(self, kind: str, scale: int, coord: Coord) -> NDArray[Any] | None:
        """The block if in memory, else None; never reads the file."""
        ...

    def read_block(self, kind: str, scale: int, coord: Coord) -> NDArray[Any]:
        """The block, read into memory if missing (a pool thread)."""
        ...


class Level(Protocol):
    """One level as the model reads it: a pyramid level
    (:class:`app.model.storage.arrays.LevelArray`) or a plain volume
    (:class:`app.model.storage.volumes.VolumeArray`)."""

    kind: str
    scale: int

    @property
    def shape(self) -> tuple[int, int, int]: ...

    @property
    def dtype(self) -> np.dtype[Any]: ...

    def __getitem__(self, key: Any) -> NDArray[Any]: ...


class BlockLoader(QObject):
    """Reads blocks into the model's block cache on the worker pool.

    Parameters
    ----------
    dataset : BlockSource
        The open dataset (or plain volumes).
    runner : TaskRunner
        Where the reads run.
    """

    loaded = Signal(str, int)
    """``(kind, scale)``: blocks of that level are now cached; emitted on the GUI thread."""
    failed = Signal(str)
    """A block could not be read (one-line message); emitted on the GUI thread."""
    idle = Signal()
    """No read is in flight any more; emitted on the GUI thread."""

    def __init__(self, dataset: BlockSource, runner: TaskRunner,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dataset = dataset
        self.runner = runner
        self._inflight: set[BlockKey] = set()
        self._failed: set[BlockKey] = set()
        self.closed = False

    @property
    def busy(self) -> bool:
        """True while reads are in flight."""
        return bool(self._inflight)

    def is_cached(self, kind: str, scale: int, coord: Coord) -> bool:
        """True if the block is in memory (reading it costs no I/O)."""
        return self.dataset.cached_block(kind, scale, coord) is not None

    def cached_block(self, kind: str, scale: int, coord: Coord) -> NDArray[Any] | None:
        """The block if it is in memory, else None (never reads the file)."""
        return self.dataset.cached_block(kind, scale, coord)

    def request(self, kind: str, scale: int, coords: Iterable[Coord]) -> None:
        """Read these blocks in the background (already requested ones are skipped)."""
        if self.closed:
            return
        keys = [(kind, scale, *c) for c in coords]
        new = [k for k in keys if k not in self._inflight and k not in self._failed]
        if not new:
            return
        self._inflight.update(new)
        for i in range(0, len(new), BATCH):
            self._submit(new[i : i + BATCH])

    def _submit(self, batch: list[BlockKey]) -> None:
        def read(job: Job) -> int:
            return self._read(job, batch)

        def done(_result: object) -> None:
            self._done(batch, None)

        def failed(exc: BaseException) -> None:
            self._done(batch, exc)

        self.runner.submit(read, name="read blocks", on_done=done, on_error=failed)

    def _read(self, job: Job, keys: list[BlockKey]) -> int:
        """Pool thread: decode the blocks into the cache."""
        for kind, scale, z, y, x in keys:
            if job.cancelled or self.closed:
                break
            self.dataset.read_block(kind, scale, (z, y, x))
        return len(keys)

    def _done(self, keys: list[BlockKey], exc: BaseException | None) -> None:
        """GUI thread: forget the keys, tell the layers."""
        self._inflight.difference_update(keys)
        if self.closed:
            return
        if exc is not None:
            self._failed.update(keys)
            self.failed.emit(f"cannot read blocks of {keys[0][0]}/s{keys[0][1]}: {exc}")
        for kind, scale in sorted({(k[0], k[1]) for k in keys}):
            self.loaded.emit(kind, scale)
        if not self._inflight:
            self.idle.emit()

    def close(self) -> None:
        """Stop issuing reads (results of running ones are ignored)."""
        self.closed = True
        self._inflight.clear()


class CachedLevel(ArrayView):
    """A NumPy-style, read-only view of one pyramid level for napari.

    Pure slicing (``level[a:b, :, c:d]``) is lazy, like dask: it returns a
    :class:`Window` and reads nothing.  napari slices every non-displayed
    axis whole before picking the plane; a level that materialised on
    slicing would read the whole depth of the visible region.  Data is read
    when an index drops an axis (picks a plane) or on ``np.asarray``.

    Reads are answered from cached blocks only; missing blocks read as zeros
    and are requested from the loader.  With ``loader=None`` reads are
    synchronous (plain :class:`Level` behaviour, through the cache).

    Parameters
    ----------
    array : Level
        The model's view of the level (or of a plain volume).
    block_size : tuple of int
        The pyramid's block shape (z, y, x).
    loader : BlockLoader or None
        Where missing blocks are asked for.
    kind : str, optional
        The block kind the loader reads (default: the array's); a labelmap
        dataset's supervoxels (``"supervoxels"``) are stored as its labels.
    """

    def __init__(self, array: Level, block_size: tuple[int, int, int],
                 loader: BlockLoader | None, *, kind: str | None = None) -> None:
        self.array = array
        self.loader = loader
        self.kind = kind if kind is not None else array.kind
        self.scale = array.scale
        self._block_size = (int(block_size[0]), int(block_size[1]), int(block_size[2]))

    # ndarray-ish protocol ----------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel shape (z, y, x)."""
        return self.array.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """Element type."""
        return self.array.dtype

    def __repr__(self) -> str:
        return f"CachedLevel({self.kind}/s{self.scale}, shape={self.shape}, dtype={self.dtype})"

    def retarget(self, array: Level, kind: str) -> None:
        """Read ``array`` (same shape and dtype) as blocks of ``kind`` from now on: a
        labelmap dataset's supervoxels instead of its bodies, or back.  The layer
        keeps its level objects (napari would restart a new one at its coarsest
        level); it must be refreshed."""
        if array.shape != self.shape or array.dtype != self.dtype:
            raise ValueError(f"cannot show {array!r} in place of {self!r}")
        self.array, self.kind = array, kind

    def _read_all(self) -> NDArray[Any]:
        return self.read([range(n) for n in self.shape])

    def __getitem__(self, key: Any) -> Window | NDArray[Any]:
        return self.take(normalise_index(key, self.shape))

    # reading -------------------------------------------------------------------
    def take(self, items: list[Item]) -> Window | NDArray[Any]:
        """A lazy :class:`Window` if every axis is kept, else the data."""
        if all(isinstance(i, range) for i in items):
            return Window(self, items)  # type: ignore[arg-type]
        return self.read(items)

    def read(self, items: list[Item]) -> NDArray[Any]:
        """The voxels an index selects (never reads the file if a loader is set)."""
        if any(isinstance(i, range) and len(i) == 0 for i in items):
            shape = tuple(len(i) for i in items if isinstance(i, range))
            return np.zeros(shape, self.array.dtype)
        starts, stops, picks = index_box(items)
        if self.loader is None or self.loader.closed:
            box = tuple(slice(a, b) for a, b in zip(starts, stops, strict=True))
            return self.array[box][picks]
        loader = self.loader
        out, missing = assemble_region(
            starts, stops, self._block_size, self.array.dtype,
            lambda coord: loader.cached_block(self.kind, self.scale, coord))
        if missing:
            mid = [(a + e) / 2 for a, e in zip(starts, stops, strict=True)]
            self.loader.request(self.kind, self.scale,
                                centre_first(missing, self._block_size, mid))
        return out[picks]

    def missing_blocks(self, key: Any) -> list[Coord]:
        """Blocks an index needs that are not cached yet."""
        assert self.loader is not None
        starts, stops, _picks = index_box(normalise_index(key, self.shape))
        return [c for c in blocks_in_box(starts, stops, self._block_size)
                if not self.loader.is_cached(self.kind, self.scale, c)]


class Highlight:
    """Which labels are highlighted, and how: label -> code ``1 + position % n_codes``.

    The code of a label is its position in the list (the selection order),
    cycling through ``n_codes`` colours (or, set by :meth:`set_groups`, its
    group's); 0 means not highlighted.  GUI thread only (napari slices on the
    GUI thread).

    Parameters
    ----------
    n_codes : int
        Number of distinct codes (colours), at most 255.
    """

    def __init__(self, n_codes: int) -> None:
        if not 1 <= n_codes <= 255:
            raise ValueError(f"n_codes must be in 1..255, not {n_codes}")
        self.n_codes = n_codes
        self._ids = np.zeros(0, np.uint64)
        self._sorted = np.zeros(0, np.uint64)
        self._codes = np.zeros(1, np.uint8)  # code of index k of relabel_indexed (0: none)

    @property
    def ids(self) -> list[int]:
        """The highlighted labels, in order."""
        return [int(v) for v in self._ids]

    def set(self, ids: Iterable[int]) -> None:
        """Highlight these labels (in this order)."""
        self._ids = np.asarray(list(dict.fromkeys(int(v) for v in ids)), dtype=np.uint64)
        self._install(np.arange(len(self._ids)))

    def set_groups(self, groups: Sequence[Iterable[int]]) -> None:
        """Highlight labels by group: those of group ``g`` (0-based) get code
        ``1 + g % n_codes`` (a label in two groups: its first)."""
        group_of: dict[int, int] = {}
        for g, labels in enumerate(groups):
            for v in labels:
                group_of.setdefault(int(v), g)
        self._ids = np.fromiter(group_of, dtype=np.uint64, count=len(group_of))
        self._install(np.fromiter(group_of.values(), dtype=np.int64, count=len(group_of)))

    def _install(self, positions: NDArray[np.int64]) -> None:
        """Code ``1 + positions[i] % n_codes`` for ``self._ids[i]``."""
        order = np.argsort(self._ids)
        self._sorted = self._ids[order]
        self._codes = np.concatenate([[0], 1 + positions[order] % self.n_codes]).astype(np.uint8)

    def apply(self, labels: NDArray[Any]) -> NDArray[np.uint8]:
        """The code of every voxel of ``labels`` (0 where not highlighted).

        One GIL-free pass (:func:`app.model.label_lookup.label_positions`)
        finds which highlighted label each voxel holds, whatever their number.
        """
        if not len(self._ids) or labels.size == 0:
            return np.zeros(labels.shape, np.uint8)
        from app.model.label_lookup import label_positions  # kernels: loaded by the opening

        return self._codes[label_positions(labels, self._sorted)]


class HighlightLevel(CachedLevel):
    """A pyramid level of labels seen through a :class:`Highlight`: uint8 codes.

    What the "selected bodies" layer shows: reads like the :class:`CachedLevel`
    of the labels (cached blocks only, missing ones asked of the loader) and
    maps each voxel to its highlight code.  Small codes keep napari off its
    large-label colour mapping (a Numba dict compiled at first use, rebuilt for
    each new selection): the colormap is fixed, only the codes change.

    Parameters
    ----------
    array : LevelArray
        The model's view of a labels level.
    block_size : tuple of int
        The pyramid's block shape (z, y, x).
    loader : BlockLoader or None
        Where missing blocks are asked for.
    highlight : Highlight
        Which labels get which code (shared by every level of a layer).
    kind : str, optional
        The block kind read (default: the array's; see :class:`CachedLevel`).
    """

    def __init__(self, array: Level, block_size: tuple[int, int, int],
                 loader: BlockLoader | None, highlight: Highlight, *,
                 kind: str | None = None) -> None:
        super().__init__(array, block_size, loader, kind=kind)
        self.highlight = highlight

    @property
    def dtype(self) -> np.dtype[Any]:
        """Element type: uint8 codes."""
        return np.dtype(np.uint8)

    def __repr__(self) -> str:
        return f"HighlightLevel({self.kind}/s{self.scale}, shape={self.shape})"

    def read(self, items: list[Item]) -> NDArray[Any]:
        """The highlight codes of the voxels an index selects."""
        return self.highlight.apply(super().read(items))


class Window(ArrayView):
    """A lazy, strided box of a :class:`CachedLevel` (what pure slicing returns).

    Indexing it again composes with the box (still lazy while every axis is
    kept); ``np.asarray`` or an index that drops an axis reads the data.
    """

    def __init__(self, level: CachedLevel, ranges: list[range]) -> None:
        self.level = level
        self.ranges = ranges

    @property
    def shape(self) -> tuple[int, ...]:
        """Voxel shape of the box."""
        return tuple(len(r) for r in self.ranges)

    @property
    def dtype(self) -> np.dtype[Any]:
        """Element type."""
        return self.level.dtype

    def __repr__(self) -> str:
        box = ", ".join(f"{r.start}:{r.stop}:{r.step}" for r in self.ranges)
        return f"Window({self.level!r}[{box}])"

    def __getitem__(self, key: Any) -> Window | NDArray[Any]:
        rel = normalise_index(key, self.shape)
        items: list[Item] = [r[k] if isinstance(k, int) else r[slice(k.start, k.stop, k.step)]
                             for r, k in zip(self.ranges, rel, strict=True)]
        return self.level.take(items)

    def _read_all(self) -> NDArray[Any]:
        return self.level.read(list(self.ranges))
