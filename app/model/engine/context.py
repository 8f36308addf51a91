"""The engine's side of :class:`app.model.mutations.base.EditContext`: what a
kind's plan reads (the s0 blocks, the label index, the mapping, undo data,
blobs) and the labels it may claim."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from app.model.engine.counters import Counters
from app.model.errors import InvalidMutationError
from app.model.geometry import Coord
from app.model.journal.journal import Journal
from app.model.labelmap.state import MappingState
from app.model.storage.palette_block import PaletteBlock
from app.model.storage.store import LABELS, PyramidStore


class EngineContext:
    """An :class:`EditContext` over one dataset's store, journal, counters and (in
    labelmap mode) mapping."""

    def __init__(
        self,
        store: PyramidStore,
        journal: Journal,
        counters: Counters,
        mapping: MappingState | None = None,
    ) -> None:
        self.store = store
        self.journal = journal
        self.counters = counters
        self.mapping = mapping
        self._body_sizes: dict[int, int] = {}  # (labelmap mode: bodies' voxels, as known)
        self._sizes_lock = threading.Lock()

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.store.shape

    @property
    def block_size(self) -> tuple[int, int, int]:
        return self.store.block_size

    @property
    def grid(self) -> tuple[int, int, int]:
        grid = self.store.level(LABELS, 0).grid
        return (grid[0], grid[1], grid[2])

    def read_block(self, coord: Coord) -> NDArray[np.uint64]:
        return self.store.read_block(LABELS, 0, coord)

    def read_palette(self, coord: Coord) -> PaletteBlock:
        return self.store.read_palette(LABELS, coord)

    def label_blocks(self, label: int) -> dict[Coord, int]:
        return self.journal.label_blocks(label)

    def label_size(self, label: int) -> int:
        return self.journal.label_size(label)

    def supervoxels_of(self, body: int) -> NDArray[np.uint64]:
        if self.mapping is None:
            raise InvalidMutationError(f"{self.store.path} is not a labelmap dataset")
        return self.mapping.supervoxels_of(body, lambda sv: self.journal.label_size(sv) > 0)

    def supervoxel_sizes(self, svs: NDArray[np.uint64]) -> NDArray[np.int64]:
        return self.journal.label_sizes(svs)

    def supervoxel_blocks(self, svs: NDArray[np.uint64]) -> dict[Coord, int]:
        return self.journal.labels_blocks(svs)

    def body_size(self, body: int) -> int:
        with self._sizes_lock:
            known = self._body_sizes.get(body)
        if known is not None:
            return known
        size = self.journal.labels_size(self.supervoxels_of(body))
        with self._sizes_lock:
            self._body_sizes[body] = size
        return size

    def note_body_sizes(self, sizes: Mapping[int, int | None]) -> None:
        """Bodies' voxels after a committed mutation (None: not known)."""
        with self._sizes_lock:
            for body, size in sizes.items():
                if size is None:
                    self._body_sizes.pop(body, None)
                else:
                    self._body_sizes[body] = size

    def forget_body_sizes(self) -> None:
        """Drop every known body size (the label index was rebuilt)."""
        with self._sizes_lock:
            self._body_sizes.clear()

    def body_of(self, svs: NDArray[np.uint64]) -> NDArray[np.uint64]:
        if self.mapping is None:
            raise InvalidMutationError(f"{self.store.path} is not a labelmap dataset")
        return self.mapping.body_of(svs)

    def undo_maps(self, mutation_id: int) -> dict[Coord, bytes]:
        return self.journal.undo_maps(mutation_id)

    def blob(self, ref: str) -> bytes:
        return self.journal.get_blob(ref)

    def claim_label(self, new_label: int | None) -> int:
        dtype = self.store.level(LABELS, 0).dtype
        limit = int(np.iinfo(dtype).max)
        if new_label is not None and new_label > limit:
            raise InvalidMutationError(f"new label {new_label} does not fit the {dtype} labels "
                                       f"(at most {limit})")
        label = self.counters.claim(new_label, self._in_use)
        if label > limit:
            self.counters.release(label)
            raise InvalidMutationError(f"the next free label {label} does not fit the {dtype} "
                                       f"labels (at most {limit})")
        return label

    def _in_use(self, label: int) -> bool:
        """Whether ``label`` has voxels (or, in labelmap mode, is a body)."""
        if self.journal.label_size(label) > 0:
            return True
        return self.mapping is not None and self.supervoxels_of(label).size > 0

    def release_label(self, label: int) -> None:
        self.counters.release(label)
