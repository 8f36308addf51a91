"""The read side of a dataset: shapes, lazily read levels, the label index, the
mapping (labelmap mode), the mutation log.  :class:`app.model.dataset.Dataset`
adds opening, editing, checkpoints and closing; every method here works on a
read-only dataset too.

In labelmap mode the voxels hold supervoxels; reads of ``"labels"`` give bodies
(the mapping applied, as DVID's default), reads of ``"supervoxels"`` the raw
ids, and sizes and blocks of a body sum those of its supervoxels."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.model.bodies import Body, index_bodies, mapped_bodies
from app.model.engine import MutationEngine
from app.model.engine.counters import Counters
from app.model.errors import FormatError, SegmendError
from app.model.events.outbox import backlog
from app.model.geometry import Coord
from app.model.journal.journal import Journal
from app.model.labelmap.mapped_blocks import MappedBlocks, map_with
from app.model.labelmap.state import MappingState
from app.model.mutations import Mutation, is_known, record_from_json
from app.model.read_snapshot import ReadSnapshot
from app.model.storage.arrays import LevelArray
from app.model.storage.layout import SUPERVOXELS
from app.model.storage.store import IMAGE, LABELS, PyramidStore


class DatasetReads:
    """What an open dataset lets one read (a base of :class:`Dataset`)."""

    path: Path
    store: PyramidStore
    _journal: Journal | None
    _engine: MutationEngine | None
    _snapshot: ReadSnapshot | None
    _mapping: MappingState | None
    _mapped: MappedBlocks | None = None

    def _use_mapping(self, mapping: MappingState | None) -> None:
        """Read through ``mapping`` (labelmap mode; None: voxel mode), keeping
        mapped blocks in as many bytes as the block cache's."""
        self._mapping = mapping
        self._mapped = None if mapping is None else MappedBlocks(
            mapping, self.store.cache.capacity_bytes)

    def snapshot(self) -> AbstractContextManager[object]:
        """Read inside ``with ds.snapshot():`` to see one state throughout: every
        level, the label index and the mutation log as of one mutation, whatever
        a writer in another process does meanwhile.  Each read call holds one
        on its own; this spans several.  Re-entrant; on a writable dataset
        reads always see its own latest edits, and this does nothing."""
        return nullcontext() if self._snapshot is None else self._snapshot.hold()

    @property
    def shape(self) -> tuple[int, int, int]:
        """s0 shape (z, y, x)."""
        return self.store.shape

    @property
    def block_size(self) -> tuple[int, int, int]:
        """Block shape (z, y, x)."""
        return self.store.block_size

    @property
    def n_scales(self) -> int:
        """Number of label scales."""
        return len(self.store.levels(LABELS))

    @property
    def has_image(self) -> bool:
        """True if the dataset has grayscale."""
        return self.store.has_image

    @property
    def n_image_scales(self) -> int:
        """Number of grayscale scales (0 without grayscale)."""
        return len(self.store.levels(IMAGE))

    @property
    def image_dtype(self) -> np.dtype[Any] | None:
        """The grayscale element type, or None without grayscale."""
        levels = self.store.levels(IMAGE)
        return levels[0].dtype if levels else None

    @property
    def native(self) -> bool:
        """True for a segmend pyramid; False for another tool's (read-only)."""
        return self.store.native

    @property
    def labelmap(self) -> bool:
        """True in labelmap mode (supervoxels in the voxels, bodies by a mapping)."""
        return self._mapping is not None

    def read_block(self, kind: str, scale: int, coord: Coord) -> NDArray[Any]:
        """One block (``kind`` ``"labels"``, ``"supervoxels"`` or ``"image"``),
        clipped to the volume, read through the block cache; read-only.  Blocks
        of bodies are kept, mapped, while the block and the mapping stay
        unchanged (:mod:`app.model.labelmap.mapped_blocks`)."""
        block = self.store.read_block(LABELS if kind == SUPERVOXELS else kind, scale, coord)
        return self._block_bodies(scale, coord, block) if kind == LABELS else block

    def cached_block(self, kind: str, scale: int, coord: Coord) -> NDArray[Any] | None:
        """The block if it is in memory (see :meth:`PyramidStore.block_in_memory`),
        else None; never reads the file.  Cheap enough for the GUI thread in
        either view: a block of bodies mapped before (by this mapping) is not
        mapped again."""
        block = self.store.block_in_memory(LABELS if kind == SUPERVOXELS else kind, scale, coord)
        if kind != LABELS or block is None:
            return block
        return self._block_bodies(scale, coord, block)

    def _block_bodies(self, scale: int, coord: Coord, block: NDArray[Any]) -> NDArray[Any]:
        """Block ``coord`` of the labels at ``scale`` (``block``, as the store
        serves it) in bodies: mapped once per block and mapping version."""
        if self._mapped is None:
            return block
        return self._mapped.bodies((LABELS, scale, *coord), block)

    def _bodies(self, labels: NDArray[Any]) -> NDArray[Any]:
        """Voxel labels (an array, or one voxel's scalar) as bodies (in labelmap
        mode: a new read-only array, or a scalar)."""
        if self._mapping is None:
            return labels
        values = np.asarray(labels)
        bodies = map_with(self._mapping.view(), values)
        return bodies[()] if not values.ndim else bodies

    def cache_capacity(self) -> int:
        """Bytes of decoded blocks the block cache holds at most."""
        return self.store.cache.capacity_bytes

    @property
    def uuid(self) -> str:
        """The data UUID (the data instance's, part of the Kafka topic)."""
        return str(self.store.attr("data_uuid", ""))

    @property
    def version_uuid(self) -> str:
        """The version (repo node) UUID that records and events carry, as DVID's
        ``UUIDFromVersion``: segmend keeps one version, the repo's root."""
        return self.repo_uuid

    @property
    def repo_uuid(self) -> str:
        """The repository UUID (part of the Kafka topic)."""
        return str(self.store.attr("repo_uuid", ""))

    def labels(self, scale: int = 0) -> LevelArray:
        """Labels at ``scale`` (bodies, in labelmap mode) as a lazily read
        array-like (uint64, z y x)."""
        return LevelArray(self.store, LABELS, scale, self._bodies if self.labelmap else None)

    def supervoxels(self, scale: int = 0) -> LevelArray:
        """The voxels' own labels at ``scale``: supervoxels in labelmap mode (the
        labels, in voxel mode), as a lazily read array-like (z y x)."""
        return LevelArray(self.store, LABELS, scale)

    def mapping(self, svs: NDArray[np.integer[Any]] | list[int]) -> NDArray[np.uint64]:
        """The bodies of supervoxels ``svs`` (1D; an unmapped one is its own body)."""
        with self.snapshot():
            return self._live_mapping().body_of(svs)

    def mapping_pairs(self) -> NDArray[np.uint64]:
        """The whole mapping: ``(n, 2)`` uint64 ``(supervoxel, body)`` rows, sorted."""
        with self.snapshot():
            return self._live_mapping().view().pairs()

    def supervoxels_of(self, body: int) -> NDArray[np.uint64]:
        """The supervoxels of ``body`` that have voxels, sorted (empty: no such body;
        the mapping may name others, absent from the volume)."""
        with self.snapshot():
            svs = self._body_supervoxels(int(body))
            return svs[self._index().label_sizes(svs) > 0]

    def _body_supervoxels(self, body: int) -> NDArray[np.uint64]:
        index = self._index()
        return self._live_mapping().supervoxels_of(body, lambda sv: index.label_size(sv) > 0)

    def _live_mapping(self) -> MappingState:
        if self._mapping is None:
            raise SegmendError(f"{self.path} is in voxel mode: it has no supervoxel mapping")
        return self._mapping

    def image(self, scale: int = 0) -> LevelArray:
        """Grayscale at ``scale`` as a lazily read array-like."""
        if not self.store.has_image:
            raise FormatError(f"{self.path} has no grayscale")
        return LevelArray(self.store, IMAGE, scale)

    def label_size(self, label: int, *, supervoxels: bool = False) -> int:
        """Voxels of ``label`` at s0 (0 if none), from the label index: of a body
        (the sum over its supervoxels) in labelmap mode, of a supervoxel with
        ``supervoxels``."""
        with self.snapshot():
            if self._mapping is None or supervoxels:
                return self._index().label_size(int(label))
            return self._index().labels_size(self._body_supervoxels(int(label)))

    def label_blocks(self, label: int) -> dict[Coord, int]:
        """s0 blocks holding ``label`` (a body, in labelmap mode) → its voxel count
        in each."""
        with self.snapshot():
            if self._mapping is None:
                return self._index().label_blocks(int(label))
            return self._index().labels_blocks(self._body_supervoxels(int(label)))

    def supervoxel_sizes(self, svs: NDArray[np.uint64]) -> NDArray[np.int64]:
        """Voxels at s0 of each supervoxel of ``svs`` (1D uint64), from the label
        index (the labels' own, in voxel mode); int64, shape of ``svs``."""
        with self.snapshot():
            return self._index().label_sizes(np.asarray(svs, np.uint64))

    def supervoxel_blocks(self, svs: NDArray[np.uint64]) -> dict[Coord, int]:
        """s0 blocks holding any supervoxel of ``svs`` (1D uint64) → their voxels in
        each, from the label index."""
        with self.snapshot():
            return self._index().labels_blocks(np.asarray(svs, np.uint64))

    def bodies(self, *, by: str = "size", top: int | None = None) -> list[Body]:
        """The bodies of the label index (label, voxels, blocks), largest first by
        ``by`` (``"size"``: voxels, ``"blocks"``: s0 blocks), ties by label; at most
        ``top`` of them.  Reads the index only, never the volume (in labelmap
        mode, with the mapping applied to its supervoxels)."""
        with self.snapshot():
            conn = self._index().connection
            if self._mapping is None:
                return index_bodies(conn, by=by, top=top)
            return mapped_bodies(conn, self._mapping.view().body_of, by=by, top=top)

    @property
    def max_label(self) -> int:
        """The largest label present or ever handed out."""
        if self._engine is not None:
            return self._engine.counters.max_label
        with self.snapshot():
            return Counters.load(self._journal, self.store).max_label

    @property
    def next_free_label(self) -> int:
        """The label an allocation would hand out next (:meth:`Dataset.next_label`
        reserves labels)."""
        if self._engine is not None:
            return self._engine.counters.next_label
        with self.snapshot():
            return Counters.load(self._journal, self.store).next_label

    def outbox_pending(self) -> int:
        """Kafka events in the outbox, not yet sent."""
        with self.snapshot():
            return backlog(self._journal.connection) if self._journal else 0

    def mutation_count(self) -> int:
        """Number of recorded mutations."""
        with self.snapshot():
            return self._journal.mutation_count() if self._journal else 0

    def mutations(self, since: int = 0, state: str | None = None) -> list[dict[str, Any]]:
        """The mutation log after ``since`` (records with DVID field names), only
        those in ``state`` if given (``"done"``: completed, every level written)."""
        with self.snapshot():
            return self._journal.mutations(since, state) if self._journal else []

    def history(self, since: int = 0) -> list[Mutation]:
        """The mutation log after ``since`` as typed records (those of kinds this
        version knows)."""
        return [record_from_json(row) for row in self.mutations(since) if is_known(row)]

    def blob(self, ref: str) -> bytes:
        """Bytes in the dataset's blob store (e.g. a split's RLE spans); KeyError if absent."""
        if self._journal is None:
            raise KeyError(f"no blob {ref}: {self.path} has no journal")
        return self._journal.get_blob(ref)

    @property
    def can_undo(self) -> bool:
        """True if there is a mutation to undo."""
        with self.snapshot():
            return bool(self._journal and self._journal.get_json("undo_stack", []))

    @property
    def can_redo(self) -> bool:
        """True if there is an undone mutation to redo."""
        with self.snapshot():
            return bool(self._journal and self._journal.get_json("redo_stack", []))

    def _index(self) -> Journal:
        if self._journal is None or self._journal.get_meta("index_built") is None:
            raise SegmendError(
                f"{self.path} has no label index yet; open it for writing once (or run "
                "'segmend reindex') to build it"
            )
        return self._journal
