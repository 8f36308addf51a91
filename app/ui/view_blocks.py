"""Which blocks a 2D view shows: the canvas' box in world coordinates, the
blocks under it (nearest the centre first), the level whose blocks in view fit
a budget, and napari's first view of a pyramid."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


def blocks_in_view(viewer: Any, layer: Any,
                   block_size: tuple[int, int, int]) -> tuple[int, tuple[Coord, ...]] | None:
    """The level a multiscale layer shows and its blocks in view, nearest the view
    centre first: those napari sliced (``corner_pixels``) that lie under the
    canvas, in the current plane (None if the layer has no 3D slice)."""
    level = int(layer.data_level)
    corners = np.asarray(layer.corner_pixels, dtype=float)
    if corners.shape != (2, 3):
        return None
    shape = np.asarray(layer.level_shapes[level])
    lo, hi = corners[0].copy(), corners[1].copy()
    point = np.asarray(viewer.dims.point, dtype=float)[-3:]
    factors = np.asarray(layer.downsample_factors[level], dtype=float)
    for d in viewer.dims.not_displayed:
        lo[d] = hi[d] = np.round(point[d] / factors[d])
    centre = (lo + hi) / 2
    box = view_box(viewer)
    if box is not None:
        shown = list(viewer.dims.displayed)[-2:]
        lo[shown] = np.maximum(lo[shown], np.floor(box[0] / factors[shown]))
        hi[shown] = np.minimum(hi[shown], np.ceil(box[1] / factors[shown]))
        centre[shown] = (box[0] + box[1]) / 2 / factors[shown]
    lo = np.clip(lo, 0, shape - 1)
    hi = np.clip(hi, 0, shape - 1)
    if np.any(hi < lo):
        return level, ()
    return level, blocks_in(lo, hi, block_size, centre)


def level_within(viewer: Any, layer: Any, block_size: tuple[int, int, int],
                 max_blocks: Callable[[int], float]) -> int | None:
    """The level to lock a multiscale layer at so that a 2D view needs at most
    ``max_blocks(level)`` blocks; None when napari's own level does.

    At napari's level the blocks under the canvas count; at a coarser one, the
    whole plane's (a locked level is sliced whole).  The coarsest level if
    none fits; None in 3D or without a canvas.
    """
    box, size = view_box(viewer), canvas_size(viewer)
    if box is None or size is None:
        return None
    shown = list(viewer.dims.displayed)[-2:]
    factors = np.asarray(layer.downsample_factors, dtype=float)[:, shown]
    auto = compute_multiscale_level(box[1] - box[0], np.asarray(size), factors)
    bs = np.asarray(block_size)[shown]
    n_levels = len(layer.level_shapes)
    for level in range(auto, n_levels):
        plane = np.asarray(layer.level_shapes[level])[shown]
        if level == auto:
            lo = np.clip(np.floor(box[0] / factors[level]), 0, plane - 1)
            hi = np.clip(np.ceil(box[1] / factors[level]), 0, plane - 1)
            blocks = np.prod(hi // bs - lo // bs + 1)
        else:
            blocks = np.prod(-(-plane // bs))
        if blocks <= max_blocks(level):
            return None if level == auto else level
    return n_levels - 1


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
