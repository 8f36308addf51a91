"""The pyramid store: block I/O on an HDF5 label (and grayscale) pyramid.

Blocks move through HDF5 as whole compressed chunks (``read_direct_chunk`` /
``write_direct_chunk``), and are encoded and decoded by :mod:`app.model.codec`
outside h5py's global lock, so several threads really decode in parallel.
Datasets whose chunking or filters the codec cannot reproduce (files from other
tools) fall back to HDF5's own slicing path.

Edits go to an *overlay* of staged blocks (an encoded payload, or a block or
palette held until a checkpoint encodes it) that readers see at once;
checkpoints later write their payloads into the HDF5 file.  The engine keeps
the overlay durable in its journal.
"""

from __future__ import annotations

import itertools
import threading
import uuid as uuidlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from app.model.cache import BlockCache
from app.model.codec import BlockCodec, dataset_filter_kwargs
from app.model.errors import FormatError, ReadOnlyError
from app.model.layout import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_RULE,
    FORMAT_NAME,
    FORMAT_VERSION,
    IMAGE_GROUP,
    LABELS_GROUP,
    RULES,
    find_pyramids,
    level_shapes,
)
from app.model.palette_block import PaletteBlock

Coord = tuple[int, int, int]
BlockKey = tuple[str, int, int, int, int]
"""(kind, scale, z, y, x) with kind ``"labels"`` or ``"image"``."""

LABELS = LABELS_GROUP
IMAGE = IMAGE_GROUP


@dataclass(frozen=True)
class Level:
    """One scale of one pyramid (labels or image).

    Attributes
    ----------
    kind : str
        ``"labels"`` or ``"image"``.
    scale : int
        0 is full resolution; scale k has shape ``ceil(shape_{k-1} / 2)``.
    dataset : h5py.Dataset
        The HDF5 dataset holding it.
    block_size : tuple of int
        Block (= chunk) shape (z, y, x).
    codec : BlockCodec or None
        Direct chunk codec, or None for HDF5's own slicing path.
    shape, dtype
        The dataset's, read once (asking HDF5 costs a call under h5py's lock).
    """

    kind: str
    scale: int
    dataset: h5py.Dataset
    block_size: tuple[int, int, int]
    codec: BlockCodec | None
    shape: tuple[int, int, int]
    dtype: np.dtype[Any]

    @property
    def grid(self) -> tuple[int, int, int]:
        """Number of blocks per axis."""
        return tuple(-(-s // b) for s, b in zip(self.shape, self.block_size, strict=True))  # type: ignore[return-value]

    def block_slices(self, coord: Coord) -> tuple[slice, slice, slice]:
        """Voxel slices of block ``coord``, clipped to the volume."""
        return tuple(  # type: ignore[return-value]
            slice(c * b, min((c + 1) * b, s))
            for c, b, s in zip(coord, self.block_size, self.shape, strict=True)
        )

    def check_coord(self, coord: Coord) -> None:
        """Raise IndexError unless ``coord`` is a block of this level."""
        if len(coord) != 3 or any(not 0 <= c < g for c, g in zip(coord, self.grid, strict=True)):
            raise IndexError(
                f"block {tuple(coord)} is outside {self.kind}/s{self.scale} (grid {self.grid})"
            )

    def coords(self) -> Iterator[Coord]:
        """Every block coordinate, in z, y, x order."""
        gz, gy, gx = self.grid
        for z in range(gz):
            for y in range(gy):
                for x in range(gx):
                    yield (z, y, x)


@dataclass(frozen=True)
class StagedBlock:
    """A block written by an edit and not yet in the HDF5 file.

    Either encoded (``payload``; its decoded array lives in the bounded block
    cache, so memory does not grow with the backlog), or not yet, held here
    until a checkpoint encodes it: as an array (``block``: coarse blocks,
    rewritten by every edit below them, are encoded once per checkpoint rather
    than once per edit) or as a palette (``palette``: s0 blocks of merges, an
    eighth of the array's size, that the next merge relabels without touching
    their voxels).
    """

    payload: bytes | None
    gen: int
    block: NDArray[Any] | None = None
    palette: PaletteBlock | None = None

    @property
    def held_nbytes(self) -> int:
        """Bytes held in memory until a checkpoint encodes the block."""
        if self.block is not None:
            return int(self.block.nbytes)
        return self.palette.nbytes if self.palette is not None else 0

    def unencoded(self) -> NDArray[Any] | None:
        """The block's voxels if it is not encoded yet, else None."""
        if self.block is not None:
            return self.block
        return self.palette.decoded() if self.palette is not None else None


class PyramidStore:
    """Block-level access to a pyramid in an open HDF5 file.

    Parameters
    ----------
    h5 : h5py.File
        The open file (read-only or writable).
    cache_bytes : int
        Capacity of the decoded-block cache.

    Raises
    ------
    app.model.errors.FormatError
        If the file holds no pyramid.
    """

    def __init__(self, h5: h5py.File, *, cache_bytes: int = 256 << 20) -> None:
        self.h5 = h5
        groups = find_pyramids(h5)
        self.native = groups.native
        self.writable = h5.mode == "r+"
        s0 = h5[groups.labels[0]]
        if self.native:
            bz, by, bx = (int(v) for v in h5.attrs["block_size"])
            self.block_size: tuple[int, int, int] = (bz, by, bx)
        else:
            self.block_size = tuple(s0.chunks) if s0.chunks else DEFAULT_BLOCK_SIZE
        self._levels: dict[str, list[Level]] = {
            LABELS: [self._make_level(LABELS, i, h5[p]) for i, p in enumerate(groups.labels)],
            IMAGE: [self._make_level(IMAGE, i, h5[p]) for i, p in enumerate(groups.image)],
        }
        self._check_shapes()
        self._rule = str(h5.attrs.get("downres_rule", DEFAULT_RULE))
        self.cache = BlockCache(cache_bytes)
        self._thread_scratch = threading.local()
        self._overlay: dict[BlockKey, StagedBlock] = {}
        self._unencoded_nbytes = 0
        self._versions: dict[BlockKey, int] = {}
        self._overlay_lock = threading.Lock()

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls, path: str | Path, mode: str = "r", *, cache_bytes: int = 256 << 20
    ) -> PyramidStore:
        """Open the pyramid at ``path`` read-only (``"r"``) or for writing (``"r+"``).

        Raises
        ------
        app.model.errors.FormatError
            If the file is missing, not HDF5, corrupt, or holds no pyramid.
        """
        if mode not in ("r", "r+"):
            raise ValueError(f"mode must be 'r' or 'r+', got {mode!r}")
        h5 = open_h5(path, mode)
        try:
            return cls(h5, cache_bytes=cache_bytes)
        except (OSError, KeyError, RuntimeError) as exc:
            h5.close()
            raise FormatError(f"{path}: damaged or unreadable pyramid ({exc})") from exc
        except BaseException:
            h5.close()
            raise

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
        if rule not in RULES:
            raise ValueError(f"unknown downres rule {rule!r}; choose one of {', '.join(RULES)}")
        if image_dtype not in (None, "uint8", "uint16"):
            raise ValueError(f"grayscale must be uint8 or uint16, got {image_dtype}")
        shapes = level_shapes(shape, block_size, levels)
        filters = dataset_filter_kwargs(compression)
        with h5py.File(path, "w") as h5:
            h5.attrs.update(
                format=FORMAT_NAME,
                format_version=FORMAT_VERSION,
                block_size=np.array(block_size, dtype=np.int64),
                voxel_size_nm=np.array(voxel_size_nm, dtype=np.float64),
                downres_rule=rule,
                repo_uuid=uuidlib.uuid4().hex,
                data_uuid=uuidlib.uuid4().hex,
                max_label=0,
                next_label=1,
                next_mutation_id=1,
                checkpoint_mutation_id=0,
                created_by=created_by,
                compression=compression,
            )
            kinds = [(LABELS, label_dtype)] + ([(IMAGE, image_dtype)] if image_dtype else [])
            for kind, dtype in kinds:
                group = h5.create_group(kind)
                for i, s in enumerate(shapes):
                    chunks = tuple(min(b, n) for b, n in zip(block_size, s, strict=True))
                    group.create_dataset(
                        f"s{i}", shape=s, dtype=dtype, chunks=chunks, fillvalue=0, **filters
                    )
        return cls.open(path, "r+", cache_bytes=cache_bytes)

    def _make_level(self, kind: str, scale: int, dset: h5py.Dataset) -> Level:
        codec = BlockCodec.for_dataset(dset)
        one_block = tuple(min(b, n) for b, n in zip(self.block_size, dset.shape, strict=True))
        if codec is not None and codec.chunk_shape != one_block:
            codec = None
        sz, sy, sx = (int(v) for v in dset.shape)
        return Level(kind, scale, dset, self.block_size, codec, (sz, sy, sx), np.dtype(dset.dtype))

    def _check_shapes(self) -> None:
        for kind, levels in self._levels.items():
            for prev, nxt in itertools.pairwise(levels):
                want = tuple(-(-s // 2) for s in prev.shape)
                if nxt.shape != want:
                    raise FormatError(
                        f"{self.h5.filename}: {kind} scale {nxt.scale} has shape {nxt.shape}, "
                        f"expected {want} (half of scale {prev.scale})"
                    )
        image = self._levels[IMAGE]
        if image and image[0].shape != self._levels[LABELS][0].shape:
            raise FormatError(
                f"{self.h5.filename}: grayscale shape {image[0].shape} differs from "
                f"labels shape {self._levels[LABELS][0].shape}"
            )

    # --------------------------------------------------------------- properties
    @property
    def path(self) -> Path:
        """The HDF5 file's path."""
        return Path(self.h5.filename)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel shape of s0 (z, y, x)."""
        return self._levels[LABELS][0].shape

    @property
    def rule(self) -> str:
        """The downres rule stored in the file (``labelmap`` for foreign files)."""
        return self._rule

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
        value = self.h5.attrs.get(name, default)
        return value.item() if isinstance(value, np.generic) else value

    def set_attrs(self, **values: Any) -> None:
        """Write root attributes."""
        self._require_writable()
        self.h5.attrs.update(values)

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
        level = self.level(kind, scale)
        level.check_coord(coord)
        while True:
            with self._overlay_lock:
                staged = self._overlay.get(key)
                version = self._versions.get(key, 0)
            if staged is not None and staged.block is not None:
                return staged.block
            if staged is not None and staged.palette is not None:
                arr = staged.palette.decoded()
            elif staged is not None:
                assert staged.payload is not None
                arr = self.decode_payload(kind, scale, coord, staged.payload)
            else:
                arr = self._read_from_file(level, coord)
            with self._overlay_lock:  # keep it unless an edit was staged meanwhile
                if self._versions.get(key, 0) == version:
                    self.cache.put(key, arr, coarse=scale > 0)
                    return arr

    def block_in_memory(self, kind: str, scale: int, coord: Coord) -> NDArray[Any] | None:
        """The block if memory holds it (decoded in the cache, or held by an edit
        until a checkpoint: an array, or a palette decoded here), else None.

        Never reads the file nor decodes a payload: cheap enough for a GUI thread.
        """
        key: BlockKey = (kind, scale, *coord)
        arr = self.cache.get(key)
        if arr is not None:
            return arr
        staged = self.staged(key)
        if staged is None or staged.payload is not None:
            return None
        return self.read_block(kind, scale, coord)

    def read_palette(self, kind: str, coord: Coord) -> PaletteBlock:
        """Block ``coord`` of ``kind``'s s0 in palette form (see :meth:`read_block`).

        A block read from the file is decoded into this thread's scratch block,
        not cached: its palette is what the caller keeps.
        """
        key: BlockKey = (kind, 0, *coord)
        staged = self.staged(key)
        if staged is not None and staged.palette is not None:
            return staged.palette
        block = self.cache.get(key)
        if block is None and staged is None:
            level = self.level(kind, 0)
            level.check_coord(coord)
            block = self._read_from_file(level, coord, self._scratch(level))
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

    def _read_from_file(
        self, level: Level, coord: Coord, scratch: NDArray[Any] | None = None
    ) -> NDArray[Any]:
        """The block as the file holds it; decoded into ``scratch`` (a full chunk) if given."""
        slices = level.block_slices(coord)
        if level.codec is None:
            try:
                return np.ascontiguousarray(level.dataset[slices])
            except OSError as exc:
                raise FormatError(
                    f"{self.h5.filename}: cannot read {level.kind}/s{level.scale} block {coord} "
                    f"({exc})"
                ) from exc
        try:
            payload = _read_chunk(level, coord)
        except _SkippedFilters:  # let HDF5 decode the odd chunk itself
            return np.ascontiguousarray(level.dataset[slices])
        except OSError as exc:
            raise FormatError(
                f"{self.h5.filename}: cannot read {level.kind}/s{level.scale} block {coord} ({exc})"
            ) from exc
        if payload is None:  # never written: the fill value
            return np.full(
                tuple(s.stop - s.start for s in slices), level.dataset.fillvalue, level.dtype
            )
        return self.decode_payload(level.kind, level.scale, coord, payload, scratch)

    def read_region(self, kind: str, scale: int, start: Coord, stop: Coord) -> NDArray[Any]:
        """The voxels in ``[start, stop)`` of a level, assembled from its blocks.

        Returns
        -------
        ndarray
            A new writable array of shape ``stop - start`` and the level's dtype.
        """
        level = self.level(kind, scale)
        start = tuple(max(0, int(a)) for a in start)  # type: ignore[assignment]
        stop = tuple(min(int(b), s) for b, s in zip(stop, level.shape, strict=True))  # type: ignore[assignment]
        out = np.zeros(tuple(max(0, b - a) for a, b in zip(start, stop, strict=True)), level.dtype)
        if out.size == 0:
            return out
        bs = level.block_size
        ranges = [range(a // b, (e - 1) // b + 1) for a, e, b in zip(start, stop, bs, strict=True)]
        for bz in ranges[0]:
            for by in ranges[1]:
                for bx in ranges[2]:
                    coord = (bz, by, bx)
                    block = self.read_block(kind, scale, coord)
                    lo = [max(a, c * b) for a, c, b in zip(start, coord, bs, strict=True)]
                    hi = [
                        min(e, c * b + n)
                        for e, c, b, n in zip(stop, coord, bs, block.shape, strict=True)
                    ]
                    src = tuple(
                        slice(lo_ - c * b, hi_ - c * b)
                        for lo_, hi_, c, b in zip(lo, hi, coord, bs, strict=True)
                    )
                    dst = tuple(
                        slice(lo_ - a, hi_ - a) for lo_, hi_, a in zip(lo, hi, start, strict=True)
                    )
                    out[dst] = block[src]
        return out

    # ------------------------------------------------------------------ writing
    def encode_block(self, kind: str, scale: int, coord: Coord, block: NDArray[Any]) -> bytes:
        """Compress ``block`` (clipped shape) as the full chunk the file stores.

        Raises
        ------
        ValueError
            If the block's shape or dtype does not match the level.
        """
        level = self.level(kind, scale)
        want = tuple(s.stop - s.start for s in level.block_slices(coord))
        if block.shape != want or block.dtype != level.dtype:
            raise ValueError(
                f"{kind}/s{scale} block {coord} must be {level.dtype} of shape {want}, "
                f"got {block.dtype} of shape {block.shape}"
            )
        if level.codec is None:
            raise FormatError(f"{kind}/s{scale} of {self.h5.filename} cannot be written block-wise")
        if block.shape != level.codec.chunk_shape:
            full = np.zeros(level.codec.chunk_shape, level.dtype)
            full[tuple(slice(0, n) for n in block.shape)] = block
            block = full
        return level.codec.encode(block)

    def write_payload(self, kind: str, scale: int, coord: Coord, payload: bytes) -> None:
        """Write an encoded chunk straight into the HDF5 file."""
        self._require_writable()
        level = self.level(kind, scale)
        offset = tuple(c * b for c, b in zip(coord, level.block_size, strict=True))
        level.dataset.id.write_direct_chunk(offset, payload)

    def write_block(self, kind: str, scale: int, coord: Coord, block: NDArray[Any]) -> None:
        """Encode and write one block into the HDF5 file (used by bulk jobs)."""
        self._require_writable()
        self.level(kind, scale).check_coord(coord)
        self.write_payload(kind, scale, coord, self.encode_block(kind, scale, coord, block))
        self.cache.discard((kind, scale, *coord))

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
        if isinstance(block, PaletteBlock):
            assert payload is None
            staged = StagedBlock(None, gen, palette=block)
        else:
            block.flags.writeable = False
            staged = StagedBlock(payload, gen, block if payload is None else None)
        with self._overlay_lock:
            current = self._overlay.get(key)
            if current is not None and current.gen > gen:
                return
            self._put_staged(key, staged)
            if payload is None:
                self.cache.discard(key)
            else:
                assert isinstance(block, np.ndarray)
                self.cache.put(key, block, coarse=key[1] > 0)

    def _put_staged(self, key: BlockKey, staged: StagedBlock | None) -> None:
        """Replace what is staged for ``key`` (under the overlay lock)."""
        current = self._overlay.pop(key, None)
        if current is not None:
            self._unencoded_nbytes -= current.held_nbytes
        if staged is not None:
            self._overlay[key] = staged
            self._unencoded_nbytes += staged.held_nbytes
        self._versions[key] = self._versions.get(key, 0) + 1

    def staged(self, key: BlockKey) -> StagedBlock | None:
        """What is staged for ``key`` (None: the file holds the block)."""
        with self._overlay_lock:
            return self._overlay.get(key)

    def restore(self, key: BlockKey, staged: StagedBlock | None) -> None:
        """Put back what :meth:`staged` returned before an edit that was refused."""
        with self._overlay_lock:
            self._put_staged(key, staged)
            self.cache.discard(key)

    def unstage(self, items: Iterable[tuple[BlockKey, int]]) -> None:
        """Forget staged blocks now in the file, unless restaged with a newer generation."""
        with self._overlay_lock:
            for key, gen in items:
                staged = self._overlay.get(key)
                if staged is not None and staged.gen == gen:
                    self._put_staged(key, None)
                    if staged.block is not None:
                        self.cache.put(key, staged.block, coarse=key[1] > 0)

    def staged_items(self) -> list[tuple[BlockKey, StagedBlock]]:
        """Every staged block."""
        with self._overlay_lock:
            return list(self._overlay.items())

    @property
    def staged_count(self) -> int:
        """Blocks staged and not yet in the file."""
        with self._overlay_lock:
            return len(self._overlay)

    @property
    def unencoded_nbytes(self) -> int:
        """Bytes of the staged blocks held in memory until a checkpoint encodes them."""
        with self._overlay_lock:
            return self._unencoded_nbytes

    def decode_payload(
        self,
        kind: str,
        scale: int,
        coord: Coord,
        payload: bytes,
        scratch: NDArray[Any] | None = None,
    ) -> NDArray[Any]:
        """Decode an encoded chunk of a block to its clipped shape (a view of
        ``scratch``, a full chunk, if given).

        Raises
        ------
        app.model.errors.FormatError
            If the payload is corrupt.
        """
        level = self.level(kind, scale)
        if level.codec is None:
            raise FormatError(f"{kind}/s{scale} of {self.h5.filename} is not stored block-wise")
        sl = level.block_slices(coord)
        try:
            full = level.codec.decode(payload, scratch)
        except Exception as exc:  # codec libraries raise assorted types on corrupt input
            raise FormatError(
                f"{self.h5.filename}: {kind}/s{scale} block {coord} is corrupt ({exc})"
            ) from exc
        return full[tuple(slice(0, s.stop - s.start) for s in sl)]

    def _require_writable(self) -> None:
        if not self.writable:
            raise ReadOnlyError(f"{self.h5.filename} is open read-only")

    def flush(self) -> None:
        """Flush HDF5's buffers to the file."""
        self.h5.flush()

    def close(self) -> None:
        """Close the file (staged blocks not yet written are dropped: the journal keeps them)."""
        self.cache.clear()
        with self._overlay_lock:
            self._overlay.clear()
            self._unencoded_nbytes = 0
        if self.h5.id.valid:
            self.h5.close()


def _read_chunk(level: Level, coord: Coord) -> bytes | None:
    """The stored bytes of one chunk, or None if it was never written.

    Raises
    ------
    _SkippedFilters
        If HDF5 stored the chunk without some of its filters (a writer may skip
        an optional filter, e.g. Blosc on incompressible data).
    """
    offset = tuple(c * b for c, b in zip(coord, level.block_size, strict=True))
    if level.dataset.id.get_chunk_info_by_coord(offset).byte_offset is None:
        return None
    mask, payload = level.dataset.id.read_direct_chunk(offset)
    if mask:
        raise _SkippedFilters
    return bytes(payload)


class _SkippedFilters(Exception):
    """A chunk was stored with some of the dataset's filters skipped."""


def open_h5(path: str | Path, mode: str) -> h5py.File:
    """Open an HDF5 file, turning every failure into a FormatError naming the file.

    segmend opens without HDF5's own file lock: readers must be allowed while
    a writer works (segmend enforces one writer itself, with its own lock).
    """
    p = Path(path)
    if not p.exists():
        raise FormatError(f"{p}: no such file")
    if not h5py.is_hdf5(p):
        raise FormatError(f"{p}: not an HDF5 file")
    try:
        return h5py.File(p, mode, locking=False)
    except OSError as exc:
        raise FormatError(f"{p}: cannot open HDF5 file ({exc})") from exc
