"""A label block held as a palette (DVID labelarray's form): a merge rewrites
the palette, not the voxels; a split rewrites the index inside its region only
(and, where the region covers the whole block, the palette only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels import gather, index_dtype, palettize, rles_cover_box, split_index


@dataclass(frozen=True)
class PaletteBlock:
    """One s0 block as ``labels[index]``.

    Entries of ``labels`` need not be distinct: a merge maps several entries to
    one label and keeps ``index`` as it was, so the voxels are never touched; a
    split adds an entry (one over the whole block relabels, as a merge does).
    Immutable: every edit makes a new one (a merge shares ``index`` with the
    block it came from).

    Attributes
    ----------
    labels : NDArray, shape (k,), the level's dtype
        Label of each entry.
    index : NDArray[uint8 | uint16 | uint32], the block's (clipped) shape
        Read-only; each voxel's entry.
    counts : NDArray[int64], shape (k,)
        Voxels of each entry.
    """

    labels: NDArray[Any]
    index: NDArray[Any]
    counts: NDArray[np.int64]

    @classmethod
    def of(cls, block: NDArray[Any]) -> PaletteBlock:
        """The palette form of a decoded block (one pass over its voxels)."""
        labels, index, counts = palettize(block)
        index.flags.writeable = False
        return cls(labels, index, counts)

    @property
    def shape(self) -> tuple[int, ...]:
        """The block's shape."""
        return tuple(self.index.shape)

    @property
    def nbytes(self) -> int:
        """Bytes held (the index and the palette)."""
        return int(self.index.nbytes + self.labels.nbytes + self.counts.nbytes)

    def outgrown(self) -> bool:
        """Whether its index is wider than a palette built afresh from its voxels
        would need: its redundant entries (labels merged into one, entries that
        splits emptied) have outgrown it."""
        distinct = np.unique(self.labels[self.counts > 0]).size
        return self.index.dtype.itemsize > index_dtype(max(distinct - 1, 0)).itemsize

    def decoded(self) -> NDArray[Any]:
        """The block's voxels: a new read-only array of :attr:`shape`."""
        block = gather(self.labels, self.index)
        block.flags.writeable = False
        return block

    def merged(
        self, sources: NDArray[Any], codes: NDArray[Any], target: int, *, undo: bool = True
    ) -> tuple[PaletteBlock | None, int, NDArray[Any] | None]:
        """The block with every voxel of ``sources`` set to ``target``.

        Parameters
        ----------
        sources : NDArray, shape (n,), the labels' dtype
            Sorted, distinct; without ``target``.
        codes : NDArray[unsigned], shape (n,)
            Non-zero undo code of each source (see :func:`app.kernels.relabel_indexed`).

        Returns
        -------
        block : PaletteBlock or None
            None if no voxel changed.
        changed : int
            Voxels relabelled.
        index : NDArray of ``codes``' dtype, :attr:`shape`, or None
            With ``undo`` (and a change), per voxel, the code of the source it
            held (0 for the others): the undo map
            :func:`app.kernels.relabel_indexed` makes.
        """
        pos = np.minimum(np.searchsorted(sources, self.labels), sources.size - 1)
        hit = sources[pos] == self.labels
        changed = int(self.counts[hit].sum())
        if not changed:
            return None, 0, None
        labels = self.labels.copy()
        labels[hit] = target
        merged = PaletteBlock(labels, self.index, self.counts)
        if not undo:
            return merged, changed, None
        entry_codes = np.where(hit, codes[pos], 0).astype(codes.dtype)
        return merged, changed, gather(entry_codes, self.index)

    def split(
        self,
        spans: NDArray[np.integer[Any]],
        origin: tuple[int, int, int],
        target: int,
        label: int,
    ) -> tuple[PaletteBlock | None, int]:
        """The block with the voxels of ``target`` inside ``spans`` set to ``label``.

        Parameters
        ----------
        spans : NDArray[integer], shape (n, 4)
            RLE rows ``(x, y, z, length)`` in volume coordinates (clipped to the block).
        origin : tuple of 3 int
            Volume coordinate (z, y, x) of the block's first voxel.
        target, label : int
            The split body and its new label (fits :attr:`labels`' dtype).

        Returns
        -------
        block : PaletteBlock or None
            None if no voxel changed; else one more entry (``label``), or,
            if the spans cover the whole block, the target's entries
            relabelled (the index shared, as a merge does).
        changed : int
            Voxels moved to ``label``.
        """
        hit = self.labels == target
        if not hit.any():
            return None, 0
        if rles_cover_box(spans, origin, self.shape):  # all of the block: its target entries
            changed = int(self.counts[hit].sum())
            if not changed:
                return None, 0
            labels = self.labels.copy()
            labels[hit] = label
            return PaletteBlock(labels, self.index, self.counts), changed
        index, moved = split_index(self.index, hit, spans, origin)
        changed = int(moved.sum())
        if not changed:
            return None, 0
        index.flags.writeable = False
        labels = np.append(self.labels, np.array([label], self.labels.dtype))
        return PaletteBlock(labels, index, np.append(self.counts - moved, changed)), changed
