"""Which blocks a 2D view shows: the canvas' box in world coordinates, the
blocks under it (nearest the centre first), and napari's first view of a
pyramid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from napari.layers.utils.layer_utils import compute_multiscale_level
from numpy.typing import NDArray

from app.model.geometry import Coord, blocks_in_box, centre_first
from app.ui.compat import camera, canvas_size


def view_box(viewer: Any) -> NDArray[np.float64] | None:
    """World (lo, hi) of the two displayed axes under the canvas; None in 3D or without one."""
    size = canvas_size(viewer)
    if size is None or int(viewer.dims.ndisplay) != 2:
        return None
    cam = camera(viewer)
    zoom = float(cam.zoom)
    if not zoom > 0:
        return None
    centre = np.asarray(cam.center, dtype=float)[-2:]
    half = np.asarray(size, dtype=float) / (2 * zoom)
    return np.stack([centre - half, centre + half])


def blocks_in(lo: NDArray[Any], hi: NDArray[Any], block_size: tuple[int, ...],
              centre: NDArray[Any]) -> tuple[Coord, ...]:
    """The blocks holding voxels ``lo..hi`` (inclusive), nearest ``centre`` (voxels) first."""
    coords = blocks_in_box([int(a) for a in lo], [int(e) + 1 for e in hi], block_size)
    return tuple(centre_first(coords, block_size, [float(v) for v in centre]))


def first_view_blocks(shapes: Sequence[tuple[int, ...]], block_size: tuple[int, ...],
                      canvas: tuple[int, int]) -> tuple[int, tuple[Coord, ...]]:
    """The level and blocks of napari's first view of a (z, y, x) pyramid in 2D.

    napari fits the whole (y, x) plane in the canvas, goes to the middle z
    plane and slices the coarsest level that still gives each of the
    canvas' ``(height, width)`` pixels a voxel (``compute_multiscale_level``).

    Parameters
    ----------
    shapes : sequence of tuple of int
        The (z, y, x) shape of each level, s0 first.
    block_size : tuple of int
        The (z, y, x) block shape.
    canvas : tuple of int
        The canvas' (height, width) in screen pixels.

    Returns
    -------
    level : int
        The level napari slices.
    coords : tuple of (z, y, x) block coordinates
        The blocks of the middle plane at that level (both planes' blocks when
        the middle falls between two), nearest the plane's centre first.
    """
    s0 = np.asarray(shapes[0], dtype=float)
    factors = s0 / np.asarray(shapes, dtype=float)
    level = int(compute_multiscale_level(s0[1:], np.asarray(canvas), factors[:, 1:]))
    shape = np.asarray(shapes[level])
    mid = (s0[0] - 1) / 2 / factors[level][0]
    lo = np.clip([np.floor(mid), 0, 0], 0, shape - 1)
    hi = np.clip([np.ceil(mid), shape[1] - 1, shape[2] - 1], 0, shape - 1)
    return level, blocks_in(lo, hi, block_size, (lo + hi) / 2)
