"""A dataset's mode and its mapping in the pyramid file.

A labelmap dataset's file carries the root attribute ``mode = "labelmap"``
(a file without it is in voxel mode) and the dataset ``/mapping``: ``(N, 2)``
uint64 ``(supervoxel, body)`` rows sorted by supervoxel, which other tools
read to get bodies.  It is chunked and not compressed, so that a checkpoint
rewrites only the chunks holding changed rows, in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from app.model.errors import FormatError
from app.model.labelmap.mapping import Mapping
from app.model.labelmap.state import MappingState

MODES = ("voxel", "labelmap")
"""A dataset's modes: labels in the voxels, or supervoxels and a mapping."""
MAPPING_DATASET = "mapping"
"""Where a labelmap file keeps its mapping."""
_CHUNK_ROWS = 1 << 15


def file_mode(attrs: Any) -> str:
    """The mode a file's root attributes name (``voxel`` without one).

    Raises
    ------
    app.model.errors.FormatError
        An unknown mode.
    """
    mode = attrs.get("mode", "voxel")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode not in MODES:
        raise FormatError(f"unknown dataset mode {mode!r}; expected {' or '.join(MODES)}")
    return mode


def read_file_mapping(h5: h5py.File) -> Mapping:
    """The mapping a labelmap file holds (empty if it has none).

    Raises
    ------
    app.model.errors.FormatError
        ``/mapping`` is not a mapping (one line naming why).
    """
    if MAPPING_DATASET not in h5:
        return Mapping.from_pairs(np.empty((0, 2), np.uint64))
    node = h5[MAPPING_DATASET]
    if not isinstance(node, h5py.Dataset):
        raise FormatError(f"{h5.filename}: /{MAPPING_DATASET} is not a dataset")
    return Mapping.from_pairs(node[...], f"{h5.filename}:/{MAPPING_DATASET}")


def write_file_mapping(
    h5: h5py.File, mapping: Mapping, changed: NDArray[np.uint64] | None = None
) -> None:
    """Write ``mapping`` to ``/mapping``.

    Parameters
    ----------
    h5 : h5py.File
        The pyramid file, writable.
    mapping : Mapping
        The whole mapping.
    changed : NDArray[uint64], shape (k,), optional
        The supervoxels whose rows may differ from the file's, if the file's
        other rows are known to equal ``mapping``'s: only the chunks holding
        those rows are written, and, when rows were added (supervoxels the
        file did not list), every chunk from the first changed row on (the
        rows after an added one move down).
    """
    pairs = mapping.pairs
    n = pairs.shape[0]
    if MAPPING_DATASET not in h5:
        h5.create_dataset(
            MAPPING_DATASET, data=pairs, maxshape=(None, 2),
            chunks=(_CHUNK_ROWS, 2), dtype=np.uint64,
        )
        return
    node = h5[MAPPING_DATASET]
    old = node.shape[0]
    if old != n:
        node.resize((n, 2))
    chunks: set[int] = set(range(-(-n // _CHUNK_ROWS)))
    if changed is not None and old <= n:
        rows = np.searchsorted(mapping.svs, changed)
        chunks = set((rows[rows < old] // _CHUNK_ROWS).tolist())
        moved_from = old if n == old else min(old, int(rows.min(initial=old)))
        chunks.update(range(moved_from // _CHUNK_ROWS, -(-n // _CHUNK_ROWS)))
    for start in (c * _CHUNK_ROWS for c in sorted(chunks)):
        node[start:start + _CHUNK_ROWS] = pairs[start:start + _CHUNK_ROWS]


def write_changed_rows(
    h5: h5py.File,
    svs: NDArray[np.uint64],
    body_of: Callable[[NDArray[np.uint64]], NDArray[np.uint64]],
    changed: NDArray[np.uint64],
) -> bool:
    """Rewrite the chunks of ``/mapping`` that hold ``changed`` supervoxels, if
    the file lists exactly ``svs`` (its rows' supervoxels, in order): the cost
    of the changes, not of the mapping.  Returns False, writing nothing, if it
    does not (a row to add, or another length): :func:`write_file_mapping`
    then.

    Parameters
    ----------
    h5 : h5py.File
        The pyramid file, writable.
    svs : NDArray[uint64], shape (n,)
        The supervoxels the file's rows list (sorted).
    body_of : callable
        The current body of each of a sorted array of supervoxels.
    changed : NDArray[uint64], shape (k,)
        Sorted supervoxels whose body may differ from the file's.
    """
    node = h5.get(MAPPING_DATASET)
    if node is None or node.shape[0] != svs.size:
        return False
    at = np.searchsorted(svs, changed)
    if changed.size and (at.max() >= svs.size or not np.array_equal(svs[at], changed)):
        return False
    for chunk in np.unique(at // _CHUNK_ROWS).tolist():
        rows = svs[chunk * _CHUNK_ROWS:(chunk + 1) * _CHUNK_ROWS]
        node[chunk * _CHUNK_ROWS:chunk * _CHUNK_ROWS + rows.size] = np.stack(
            [rows, body_of(rows)], axis=1)
    return True


def load_mapping_state(h5: h5py.File | None) -> MappingState | None:
    """The live mapping of an open pyramid file in labelmap mode (None in voxel
    mode, or for a pyramid that is not an HDF5 file).  Its kernel is loaded (or
    compiled) here, on the opening thread: not on the first read, which may
    run beside the GUI thread's work on Python's warning filters."""
    if h5 is None or file_mode(h5.attrs) != "labelmap":
        return None
    state = MappingState(read_file_mapping(h5))
    state.view().map_block(np.zeros(1, np.uint64))  # (the kernel loaded here, at opening)
    return state
