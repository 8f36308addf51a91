"""Build a segmend pyramid from a plain volume, streaming slab by slab.

The source is read once, one slab of ``block_size[0]`` z-planes at a time.  Each
slab is cut into blocks that are encoded and written in parallel, and
downsampled (in parallel y-stripes) into half a slab of the next level; two
half slabs make the next level's slab, and so on down the pyramid.  Peak
memory is about two slabs per level, never the whole volume.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels import downsample_image_into, downsample_labels_into
from app.model.bulk.box_tree import TreePlan
from app.model.bulk.cluster import Cluster, dask_client, default_workers
from app.model.bulk.dask_build import build_levels
from app.model.bulk.output import (
    check_output,
    close_quietly,
    remove_sidecar,
)
from app.model.bulk.partials import hold_partial, partial_path, remove_stale_partials
from app.model.bulk.scratch import scratch_copy
from app.model.bulk.zarr_build import build_ome_zarr, is_zarr_output
from app.model.error_text import write_failure
from app.model.errors import CancelledError, FormatError, SegmendError
from app.model.geometry import Coord, blocks_in_box
from app.model.labelmap import Mapping, read_mapping
from app.model.labelmap.mapping_file import write_file_mapping
from app.model.storage.layout import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_RULE,
    check_block_size,
    check_voxel_size,
    is_image_dtype,
    level_count,
)
from app.model.storage.sources import VolumeSource, open_source
from app.model.storage.store import IMAGE, LABELS, PyramidStore

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(blocks_done, blocks_total)`` from worker threads."""

BlockObserver = Callable[[Coord, NDArray[np.uint64]], None]
"""Called with every s0 label block written, from worker threads."""


def build_pyramid(
    labels: str | Path,
    out: str | Path,
    *,
    image: str | Path | None = None,
    block_size: tuple[int, int, int] = DEFAULT_BLOCK_SIZE,
    rule: str = DEFAULT_RULE,
    levels: int | None = None,
    compression: str = "blosc-lz4",
    voxel_size_nm: tuple[float, float, float] = (1.0, 1.0, 1.0),
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    block_observer: BlockObserver | None = None,
    created_by: str = "segmend build",
    discard_journal: bool = False,
    cluster: Cluster | None = None,
    task_blocks: int | None = None,
    mapping: str | Path | Mapping | None = None,
) -> Path:
    """Write the full label (and optional grayscale) pyramid of a source volume.

    Parameters
    ----------
    labels, image : str or Path
        Source specs (``FILE.h5:/dataset``, ``FILE.npy``, or a pyramid group).
        Labels must be non-negative integers (stored as uint64); grayscale
        uint8 or uint16 of the same shape.
    out : str or Path
        The pyramid file to write (through a symlink: the file it names).  It
        is written under a temporary name (:func:`~app.model.bulk.partials.partial_path`)
        and renamed at the end, so ``out`` is never left half-built; partial
        files of dead builds of ``out`` are removed first.  The sidecar folder
        of a replaced ``out`` (its journal, locks) is removed with it.
        ``OUT.zarr``: an OME-Zarr (:mod:`app.model.bulk.zarr_build`), built
        on Dask workers (``cluster``; default: ``workers`` threads here).
    block_size, rule, levels, compression, voxel_size_nm
        See SPEC §2.  Block sizes must be even; ``levels`` at most the natural
        number of levels (:func:`~app.model.storage.layout.level_count`);
        voxel sizes finite and positive.
    workers : int, optional
        Threads encoding and downsampling (default: one per core).
    cluster : Cluster, optional
        Run on Dask workers (local processes, an existing cluster, or
        in-process threads) instead of the streaming threads here; the levels
        are bit-identical.
    task_blocks : int, optional
        With a cluster: a task's box edge in blocks, a power of two ≥ 2
        (default: about 256 voxels; see :mod:`app.model.bulk.box_tree`).
    progress : callable, optional
        ``progress(done, total)`` in blocks, called from worker threads
        (on Dask: in tasks, from this thread).
    cancel : threading.Event, optional
        Set it to stop the build; raises CancelledError and leaves no file.
    block_observer : callable, optional
        Sees every s0 label block (e.g. to build the label index); threads only.
    discard_journal : bool
        Replace an edited ``out`` (one with a journal), deleting its journal.
    mapping : str, Path or Mapping, optional
        A supervoxel → body mapping (a file: see
        :func:`~app.model.labelmap.mapping.read_mapping`, read before any
        work): the labels are supervoxels, and ``out`` is a labelmap-mode
        dataset holding the mapping (SPEC §5).  Its supervoxels need not all
        be in the volume.  ``max_label`` covers its ids too (supervoxels and
        bodies share one id space).  An HDF5 ``out`` only.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ValueError
        On a bad block size, number of levels or voxel size, or a mapping with
        an OME-Zarr ``out`` (before any work).
    app.model.errors.WriterLockedError
        If a process writes ``out`` (before any work, and again before
        replacing it).
    app.model.bulk.output.EditedOutputError
        If ``out`` has a journal and ``discard_journal`` is false.
    app.model.errors.FormatError
        If a source cannot be read or has the wrong shape or dtype, or the
        mapping file is missing or not a mapping (before any work).
    app.model.errors.CancelledError
        If ``cancel`` was set.
    app.model.errors.SegmendError
        If the pyramid cannot be written (a full disk); no file is left.
    """
    block_size = check_block_size(block_size)
    voxel_size_nm = check_voxel_size(voxel_size_nm)
    if cluster is not None and block_observer is not None:
        raise ValueError("a block observer sees blocks of a threaded build only")
    task_blocks = check_task_blocks(task_blocks, block_size)
    if mapping is not None and is_zarr_output(out):
        raise ValueError(
            f"{out}: a mapping (labelmap mode) needs an editable HDF5 pyramid, not an OME-Zarr"
        )
    if isinstance(mapping, str | Path):
        mapping = read_mapping(mapping)
    with open_source(labels) as lab, open_source(image) if image else nullcontext() as img:
        shape = (int(lab.shape[0]), int(lab.shape[1]), int(lab.shape[2]))
        if img is not None:
            _check_grayscale(img, shape)
        _check_levels(levels, shape, block_size)
        if is_zarr_output(out):
            return build_ome_zarr(
                labels, Path(out), shape=shape, image=image,
                image_dtype=None if img is None else str(np.dtype(img.dtype)),
                block_size=block_size, rule=rule, levels=levels, compression=compression,
                voxel_size_nm=voxel_size_nm, cluster=cluster or Cluster(threads=workers),
                task_blocks=task_blocks, progress=progress, cancel=cancel, created_by=created_by,
            )
        real = Path(os.path.realpath(out))
        check_output(real, discard_journal=discard_journal)
        remove_stale_partials(real)
        tmp = partial_path(real)
        store: PyramidStore | None = None
        held: int | None = None
        try:
            held = hold_partial(tmp)
            store = PyramidStore.create(
                tmp,
                shape,
                block_size=block_size,
                rule=rule,
                levels=levels,
                compression=compression,
                image_dtype=str(np.dtype(img.dtype)) if img is not None else None,
                voxel_size_nm=voxel_size_nm,
                created_by=created_by,
            )
            if cluster is not None:
                plans = [
                    tree_plan(store, kind, str(src), task_blocks)
                    for kind, src in ((LABELS, labels), (IMAGE, image)) if src is not None
                ]
                with dask_client(cluster) as client:
                    max_label = build_levels(
                        client, plans, store=store, progress=progress, cancel=cancel
                    )
            else:
                max_label = _write_levels(
                    store, lab, img, workers, progress, cancel, rule, block_observer
                )
            if mapping is not None:
                assert store.h5 is not None  # (created: an HDF5 file)
                write_file_mapping(store.h5, mapping)
                store.set_attrs(mode="labelmap")
                max_label = max(max_label, _largest_id(mapping))
            # the file's uint64 next_label stops at the largest label (then: exhausted)
            store.set_attrs(
                max_label=max_label, next_label=min(max_label + 1, np.iinfo(np.uint64).max)
            )
            store.close()
            check_output(real, discard_journal=discard_journal)
            remove_sidecar(real)
            os.replace(tmp, real)
        except BaseException as exc:
            if store is not None:
                close_quietly(store)
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError | RuntimeError):
                raise SegmendError(f"cannot build {out}: {write_failure(exc, tmp)}") from exc
            raise
        finally:
            if held is not None:
                os.close(held)
    return Path(out)


def check_task_blocks(task_blocks: int | None, block_size: tuple[int, int, int]) -> int:
    """A task's box edge in blocks: ``task_blocks`` checked (a power of two
    ≥ 2), or by default the power of two that makes it about 256 voxels."""
    if task_blocks is None:
        return max(2, 1 << max(0, (256 // max(block_size)).bit_length() - 1))
    if task_blocks < 2 or task_blocks & (task_blocks - 1):
        raise ValueError(f"task blocks must be a power of two of at least 2, got {task_blocks}")
    return task_blocks


def tree_plan(store: PyramidStore, kind: str, source: str, task_blocks: int) -> TreePlan:
    """The task tree of ``store``'s ``kind`` pyramid, whose tasks encode its
    chunks (see :mod:`app.model.bulk.box_tree`)."""
    levels = store.levels(kind)
    codecs = []
    for level in levels:
        if level.codec is None:
            raise FormatError(f"{store.path}: {kind}/s{level.scale} cannot be written block-wise")
        codecs.append(level.codec)
    return TreePlan(
        kind, source, tuple(lv.shape for lv in levels), store.block_size, store.rule,
        task_blocks, tuple(codecs),
    )


def _check_levels(
    levels: int | None, shape: tuple[int, int, int], block_size: tuple[int, int, int]
) -> None:
    """ValueError unless ``levels`` is None or between 1 and the natural number."""
    most = level_count(shape, block_size)
    if levels is not None and not 1 <= levels <= most:
        raise ValueError(
            f"levels must be between 1 and {most} for shape {shape} and block size "
            f"{block_size} (then every axis fits in one block), got {levels}"
        )


def _write_levels(
    store: PyramidStore,
    lab: Any,
    img: Any,
    workers: int | None,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    rule: str,
    block_observer: BlockObserver | None,
) -> int:
    """Fill every level of a new pyramid from its sources; returns the largest label."""
    total = sum(int(np.prod(lv.grid)) for kind in (LABELS, IMAGE) for lv in store.levels(kind))
    ticker = _Ticker(total, progress)
    with ThreadPoolExecutor(workers or default_workers(), "segmend-build") as pool:
        max_label = _SlabStream(store, LABELS, pool, ticker, cancel, rule, block_observer).run(lab)
        if img is not None:
            _SlabStream(store, IMAGE, pool, ticker, cancel, rule, None).run(img)
    return max_label


def _largest_id(mapping: Mapping) -> int:
    """The largest supervoxel or body id of ``mapping`` (0 if it is empty)."""
    return max(int(mapping.svs[-1]), int(mapping.bodies.max())) if mapping.svs.size else 0


def _check_grayscale(img: Any, shape: tuple[int, ...]) -> None:
    """FormatError unless the grayscale source fits labels of ``shape``."""
    if tuple(img.shape) != shape:
        raise FormatError(f"grayscale shape {tuple(img.shape)} differs from labels shape {shape}")
    if not is_image_dtype(img.dtype):
        raise FormatError(f"grayscale must be uint8 or uint16, got {img.dtype}")


@dataclass
class _Ticker:
    total: int
    callback: ProgressCallback | None
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> None:
        with self.lock:
            self.done += 1
            done = self.done
        if self.callback is not None:
            self.callback(done, self.total)


class _SlabStream:
    """Streams one pyramid (labels or image) from its source into the store."""

    def __init__(
        self,
        store: PyramidStore,
        kind: str,
        pool: ThreadPoolExecutor,
        ticker: _Ticker,
        cancel: threading.Event | None,
        rule: str,
        observer: BlockObserver | None,
    ) -> None:
        self.store = store
        self.kind = kind
        self.levels = store.levels(kind)
        self.pool = pool
        self.ticker = ticker
        self.cancel = cancel
        self.rule = rule
        self.observer = observer
        self.bz = store.block_size[0]
        self.pending: list[list[NDArray[Any]]] = [[] for _ in self.levels]
        self.next_z = [0 for _ in self.levels]
        self.writes: deque[Future[None]] = deque()

    def run(self, source: VolumeSource) -> int:
        """Stream the whole source; returns its maximum value."""
        depth = source.shape[0]
        top = 0
        for z0 in range(0, depth, self.bz):
            self._check_cancel()
            slab = self._convert(np.asarray(source[z0 : z0 + self.bz]), z0)
            top = max(top, int(slab.max()))
            self._emit(0, slab)
        for k in range(1, len(self.levels)):
            if self.pending[k]:
                self._emit(k, np.concatenate(self.pending[k]))
                self.pending[k] = []
        while self.writes:
            self.writes.popleft().result()
        return top

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise CancelledError("build cancelled")

    def _convert(self, slab: NDArray[Any], z0: int) -> NDArray[Any]:
        if self.kind == IMAGE:
            return np.ascontiguousarray(slab)
        if slab.dtype.kind == "i" and slab.size and int(slab.min()) < 0:
            z = z0 + int(np.argwhere(slab < 0)[0][0])
            raise FormatError(
                f"labels must be non-negative; found {int(slab.min())} in plane z={z}"
            )
        return np.ascontiguousarray(slab, dtype=np.uint64)

    def _emit(self, k: int, slab: NDArray[Any]) -> None:
        """Write the slab of level ``k`` starting at ``next_z[k]`` and feed level k+1."""
        z0 = self.next_z[k]
        self.next_z[k] += slab.shape[0]
        level = self.levels[k]
        for coord in blocks_in_box((z0, 0, 0), (z0 + 1, *level.shape[1:]), level.block_size):
            self.writes.append(self.pool.submit(self._write_block, k, coord, slab))
        if k + 1 < len(self.levels):
            half = self._downsample(slab)
            self.pending[k + 1].append(half)
            if sum(p.shape[0] for p in self.pending[k + 1]) >= self.bz:
                merged = np.concatenate(self.pending[k + 1])
                self.pending[k + 1] = []
                self._emit(k + 1, merged)
        blocks_per_slab = level.grid[1] * level.grid[2] if k == 0 else 0
        while len(self.writes) > 2 * blocks_per_slab:  # bound the slabs held in memory
            self.writes.popleft().result()

    def _write_block(self, k: int, coord: Coord, slab: NDArray[Any]) -> None:
        level = self.levels[k]
        sl = level.block_slices(coord)
        view = slab[(slice(None), sl[1], sl[2])]
        block = scratch_copy(view)
        payload = self.store.encode_block(self.kind, k, coord, block)
        self.store.write_payload(self.kind, k, coord, payload)
        if k == 0 and self.observer is not None:
            self.observer(coord, block.copy())
        self.ticker.tick()

    def _downsample(self, slab: NDArray[Any]) -> NDArray[Any]:
        out_shape = tuple(-(-s // 2) for s in slab.shape)
        out = np.empty(out_shape, slab.dtype)
        step = self.store.block_size[1]
        stripes = [(y, min(y + step, slab.shape[1])) for y in range(0, slab.shape[1], step)]

        def work(y0: int, y1: int) -> None:
            dst = out[:, y0 // 2 : -(-y1 // 2), :]
            if self.kind == LABELS:
                downsample_labels_into(slab[:, y0:y1, :], dst, self.rule)
            else:
                downsample_image_into(slab[:, y0:y1, :], dst)

        for f in [self.pool.submit(work, y0, y1) for y0, y1 in stripes]:
            f.result()
        return out
