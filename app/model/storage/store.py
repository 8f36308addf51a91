"""The pyramid store: block-level access to an HDF5 label (and grayscale) pyramid,
or to an OME-Zarr one (read-only: :mod:`app.model.storage.ome_zarr_read`).

One object for the engine, builds, checks and viewers, over three parts:
:mod:`app.model.storage.levels` (each scale's dataset and block grid),
:mod:`app.model.storage.block_io` (whole compressed chunks in and out of the file, the
codec outside h5py's lock) and :mod:`app.model.storage.staging` (the overlay of edited
blocks readers see before a checkpoint writes them into the file).
"""

from __future__ import annotations

import atexit
import io
import threading
from collections.abc import Callable, Iterable, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from app.model.errors import FormatError, ReadOnlyError
from app.model.geometry import Coord, assemble_region
from app.model.labelmap.mapping_file import file_mode
from app.model.storage import block_io
from app.model.storage.cache import BlockCache
from app.model.storage.layout import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_RULE,
    IMAGE_GROUP,
    LABELS_GROUP,
    check_block_size,
    find_pyramids,
)
from app.model.storage.levels import BlockKey, Level, check_level_shapes
from app.model.storage.ome_zarr_read import (
    OmeZarrPyramid,
    is_zarr_path,
    open_ome_zarr,
    refuse_editing,
)
from app.model.storage.palette_block import PaletteBlock
from app.model.storage.pyramid_file import open_h5, open_h5_own_handle, write_empty_pyramid
from app.model.storage.staging import StagedBlock, StagedOverlay

__all__ = ["IMAGE", "LABELS", "PyramidStore", "StagedBlock"]

LABELS = LABELS_GROUP
IMAGE = IMAGE_GROUP


class PyramidStore:
    """Block-level access to a pyramid in an open HDF5 file, or in an OME-Zarr store.

    Parameters
    ----------
    source : h5py.File or OmeZarrPyramid
        The open file (read-only or writable), or an OME-Zarr store's pyramid
        (read-only, a foreign pyramid: :attr:`h5` is None).
    cache_bytes : int
        Capacity of the decoded-block cache; the palettes of s0 blocks that
        checkpoints wrote are kept in half as much again (see
        :class:`~app.model.storage.staging.StagedOverlay`).

    Raises
    ------
    app.model.errors.FormatError
        If the file holds no pyramid.
    """

    def __init__(
        self, source: h5py.File | OmeZarrPyramid, *, cache_bytes: int = 256 << 20
    ) -> None:
        self._attach(source)
        self._own_handle: io.RawIOBase | None = None
        self._rollback: Path | None = None
        self.cache: BlockCache[NDArray[Any]] = BlockCache(cache_bytes)
        self._thread_scratch = threading.local()
        self._overlay = StagedOverlay(self.cache, BlockCache(cache_bytes // 2))
        self.read_guard: Callable[[], AbstractContextManager[object]] = nullcontext
        """Entered around every read that may reach the file (a reader beside a
        writer holds its snapshot still there: :mod:`app.model.read_snapshot`)."""

    def _attach(self, source: h5py.File | OmeZarrPyramid) -> None:
        """Take the pyramid of the open file (or the OME-Zarr store) ``source``."""
        if isinstance(source, OmeZarrPyramid):
            self._attach_zarr(source)
            return
        h5 = source
        self.h5: h5py.File | None = h5
        self._path = Path(h5.filename)
        self._attrs: MutableMapping[str, Any] = h5.attrs
        groups = find_pyramids(h5)
        self.native = groups.native
        self.writable = h5.mode == "r+"
        s0 = h5[groups.labels[0]]
        if self.native:
            try:
                self.block_size: tuple[int, int, int] = check_block_size(
                    [int(v) for v in np.ravel(h5.attrs["block_size"])]
                )
            except (ValueError, TypeError) as exc:
                raise FormatError(f"{h5.filename}: bad block_size attribute ({exc})") from None
        else:
            self.block_size = tuple(s0.chunks) if s0.chunks else DEFAULT_BLOCK_SIZE
        bs = self.block_size
        self._levels: dict[str, list[Level]] = {
            LABELS: [Level.of(LABELS, i, h5[p], bs) for i, p in enumerate(groups.labels)],
            IMAGE: [Level.of(IMAGE, i, h5[p], bs) for i, p in enumerate(groups.image)],
        }
        check_level_shapes(self._levels, h5.filename)
        self._rule = str(h5.attrs.get("downres_rule", DEFAULT_RULE))

    def _attach_zarr(self, pyramid: OmeZarrPyramid) -> None:
        """Take an OME-Zarr store's pyramid: read-only, foreign; its attributes are
        the root group's with the voxel size of its labels."""
        self.h5 = None
        self._path = pyramid.path
        mark = pyramid.attrs.get("segmend")  # (what segmend's own OME-Zarr records)
        self._attrs = {
            **pyramid.attrs,
            **(mark if isinstance(mark, dict) else {}),
            "voxel_size_nm": list(pyramid.voxel_size_nm),
        }
        self.native = False
        self.writable = False
        self.block_size = bs = pyramid.block_size
        self._levels = {
            LABELS: [Level.sliced(LABELS, i, v, bs) for i, v in enumerate(pyramid.labels)],
            IMAGE: [Level.sliced(IMAGE, i, v, bs) for i, v in enumerate(pyramid.image)],
        }
        check_level_shapes(self._levels, str(pyramid.path))
        self._rule = str(self._attrs.get("downres_rule", DEFAULT_RULE))

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | Path,
        mode: str = "r",
        *,
        cache_bytes: int = 256 << 20,
        own_handle: bool = False,
        rollback: Path | None = None,
    ) -> PyramidStore:
        """Open the pyramid at ``path`` read-only (``"r"``) or for writing (``"r+"``);
        ``own_handle`` (read-only): through a file handle of its own, which
        :meth:`reopen` reads afresh, as of the last commit its ``rollback``
        file (if given) leaves it (see
        :func:`~app.model.storage.pyramid_file.open_h5_own_handle`).

        A Zarr store (:func:`~app.model.storage.ome_zarr_read.is_zarr_path`)
        opens as an OME-Zarr pyramid, read-only only.

        Raises
        ------
        app.model.errors.FormatError
            If the file is missing, not HDF5, corrupt, or holds no pyramid;
            or an OME-Zarr store is opened for writing.
        """
        if mode not in ("r", "r+") or (own_handle and mode != "r"):
            raise ValueError(f"mode must be 'r' or 'r+' ('r' with its own handle), got {mode!r}")
        if is_zarr_path(path):
            if mode != "r":
                refuse_editing(path)
            return cls(open_ome_zarr(path), cache_bytes=cache_bytes)
        h5, raw = (
            open_h5_own_handle(path, rollback) if own_handle else (open_h5(path, mode), None)
        )
        try:
            store = cls(h5, cache_bytes=cache_bytes)
        except BaseException as exc:
            h5.close()
            if raw is not None:
                raw.close()
            if isinstance(exc, OSError | KeyError | RuntimeError):
                raise FormatError(f"{path}: damaged or unreadable pyramid ({exc})") from exc
            raise
        if raw is not None:
            store._hold_handle(raw, rollback)
        return store

    @classmethod
    def create(
        cls,
        path: str | Path,
        shape: tuple[int, int, int],
        *,
        block_size: tuple[int, int, int] = DEFAULT_BLOCK_SIZE,
        rule: str = DEFAULT_RULE,
        levels: int | None = None,
        compression: str = "blosc-lz4",
        label_dtype: str = "uint64",
        image_dtype: str | None = None,
        voxel_size_nm: tuple[float, float, float] = (1.0, 1.0, 1.0),
        created_by: str = "segmend",
        cache_bytes: int = 256 << 20,
    ) -> PyramidStore:
        """Create an empty pyramid file at ``path`` (overwriting it) and open it writable.

        Raises
        ------
        ValueError
            On an unknown rule, compression or image dtype, or a bad shape.
        """
        write_empty_pyramid(
            path,
            shape,
            block_size=block_size,
            rule=rule,
            levels=levels,
            compression=compression,
            label_dtype=label_dtype,
            image_dtype=image_dtype,
            voxel_size_nm=voxel_size_nm,
            created_by=created_by,
        )
        return cls.open(path, "r+", cache_bytes=cache_bytes)

    # --------------------------------------------------------------- properties
    @property
    def path(self) -> Path:
        """The HDF5 file's (or the OME-Zarr store's) path."""
        return self._path

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel shape of s0 (z, y, x)."""
        return self._levels[LABELS][0].shape

    @property
    def rule(self) -> str:
        """The downres rule stored in the file (``labelmap`` for foreign pyramids)."""
        return self._rule

    @property
    def mode(self) -> str:
        """The dataset's mode: ``voxel`` (labels in the voxels) or ``labelmap``
        (supervoxels, and a mapping to bodies); FormatError if unknown."""
        return file_mode(self._attrs)

    @property
    def has_image(self) -> bool:
        """True if the file holds a grayscale pyramid."""
        return bool(self._levels[IMAGE])

    def levels(self, kind: str = LABELS) -> list[Level]:
        """Every level of ``kind``, scale 0 first."""
        return self._levels[kind]

    def level(self, kind: str, scale: int) -> Level:
        """One level; IndexError naming the valid range if absent."""
        levels = self._levels[kind]
        if not 0 <= scale < len(levels):
            raise IndexError(f"{kind} has scales 0..{len(levels) - 1}, not {scale}")
        return levels[scale]

    def attr(self, name: str, default: Any = None) -> Any:
        """A root attribute of the file (numpy scalars converted to Python)."""
        value = self._attrs.get(name, default)
        return value.item() if isinstance(value, np.generic) else value

    def set_attrs(self, **values: Any) -> None:
        """Write root attributes."""
        self._require_writable()
        self._attrs.update(values)

    # ------------------------------------------------------------------ reading
    def read_block(self, kind: str, scale: int, coord: Coord) -> NDArray[Any]:
        """Block ``coord`` of a level, clipped to the volume, as a read-only array.

        Returns
        -------
        ndarray
            Shape ``min(block_size, shape - coord * block_size)`` per axis; the
            level's dtype.  Never written by anyone after it is returned.
        """
        key: BlockKey = (kind, scale, *coord)
        arr = self.cache.get(key)
        if arr is not None:
            return arr
        with self.read_guard():
            return self._read_block(key, self.level(kind, scale), coord)

    def _read_block(self, key: BlockKey, level: Level, coord: Coord) -> NDArray[Any]:
        level.check_coord(coord)
        while True:
            staged, version = self._overlay.get_versioned(key)
            if staged is not None and staged.block is not None:
                return staged.block
            if staged is not None and staged.palette is not None:
                arr = staged.palette.decoded()
            elif staged is not None:
                assert staged.payload is not None
                arr = block_io.decode(level, coord, staged.payload)
            else:
                arr = block_io.read_stored(level, coord)
            if self._overlay.cache_if_current(key, version, arr):  # else an edit came meanwhile
                return arr

    def block_in_memory(self, kind: str, scale: int, coord: Coord) -> NDArray[Any] | None:
        """The block if memory holds it (decoded in the cache, or held by an edit
        until a checkpoint: an array, or a palette decoded here), else None.

        Never reads the file, decodes a payload nor waits for a reader's state
        (:attr:`read_guard`): cheap enough for a GUI thread.
        """
        key: BlockKey = (kind, scale, *coord)
        arr = self.cache.get(key)
        if arr is not None:
            return arr
        staged, version = self._overlay.get_versioned(key)
        if staged is None or staged.payload is not None:
            return None
        if staged.block is not None:
            return staged.block
        assert staged.palette is not None
        arr = staged.palette.decoded()
        self._overlay.cache_if_current(key, version, arr)
        return arr

    def read_palette(self, kind: str, coord: Coord) -> PaletteBlock:
        """Block ``coord`` of ``kind``'s s0 in palette form (see :meth:`read_block`).

        A palette memory holds (staged, or recently written) is returned as it
        is; a block read from the file is decoded into this thread's scratch
        block, not cached: its palette is what the caller keeps.
        """
        key: BlockKey = (kind, 0, *coord)
        palette = self._overlay.palette(key)
        if palette is not None:
            return palette
        staged = self.staged(key)
        block = self.cache.get(key)
        if block is None and staged is None:
            level = self.level(kind, 0)
            level.check_coord(coord)
            block = block_io.read_stored(level, coord, self._scratch(level))
        return PaletteBlock.of(self.read_block(kind, 0, coord) if block is None else block)

    def _scratch(self, level: Level) -> NDArray[Any] | None:
        """This thread's reusable full chunk of ``level`` (None if not block-wise)."""
        if level.codec is None:
            return None
        buf: NDArray[Any] | None = getattr(self._thread_scratch, "block", None)
        if buf is None or buf.shape != level.codec.chunk_shape or buf.dtype != level.dtype:
            buf = np.empty(level.codec.chunk_shape, level.dtype)
            self._thread_scratch.block = buf
        return buf

    def staged_palette(self, kind: str, scale: int, coord: Coord) -> PaletteBlock | None:
        """The block if it is staged in palette form, else None."""
        staged = self.staged((kind, scale, *coord))
        return None if staged is None else staged.palette

    def read_region(self, kind: str, scale: int, start: Coord, stop: Coord) -> NDArray[Any]:
        """The voxels in ``[start, stop)`` of a level, assembled from its blocks.

        Returns
        -------
        ndarray
            A new writable array of shape ``stop - start`` and the level's dtype.
        """
        level = self.level(kind, scale)
        lo = [max(0, int(a)) for a in start]
        hi = [min(int(e), n) for e, n in zip(stop, level.shape, strict=True)]
        with self.read_guard():
            out, _missing = assemble_region(lo, hi, level.block_size, level.dtype,
                                            lambda coord: self.read_block(kind, scale, coord))
        return out

    # ------------------------------------------------------------------ writing
    def encode_block(self, kind: str, scale: int, coord: Coord, block: NDArray[Any]) -> bytes:
        """Compress ``block`` (clipped shape) as the full chunk the file stores.

        Raises
        ------
        ValueError
            If the block's shape or dtype does not match the level.
        """
        return block_io.encode(self.level(kind, scale), coord, block)

    def write_payload(self, kind: str, scale: int, coord: Coord, payload: bytes) -> None:
        """Write an encoded chunk straight into the HDF5 file."""
        self._require_writable()
        block_io.write_payload(self.level(kind, scale), coord, payload)

    def write_block(self, kind: str, scale: int, coord: Coord, block: NDArray[Any]) -> None:
        """Encode and write one block into the HDF5 file (used by bulk jobs)."""
        self._require_writable()
        self.level(kind, scale).check_coord(coord)
        self.write_payload(kind, scale, coord, self.encode_block(kind, scale, coord, block))
        self._overlay.written((kind, scale, *coord))

    # ------------------------------------------------------------------ overlay
    def stage(
        self, key: BlockKey, block: NDArray[Any] | PaletteBlock, payload: bytes | None, gen: int
    ) -> None:
        """Make an edited block visible to readers before it reaches the HDF5 file.

        The swap is atomic per block: a reader gets the old array or the new
        one.  ``gen`` orders the versions of a block: an older one never
        replaces a newer one.  Without a ``payload`` the block (an array or a
        palette) is held in memory (:attr:`unencoded_nbytes`) until a
        checkpoint encodes it.
        """
        self._overlay.stage(key, block, payload, gen)

    def staged(self, key: BlockKey) -> StagedBlock | None:
        """What is staged for ``key`` (None: the file holds the block)."""
        return self._overlay.get(key)

    def restore(self, key: BlockKey, staged: StagedBlock | None) -> None:
        """Put back what :meth:`staged` returned before an edit that was refused."""
        self._overlay.restore(key, staged)

    def unstage(self, items: Iterable[tuple[BlockKey, int]]) -> None:
        """Forget staged blocks now in the file, unless restaged with a newer generation."""
        self._overlay.unstage(items)

    def staged_items(self) -> list[tuple[BlockKey, StagedBlock]]:
        """Every staged block."""
        return self._overlay.items()

    @property
    def staged_count(self) -> int:
        """Blocks staged and not yet in the file."""
        return self._overlay.count

    @property
    def unencoded_nbytes(self) -> int:
        """Bytes of the staged blocks held in memory until a checkpoint encodes them."""
        return self._overlay.unencoded_nbytes

    # ------------------------------------------------------------------ closing
    def _require_writable(self) -> None:
        if not self.writable:
            raise ReadOnlyError(f"{self.path} is open read-only")

    def flush(self) -> None:
        """Flush HDF5's buffers to the file."""
        if self.h5 is not None:
            self.h5.flush()

    def reopen(self) -> None:
        """Read the file afresh, read-only, through a handle of its own: close it,
        open it again and drop every cached and staged block (a reader after
        another process committed to it: HDF5 keeps the file's metadata in
        memory while it is open).

        Raises
        ------
        app.model.errors.FormatError
            If the file no longer opens as a pyramid.
        """
        path = self.path
        self.close()
        h5, raw = open_h5_own_handle(path, self._rollback)
        self._hold_handle(raw, self._rollback)
        try:
            self._attach(h5)
        except (OSError, KeyError, RuntimeError) as exc:
            raise FormatError(f"{path}: damaged or unreadable pyramid ({exc})") from exc

    def close(self) -> None:
        """Close the file (staged blocks not yet written are dropped: the journal keeps them)."""
        self.cache.clear()
        self._overlay.clear()
        if self.h5 is not None and self.h5.id.valid:
            self.h5.close()
        if self._own_handle is not None:
            self._own_handle.close()
            self._own_handle = None
            atexit.unregister(self.close)

    def _hold_handle(self, raw: io.RawIOBase, rollback: Path | None) -> None:
        """Keep the file object the file is read through, to close after it (at
        interpreter exit at the latest: HDF5 must let go of it before Python),
        and the rollback file :meth:`reopen` reads it through."""
        self._own_handle = raw
        self._rollback = rollback
        atexit.register(self.close)
