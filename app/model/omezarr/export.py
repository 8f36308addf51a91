"""``segmend export``: a dataset's pyramids written as an OME-Zarr (NGFF 0.5).

The dataset is opened read-only, so the export holds the journal's edits
that the HDF5 file does not hold yet; every block is read inside one
``snapshot()``, so a writer in another process never shows a torn state:
the export is the dataset as of one mutation.  One thread reads the levels,
shard by shard (it holds the snapshot); a pool of threads writes the shards,
each shard by one task, at most one per thread waiting.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from zarr.storage import LocalStore

from app.model.bulk.cluster import default_workers
from app.model.dataset import open_dataset
from app.model.error_text import write_failure
from app.model.errors import CancelledError, FormatError, SegmendError
from app.model.geometry import Coord
from app.model.omezarr.metadata import LABEL_IMAGE, LABELS_GROUP
from app.model.omezarr.writer import (
    LevelsSpec,
    OmeZarrPyramid,
    building_ome_zarr,
    check_replaceable,
)
from app.model.storage.layout import COMPRESSIONS, DEFAULT_COMPRESSION, check_voxel_size
from app.model.storage.store import IMAGE, LABELS, PyramidStore

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(blocks_done, blocks_total)`` from worker threads."""

READ_CACHE_BYTES = 64 << 20
"""The block cache of the dataset read (each block is read once)."""


def export_ome_zarr(
    path: str | Path,
    out: str | Path,
    *,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Write the label (and grayscale) pyramid of a dataset as an OME-Zarr.

    Parameters
    ----------
    path : str or Path
        The dataset (a segmend pyramid, or another tool's that segmend opens).
    out : str or Path
        The OME-Zarr folder to write (``OUT.zarr``); an existing one is
        replaced only if segmend wrote it.  Layout and metadata: see
        :func:`app.model.omezarr.writer.building_ome_zarr`.  Every level keeps
        the dataset's shape, dtype and block size (the Zarr chunks, sharded
        4×4×4), compression and voxel size (1 nm without one).  A foreign
        pyramid whose grayscale has another number of scales than its labels
        exports the scales both have.
    workers : int, optional
        Threads writing shards (default: one per core).  Memory: about one
        shard (64 blocks) per thread, plus one.
    progress : callable, optional
        ``progress(done, total)`` in blocks, from worker threads.
    cancel : threading.Event, optional
        Set it to stop: raises CancelledError, and no ``out`` is written.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    app.model.errors.FormatError
        ``path`` is missing or no pyramid; ``out`` exists and is not an
        OME-Zarr written by segmend (nothing is read or written then).
    app.model.errors.CancelledError
        If ``cancel`` was set.
    app.model.errors.SegmendError
        The OME-Zarr cannot be written (a full disk); nothing is left.
    """
    check_replaceable(out)
    with open_dataset(path, "r", workers=workers, cache_bytes=READ_CACHE_BYTES) as ds:
        store = ds.store
        labels, image = _level_specs(store)
        with building_ome_zarr(
            Path(out),
            labels=labels,
            image=image,
            voxel_size_nm=_voxel_size(store),
            compression=_compression(store),
            rule=store.rule,
            created_by="segmend export",
        ) as pyramid, ds.snapshot():
            _copy_levels(store, pyramid, Path(out), workers, progress, cancel)
            pyramid.record(max_label=ds.max_label)
    return Path(out)


def export_summary(out: str | Path) -> dict[str, Any]:
    """What an export holds: ``out``, the label ``shape`` (z, y, x), the label
    ``levels`` and grayscale ``image_levels`` shapes, ``voxel_size_nm``, ``dtype``.

    Raises
    ------
    app.model.errors.FormatError
        ``out`` is not an OME-Zarr of segmend's layout.
    """
    try:
        root: Any = zarr.open_group(LocalStore(Path(out), read_only=True), mode="r", zarr_format=3)
        label_image = root[LABEL_IMAGE]
        root_datasets = root.attrs["ome"]["multiscales"][0]["datasets"]
        label_datasets = label_image.attrs["ome"]["multiscales"][0]["datasets"]
        levels = [label_image[d["path"]] for d in label_datasets]
        has_image = not str(root_datasets[0]["path"]).startswith(f"{LABELS_GROUP}/")
        image = [root[d["path"]] for d in root_datasets] if has_image else []
        scale = root_datasets[0]["coordinateTransformations"][0]["scale"]
    except (OSError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise FormatError(f"{out}: not an OME-Zarr export of segmend ({exc})") from exc
    return {
        "out": str(out),
        "shape": list(levels[0].shape),
        "levels": [list(a.shape) for a in levels],
        "image_levels": [list(a.shape) for a in image],
        "voxel_size_nm": [float(v) for v in scale],
        "dtype": str(levels[0].dtype),
    }


def _level_specs(store: PyramidStore) -> tuple[LevelsSpec, LevelsSpec | None]:
    """The label and grayscale levels to write: the scales both pyramids have."""
    labels, image = store.levels(LABELS), store.levels(IMAGE)
    n = min(len(labels), len(image)) if image else len(labels)

    def spec(levels: list[Any]) -> LevelsSpec:
        return LevelsSpec(tuple(lv.shape for lv in levels[:n]), str(levels[0].dtype),
                          store.block_size)

    return spec(labels), spec(image) if image else None


def _voxel_size(store: PyramidStore) -> tuple[float, float, float]:
    """The dataset's voxel size (nm), 1 nm per axis if it has none."""
    raw = store.attr("voxel_size_nm")
    if raw is None:
        return (1.0, 1.0, 1.0)
    try:
        return check_voxel_size([float(v) for v in np.ravel(raw)])
    except (ValueError, TypeError) as exc:
        raise FormatError(f"{store.path}: bad voxel_size_nm attribute ({exc})") from None


def _compression(store: PyramidStore) -> str:
    """The dataset's compression name (the default for another tool's file)."""
    name = store.attr("compression")
    return name if name in COMPRESSIONS else DEFAULT_COMPRESSION


@dataclass
class _Ticker:
    total: int
    callback: ProgressCallback | None
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
            done = self.done
        if self.callback is not None:
            self.callback(done, self.total)


def _copy_levels(
    store: PyramidStore,
    pyramid: OmeZarrPyramid,
    out: Path,
    workers: int | None,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> None:
    """Read every level shard by shard (this thread) and write the shards (a pool)."""
    scales = [(LABELS, k) for k in range(len(pyramid.label_paths))]
    scales += [(IMAGE, k) for k in range(len(pyramid.image_paths))]
    arrays = {(kind, k): pyramid.open_array(kind, k) for kind, k in scales}
    ticker = _Ticker(sum(math.prod(_grid(a.shape, a.chunks)) for a in arrays.values()), progress)
    n = workers or default_workers()
    writes: deque[Future[None]] = deque()
    with ThreadPoolExecutor(n, "segmend-export") as pool:
        try:
            for (kind, k), arr in arrays.items():
                assert arr.shards is not None
                for start, stop in _shard_boxes(arr.shape, arr.shards):
                    _check_cancel(cancel)
                    data = store.read_region(kind, k, start, stop).astype(arr.dtype, copy=False)
                    writes.append(
                        pool.submit(_write_shard, arr, start, stop, data, out, ticker, cancel)
                    )
                    while len(writes) >= n:
                        writes.popleft().result()
            while writes:
                writes.popleft().result()
        except BaseException:
            for future in writes:
                future.cancel()
            raise


def _write_shard(
    arr: zarr.Array,
    start: Coord,
    stop: Coord,
    data: NDArray[Any],
    out: Path,
    ticker: _Ticker,
    cancel: threading.Event | None,
) -> None:
    """Write one whole shard (clipped to the array)."""
    _check_cancel(cancel)
    try:
        arr[tuple(slice(a, b) for a, b in zip(start, stop, strict=True))] = data
    except OSError as exc:
        raise SegmendError(f"cannot write {out}: {write_failure(exc, out)}") from exc
    ticker.add(math.prod(_grid(data.shape, arr.chunks)))


def _grid(shape: tuple[int, ...], chunk: tuple[int, ...]) -> tuple[int, ...]:
    """Chunks per axis covering ``shape``."""
    return tuple(-(-s // c) for s, c in zip(shape, chunk, strict=True))


def _shard_boxes(shape: tuple[int, ...], shard: tuple[int, ...]) -> Iterator[tuple[Coord, Coord]]:
    """``(start, stop)`` of every shard, clipped to ``shape``, in z, y, x order."""
    gz, gy, gx = _grid(shape, shard)
    for z in range(gz):
        for y in range(gy):
            for x in range(gx):
                start = (z * shard[0], y * shard[1], x * shard[2])
                stop = (
                    min(start[0] + shard[0], shape[0]),
                    min(start[1] + shard[1], shape[1]),
                    min(start[2] + shard[2], shape[2]),
                )
                yield start, stop


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError("export cancelled")
