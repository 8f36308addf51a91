"""The overlay of staged blocks: edits readers see before a checkpoint writes them.

Edits go to an *overlay* of staged blocks (an encoded payload, or a block or
palette held until a checkpoint encodes it) that readers see at once;
checkpoints later write their payloads into the HDF5 file.  The engine keeps
the overlay durable in its journal.  A palette a checkpoint wrote stays in a
bounded cache of recent palettes (unless its redundant entries outgrew its
index), so that the next edit of a block just edited neither decodes it nor
builds its palette again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.model.storage.cache import BlockCache
from app.model.storage.levels import BlockKey
from app.model.storage.palette_block import PaletteBlock


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


class StagedOverlay:
    """Staged blocks by key, kept coherent with the decoded-block cache.

    Every change of a key bumps its *version*: a reader that decoded a block
    caches it only if no edit was staged meanwhile (:meth:`cache_if_current`).

    Parameters
    ----------
    cache : BlockCache of arrays
        The store's decoded-block cache, updated under the overlay's lock.
    palettes : BlockCache of palettes
        The palettes of s0 blocks the checkpoints wrote (see :meth:`palette`).
    """

    def __init__(
        self, cache: BlockCache[NDArray[Any]], palettes: BlockCache[PaletteBlock]
    ) -> None:
        self._cache = cache
        self._palettes = palettes
        self._blocks: dict[BlockKey, StagedBlock] = {}
        self._unencoded_nbytes = 0
        self._versions: dict[BlockKey, int] = {}
        self._lock = threading.Lock()

    def stage(
        self, key: BlockKey, block: NDArray[Any] | PaletteBlock, payload: bytes | None, gen: int
    ) -> None:
        """Stage ``block`` (an array, made read-only, or a palette) for ``key``,
        unless a newer generation ``gen`` is staged; held unencoded without a
        ``payload``, cached decoded with one."""
        if isinstance(block, PaletteBlock):
            assert payload is None
            staged = StagedBlock(None, gen, palette=block)
        else:
            block.flags.writeable = False
            staged = StagedBlock(payload, gen, block if payload is None else None)
        with self._lock:
            current = self._blocks.get(key)
            if current is not None and current.gen > gen:
                return
            self._put(key, staged)
            if payload is None:
                self._cache.discard(key)
            else:
                assert isinstance(block, np.ndarray)
                self._cache.put(key, block, coarse=key[1] > 0)

    def get(self, key: BlockKey) -> StagedBlock | None:
        """What is staged for ``key`` (None: the file holds the block)."""
        with self._lock:
            return self._blocks.get(key)

    def get_versioned(self, key: BlockKey) -> tuple[StagedBlock | None, int]:
        """What is staged for ``key`` and the key's version, read together."""
        with self._lock:
            return self._blocks.get(key), self._versions.get(key, 0)

    def palette(self, key: BlockKey) -> PaletteBlock | None:
        """Block ``key`` in palette form if memory holds it that way: staged, or
        written by a checkpoint and not edited since (None otherwise)."""
        with self._lock:
            staged = self._blocks.get(key)
            if staged is not None:
                return staged.palette
            return self._palettes.get(key)

    def cache_if_current(self, key: BlockKey, version: int, arr: NDArray[Any]) -> bool:
        """Cache ``arr`` as block ``key`` unless an edit was staged since ``version``;
        returns whether it did."""
        with self._lock:
            if self._versions.get(key, 0) != version:
                return False
            self._cache.put(key, arr, coarse=key[1] > 0)
            return True

    def restore(self, key: BlockKey, staged: StagedBlock | None) -> None:
        """Put back what :meth:`get` returned before an edit that was refused."""
        with self._lock:
            self._put(key, staged)
            self._cache.discard(key)

    def unstage(self, items: Iterable[tuple[BlockKey, int]]) -> None:
        """Forget staged blocks now in the file, unless restaged with a newer
        generation; an unstaged palette goes to the recent palettes unless it
        has outgrown its index (found before the lock is taken)."""
        items = list(items)
        with self._lock:
            written = [(key, gen, self._blocks.get(key)) for key, gen in items]
        keep = {
            key: staged.palette
            for key, gen, staged in written
            if staged is not None
            and staged.gen == gen
            and staged.palette is not None
            and not staged.palette.outgrown()
        }
        with self._lock:
            for key, gen in items:
                staged = self._blocks.get(key)
                if staged is None or staged.gen != gen:
                    continue
                self._put(key, None)
                if staged.block is not None:
                    self._cache.put(key, staged.block, coarse=key[1] > 0)
                elif staged.palette is not None and keep.get(key) is staged.palette:
                    self._palettes.put(key, staged.palette)

    def written(self, key: BlockKey) -> None:
        """Block ``key`` was written into the file directly (not by a
        checkpoint): forget what memory holds of it."""
        with self._lock:
            self._cache.discard(key)
            self._palettes.discard(key)
            self._versions[key] = self._versions.get(key, 0) + 1

    def items(self) -> list[tuple[BlockKey, StagedBlock]]:
        """Every staged block."""
        with self._lock:
            return list(self._blocks.items())

    @property
    def count(self) -> int:
        """Blocks staged and not yet in the file."""
        with self._lock:
            return len(self._blocks)

    @property
    def unencoded_nbytes(self) -> int:
        """Bytes of the staged blocks held in memory until a checkpoint encodes them."""
        with self._lock:
            return self._unencoded_nbytes

    def clear(self) -> None:
        """Drop every staged block (the journal keeps them) and every recent palette."""
        with self._lock:
            self._blocks.clear()
            self._unencoded_nbytes = 0
            self._palettes.clear()

    def _put(self, key: BlockKey, staged: StagedBlock | None) -> None:
        """Replace what is staged for ``key`` (under the lock)."""
        self._palettes.discard(key)
        current = self._blocks.pop(key, None)
        if current is not None:
            self._unencoded_nbytes -= current.held_nbytes
        if staged is not None:
            self._blocks[key] = staged
            self._unencoded_nbytes += staged.held_nbytes
        self._versions[key] = self._versions.get(key, 0) + 1
