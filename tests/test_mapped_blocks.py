"""Blocks of bodies kept per mapping version (:mod:`app.model.labelmap.mapped_blocks`),
over a stand-in mapping that has only what the cache may rely on: a version and
an immutable view that maps blocks."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.model.labelmap.mapped_blocks import MappedBlocks

KEY = ("labels", 0, 0, 0, 0)


class View:
    """An immutable mapping: supervoxel ``s`` → ``s // divisor`` (counts its calls)."""

    def __init__(self, divisor: int, calls: list[int], during: Callable[[], None]) -> None:
        self.divisor, self.calls, self.during = divisor, calls, during

    def map_block(self, block: NDArray[Any]) -> NDArray[np.uint64]:
        self.calls.append(block.size)
        self.during()
        return (block // self.divisor).astype(np.uint64)


class Mapping:
    """The live mapping: ``divisor`` changes it (and its version)."""

    def __init__(self) -> None:
        self.version = 0
        self.divisor = 1
        self.calls: list[int] = []
        self.during: Callable[[], None] = lambda: None

    def view(self) -> View:
        return View(self.divisor, self.calls, self.during)

    def change(self) -> None:
        self.divisor += 1
        self.version += 1


def svs(seed: int = 0) -> NDArray[np.uint64]:
    block = np.random.default_rng(seed).integers(1, 100, (8, 8, 8)).astype(np.uint64)
    block.flags.writeable = False
    return block


def test_a_block_is_mapped_once_per_version() -> None:
    mapping = Mapping()
    cache = MappedBlocks(mapping, 1 << 20)
    block = svs()
    first = cache.bodies(KEY, block)
    np.testing.assert_array_equal(first, mapping.view().map_block(block))
    assert not first.flags.writeable and cache.bodies(KEY, block) is first
    assert len(mapping.calls) == 2  # (one by the cache, one by the test)
    mapping.change()
    again = cache.bodies(KEY, block)
    assert again is not first
    np.testing.assert_array_equal(again, block // 2)
    assert cache.bodies(KEY, block) is again


def test_a_changed_block_is_mapped_again() -> None:
    mapping = Mapping()
    cache = MappedBlocks(mapping, 1 << 20)
    old = svs(0)
    cache.bodies(KEY, old)
    new = svs(1)  # (what the store serves after an edit: another array)
    np.testing.assert_array_equal(cache.bodies(KEY, new), new)
    same = old.copy()  # (equal voxels, another array: mapped again all the same)
    assert cache.bodies(KEY, same) is not cache.bodies(KEY, old)


def test_a_mapped_block_keeps_no_source_alive() -> None:
    cache = MappedBlocks(Mapping(), 1 << 20)
    block = svs()
    held = weakref.ref(block)
    cache.bodies(KEY, block)
    del block
    gc.collect()
    assert held() is None  # (the store's cache let it go: so does this one)
    np.testing.assert_array_equal(cache.bodies(KEY, svs(2)), svs(2))


def test_a_block_mapped_while_the_mapping_changes_is_not_kept() -> None:
    mapping = Mapping()
    cache = MappedBlocks(mapping, 1 << 20)
    block = svs()
    mapping.during = mapping.change  # (a merge commits while the block is mapped)
    cache.bodies(KEY, block)
    assert cache.nbytes == 0
    mapping.during = lambda: None
    np.testing.assert_array_equal(cache.bodies(KEY, block), block // 2)
    assert cache.bodies(KEY, block) is cache.bodies(KEY, block)


def test_a_reset_mapping_serves_no_block_made_before_it_and_clear_frees_them() -> None:
    mapping = Mapping()
    cache = MappedBlocks(mapping, 1 << 20)
    block = svs()
    cache.bodies(KEY, block)

    def reset() -> None:  # (the mapping re-read from the file while a reader maps)
        mapping.change()
        cache.clear()

    other = ("labels", 0, 0, 0, 1)
    mapping.during = reset
    np.testing.assert_array_equal(cache.bodies(other, block), block // 1)
    assert cache.nbytes == 0  # (cleared, and the block made meanwhile not kept)
    mapping.during = lambda: None
    for key in (KEY, other):
        np.testing.assert_array_equal(cache.bodies(key, block), block // 2)
        assert cache.bodies(key, block) is cache.bodies(key, block)


def test_memory_is_bounded() -> None:
    mapping = Mapping()
    blocks = [svs(i) for i in range(10)]
    cache = MappedBlocks(mapping, 3 * blocks[0].size * 8)
    for i, block in enumerate(blocks):
        cache.bodies(("labels", 0, 0, 0, i), block)
    assert cache.nbytes == 3 * blocks[0].size * 8
    calls = len(mapping.calls)
    cache.bodies(("labels", 0, 0, 0, 9), blocks[9])
    cache.bodies(("labels", 0, 0, 0, 0), blocks[0])
    assert len(mapping.calls) == calls + 1  # (the newest kept, the oldest evicted)
