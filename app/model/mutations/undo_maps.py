"""Undo data of a merge: per s0 block, which merged label each relabelled voxel held.

A merge of labels ``L`` (sorted) into a target keeps, per block it changed, the
index map that :func:`app.kernels.relabel_indexed` makes, and
:meth:`app.model.storage.palette_block.PaletteBlock.merged` too (``k + 1`` where the
voxel held ``L[k]``, 0 elsewhere), compressed.  The map is 1/8 the size of the block
for up to 255 labels, so an undo map costs little to make and to journal.
"""

from __future__ import annotations

from typing import Any

import blosc
import numpy as np
from numpy.typing import NDArray

from app.kernels import index_dtype
from app.model.errors import FormatError


def encode_undo_map(index: NDArray[Any]) -> bytes:
    """Compress an index map (C-contiguous, any shape) from :func:`relabel_indexed`."""
    data: Any = np.ascontiguousarray(index)
    return bytes(
        blosc.compress(
            memoryview(data),
            typesize=data.dtype.itemsize,
            clevel=5,
            shuffle=blosc.NOSHUFFLE,
            cname="lz4",
        )
    )


def decode_undo_map(payload: bytes, shape: tuple[int, ...], n_labels: int) -> NDArray[Any]:
    """The index map of a block of ``shape`` whose merge moved ``n_labels`` labels.

    Returns
    -------
    NDArray[uint8 | uint16 | uint32 | uint64], shape ``shape``
        Read-only; dtype :func:`app.kernels.index_dtype` ``(n_labels)``.

    Raises
    ------
    app.model.errors.FormatError
        If the payload is corrupt or of another size.
    """
    dtype = index_dtype(n_labels)
    try:
        raw = blosc.decompress(payload)
    except Exception as exc:  # blosc raises assorted types on corrupt input
        raise FormatError(f"undo map is corrupt ({exc})") from exc
    want = int(np.prod(shape)) * dtype.itemsize
    if len(raw) != want:
        raise FormatError(f"undo map holds {len(raw)} bytes, expected {want}")
    return np.frombuffer(raw, dtype).reshape(shape)
