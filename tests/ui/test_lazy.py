"""Lazy pyramid levels: missing blocks asked for centre first; highlight codes of labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from app.ui.lazy import CachedLevel, Highlight, HighlightLevel

BLOCK = (4, 4, 4)


class Level:
    """A stand-in for the model's LevelArray: a labels array in memory."""

    kind = "labels"
    scale = 0

    def __init__(self, data: NDArray[Any]) -> None:
        self.data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.size = data.size

    def __getitem__(self, key: Any) -> NDArray[Any]:
        return self.data[key]


class Loader:
    """A stand-in BlockLoader: the blocks in ``cached`` are decoded, the rest asked for."""

    closed = False

    def __init__(self, data: NDArray[Any], cached: set[tuple[int, int, int]]) -> None:
        self.data = data
        self.cached = cached
        self.requests: list[list[tuple[int, int, int]]] = []

    def cached_block(self, _kind: str, _scale: int,
                     coord: tuple[int, int, int]) -> NDArray[Any] | None:
        if coord not in self.cached:
            return None
        box = tuple(slice(c * b, (c + 1) * b) for c, b in zip(coord, BLOCK, strict=True))
        return self.data[box]

    def is_cached(self, kind: str, scale: int, coord: tuple[int, int, int]) -> bool:
        return coord in self.cached

    def request(self, _kind: str, _scale: int, coords: list[tuple[int, int, int]]) -> None:
        self.requests.append(list(coords))


def labels(shape: tuple[int, int, int] = (4, 20, 20)) -> NDArray[np.uint64]:
    rng = np.random.default_rng(1)
    values = np.array([0, 5, 7, 2**63 + 3, 2**64 - 2], dtype=np.uint64)
    return values[rng.integers(0, len(values), size=shape)]


def test_missing_blocks_are_asked_for_centre_first() -> None:
    data = labels()
    loader = Loader(data, cached={(0, 2, 2)})
    level = CachedLevel(Level(data), BLOCK, loader)  # type: ignore[arg-type]
    plane = level[1, :, :]  # a 5 x 5 grid of blocks, the centre one cached
    assert isinstance(plane, np.ndarray)
    np.testing.assert_array_equal(plane[8:12, 8:12], data[1, 8:12, 8:12])
    assert not plane[:8].any()  # not cached yet: background
    (asked,) = loader.requests
    assert len(asked) == 24 and (0, 2, 2) not in asked
    rings = [max(abs(c[1] - 2), abs(c[2] - 2)) for c in asked]
    assert rings == sorted(rings) and rings[0] == 1


@pytest.mark.parametrize("n", [1, 3, 21])  # few labels, and more than 16 (a binary search)
def test_highlight_codes_follow_the_selection_order(n: int) -> None:
    data = labels((3, 9, 11))
    chosen = [2**64 - 2, 7, 2**63 + 3, 5][:n]
    extra = [1000 + i for i in range(max(0, n - len(chosen)))]  # absent labels
    ids = [*chosen, *extra]
    highlight = Highlight(3)
    highlight.set(ids)
    assert highlight.ids == ids
    expected = np.zeros(data.shape, np.uint8)
    for i, label in enumerate(ids):
        expected[data == np.uint64(label)] = 1 + i % 3
    codes = highlight.apply(data)
    assert codes.dtype == np.uint8
    np.testing.assert_array_equal(codes, expected)
    np.testing.assert_array_equal(highlight.apply(data[:, ::2, 1::3]), expected[:, ::2, 1::3])
    highlight.set([])
    assert not highlight.apply(data).any()


def test_highlight_level_reads_codes() -> None:
    data = labels()
    loader = Loader(data, cached={(z, y, x) for z in range(1) for y in range(5) for x in range(5)})
    highlight = Highlight(10)
    level = HighlightLevel(Level(data), BLOCK, loader, highlight)  # type: ignore[arg-type]
    assert level.dtype == np.uint8 and level.shape == data.shape
    assert not np.asarray(level[2]).any()
    highlight.set([7, 2**64 - 2])
    plane = level[2]
    assert isinstance(plane, np.ndarray) and plane.dtype == np.uint8
    np.testing.assert_array_equal(plane, np.select([data[2] == 7, data[2] == 2**64 - 2], [1, 2]))


def test_highlight_rejects_too_many_codes() -> None:
    with pytest.raises(ValueError, match="n_codes"):
        Highlight(256)
