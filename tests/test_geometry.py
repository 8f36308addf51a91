"""Block geometry: block ranges, region assembly, index normalisation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.model.geometry import (
    Coord,
    assemble_region,
    block_ranges,
    blocks_in_box,
    centre_first,
    index_box,
    normalise_index,
)

VOLUME = np.arange(5 * 6 * 7, dtype=np.uint32).reshape(5, 6, 7)
BLOCK = (2, 4, 3)


def block_of(coord: Coord) -> np.ndarray:
    """Block ``coord`` of VOLUME, clipped as a store returns it."""
    return VOLUME[tuple(slice(c * b, (c + 1) * b) for c, b in zip(coord, BLOCK, strict=True))]


def test_block_ranges_and_blocks_in_box() -> None:
    assert block_ranges((0, 3, 5), (2, 4, 7), BLOCK) == [range(0, 1), range(0, 1), range(1, 3)]
    assert block_ranges((1, 0, 0), (1, 6, 7), BLOCK)[0] == range(0)
    assert blocks_in_box((1, 3, 2), (3, 5, 4), BLOCK) == [
        (0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1),
        (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)]
    assert blocks_in_box((0, 0, 0), (0, 6, 7), BLOCK) == []


def test_centre_first_orders_by_distance_then_coordinate() -> None:
    coords = blocks_in_box((0, 0, 0), (2, 8, 9), BLOCK)
    ordered = centre_first(coords, BLOCK, (1.0, 4.0, 4.5))
    assert ordered == [(0, 0, 1), (0, 1, 1), (0, 0, 0), (0, 0, 2), (0, 1, 0), (0, 1, 2)]


@pytest.mark.parametrize(("start", "stop"), [
    ((0, 0, 0), (5, 6, 7)), ((1, 3, 2), (4, 5, 6)), ((4, 5, 6), (5, 6, 7)), ((2, 2, 2), (2, 4, 4)),
])
def test_assemble_region_copies_the_box(start: Coord, stop: Coord) -> None:
    out, missing = assemble_region(start, stop, BLOCK, VOLUME.dtype, block_of)
    box = tuple(slice(a, e) for a, e in zip(start, stop, strict=True))
    np.testing.assert_array_equal(out, VOLUME[box])
    assert out.dtype == VOLUME.dtype and out.flags.writeable and missing == []


def test_assemble_region_leaves_missing_blocks_zero() -> None:
    def some(coord: Coord) -> np.ndarray | None:
        return None if coord == (0, 0, 0) else block_of(coord)

    out, missing = assemble_region((0, 0, 0), (3, 5, 4), BLOCK, np.uint32, some)
    assert missing == [(0, 0, 0)]
    assert not out[:2, :4, :3].any()
    np.testing.assert_array_equal(out[2:], VOLUME[2:3, :5, :4])


@pytest.mark.parametrize("key", [
    (), 3, -1, (slice(None), 2), (Ellipsis, 1), (1, Ellipsis), (slice(1, 4, 2), slice(None), 6),
    (slice(None, None, 3), slice(-4, None), slice(2, 100)), (slice(4, 2),), np.int64(2),
    (1, 2, 3), (slice(5, None),),
])
def test_normalise_index_and_index_box_match_numpy(key: Any) -> None:
    items = normalise_index(key, VOLUME.shape)
    start, stop, picks = index_box(items)
    box = VOLUME[tuple(slice(a, e) for a, e in zip(start, stop, strict=True))]
    expected = VOLUME[key]
    np.testing.assert_array_equal(box[picks], expected)
    assert box[picks].shape == np.shape(expected)


@pytest.mark.parametrize(("key", "error"), [
    ((0, 0, 0, 0), IndexError), (5, IndexError), (-6, IndexError),
    (slice(None, None, -1), IndexError),
    ([1, 2], TypeError), (True, TypeError), (None, TypeError), (1.0, TypeError),
])
def test_normalise_index_rejects_what_it_cannot_read(key: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        normalise_index(key, VOLUME.shape)
