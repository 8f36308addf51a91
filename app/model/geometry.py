"""Block geometry shared by the model and its callers.

Block coordinates, the blocks a box of voxels touches, the assembly of a box
from its blocks, and the normalisation of a NumPy basic index into per-axis
ranges: written once here, used by the store, the array views and the UI's
lazy levels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

Coord = tuple[int, int, int]
"""A block's (z, y, x) index in its level's block grid."""

Item = range | int
"""One axis of an index: the range of positions kept, or one position (axis dropped)."""


def block_ranges(start: Sequence[int], stop: Sequence[int],
                 block_size: Sequence[int]) -> list[range]:
    """Per axis, the block indices that the voxel box ``[start, stop)`` touches.

    An axis with ``stop <= start`` gives an empty range.
    """
    return [range(a // b, (e - 1) // b + 1) if e > a else range(0)
            for a, e, b in zip(start, stop, block_size, strict=True)]


def blocks_in_box(start: Sequence[int], stop: Sequence[int],
                  block_size: Sequence[int]) -> list[Coord]:
    """The blocks that the voxel box ``[start, stop)`` touches, in z, y, x order."""
    rz, ry, rx = block_ranges(start, stop, block_size)
    return [(z, y, x) for z in rz for y in ry for x in rx]


def centre_first(coords: Sequence[Coord], block_size: Sequence[int],
                 centre: Sequence[float]) -> list[Coord]:
    """``coords`` ordered by the distance of their block's centre to ``centre``
    (voxels), ties in z, y, x order."""

    def distance(c: Coord) -> tuple[float, Coord]:
        return sum(((i + 0.5) * b - m) ** 2
                   for i, b, m in zip(c, block_size, centre, strict=True)), c

    return sorted(coords, key=distance)


def assemble_region(start: Sequence[int], stop: Sequence[int], block_size: Sequence[int],
                    dtype: Any, block: Callable[[Coord], NDArray[Any] | None],
                    ) -> tuple[NDArray[Any], list[Coord]]:
    """The voxels in ``[start, stop)``, copied from the blocks that hold them.

    Parameters
    ----------
    start, stop : sequence of 3 int
        The box, in voxels, inside the volume.
    block_size : sequence of 3 int
        The block shape (z, y, x); the blocks of the last row may be smaller.
    dtype : numpy dtype
        Element type of the result.
    block : callable
        ``block(coord)``: the block (clipped to the volume), or None if it is
        not available (its part of the box stays zero).

    Returns
    -------
    out : ndarray, shape ``stop - start``, ``dtype``
        A new writable array.
    missing : list of Coord
        The blocks ``block`` returned None for, in z, y, x order.
    """
    out = np.zeros(tuple(max(0, e - a) for a, e in zip(start, stop, strict=True)), dtype)
    missing: list[Coord] = []
    if out.size == 0:
        return out, missing
    for coord in blocks_in_box(start, stop, block_size):
        data = block(coord)
        if data is None:
            missing.append(coord)
            continue
        lo = [max(a, c * b) for a, c, b in zip(start, coord, block_size, strict=True)]
        hi = [min(e, c * b + n) for e, c, b, n in zip(stop, coord, block_size, data.shape,
                                                       strict=True)]
        if any(h <= low for low, h in zip(lo, hi, strict=True)):
            continue
        src = tuple(slice(low - c * b, h - c * b)
                    for low, h, c, b in zip(lo, hi, coord, block_size, strict=True))
        dst = tuple(slice(low - a, h - a) for low, h, a in zip(lo, hi, start, strict=True))
        out[dst] = data[src]
    return out, missing


def normalise_index(key: Any, shape: Sequence[int]) -> list[Item]:
    """Per axis, the ``range`` of positions a NumPy basic index keeps, or the one it picks.

    Parameters
    ----------
    key : int, slice, Ellipsis or a tuple of them
        A basic index (no arrays, no booleans, no ``None``).
    shape : sequence of int
        The shape of the array indexed.

    Returns
    -------
    list of range or int
        One item per axis of ``shape``: a ``range`` (non-negative step) for a
        slice, a non-negative position for an integer.

    Raises
    ------
    IndexError
        Out-of-bounds integers, too many indices, negative steps.
    TypeError
        Anything but integers, slices and Ellipsis.
    """
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1 :]
    if len(key) > len(shape):
        raise IndexError(f"too many indices: {len(key)} for a {len(shape)}-d array")
    key = key + (slice(None),) * (len(shape) - len(key))
    return [_axis_item(k, int(n)) for k, n in zip(key, shape, strict=True)]


def _axis_item(k: Any, n: int) -> Item:
    """One axis of :func:`normalise_index`."""
    if isinstance(k, slice):
        r = range(n)[slice(_int_or_none(k.start), _int_or_none(k.stop), _int_or_none(k.step))]
        if r.step < 0:
            raise IndexError("negative slice steps are not supported")
        return r
    if isinstance(k, int | np.integer) and not isinstance(k, bool):
        i = int(k)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of bounds for axis of size {n}")
        return i % n
    raise TypeError(f"unsupported index {k!r}: use integers and slices")


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def index_box(items: Sequence[Item]) -> tuple[list[int], list[int], tuple[int | slice, ...]]:
    """The voxel box an index reads, and how to pick the index from that box.

    Parameters
    ----------
    items : sequence of range or int
        As :func:`normalise_index` returns.

    Returns
    -------
    start, stop : list of int
        The bounding box ``[start, stop)`` of the positions (empty on an axis
        whose range is empty).
    picks : tuple of int and slice
        Applied to the box, gives the indexed array (steps kept, integer axes
        dropped).
    """
    start = [i if isinstance(i, int) else i.start for i in items]
    stop = [i + 1 if isinstance(i, int) else (i[-1] + 1 if len(i) else i.start) for i in items]
    picks = tuple(0 if isinstance(i, int) else slice(None, None, i.step) for i in items)
    return start, stop, picks
