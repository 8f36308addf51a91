"""The staged-block overlay and the cache: a reader never caches a stale block."""

from __future__ import annotations

import numpy as np
import pytest

from app.model.storage.cache import BlockCache
from app.model.storage.palette_block import PaletteBlock
from app.model.storage.staging import StagedBlock, StagedOverlay

KEY = ("labels", 1, 0, 0, 0)


def test_a_block_decoded_before_an_edit_is_not_cached() -> None:
    cache: BlockCache[np.ndarray] = BlockCache(1 << 20)
    overlay = StagedOverlay(cache, BlockCache(1 << 20))
    staged, version = overlay.get_versioned(KEY)  # a reader starts decoding the file's block
    assert staged is None
    overlay.stage(KEY, np.ones((2, 2, 2), np.uint64), None, gen=1)  # an edit meanwhile
    old = np.zeros((2, 2, 2), np.uint64)
    assert not overlay.cache_if_current(KEY, version, old)
    assert cache.get(KEY) is None
    staged, version = overlay.get_versioned(KEY)
    assert staged is not None and overlay.cache_if_current(KEY, version, old)
    assert cache.get(KEY) is old


def test_unencoded_bytes_follow_what_is_held() -> None:
    overlay = StagedOverlay(BlockCache(1 << 20), BlockCache(1 << 20))
    block = np.ones((2, 2, 2), np.uint64)
    overlay.stage(KEY, block, None, gen=1)
    overlay.stage(("labels", 1, 0, 0, 1), np.ones((2, 2, 2), np.uint64), b"x", gen=1)
    assert overlay.count == 2 and overlay.unencoded_nbytes == block.nbytes
    overlay.unstage([(KEY, 2)])  # another generation: kept
    assert overlay.count == 2
    overlay.unstage([(KEY, 1)])
    assert overlay.count == 1 and overlay.unencoded_nbytes == 0
    overlay.clear()
    assert overlay.count == 0 and overlay.items() == []


S0_KEY = ("labels", 0, 0, 0, 0)


@pytest.fixture
def written_palette() -> tuple[StagedOverlay, PaletteBlock]:
    """An overlay whose s0 block was staged as a palette and then written by a checkpoint."""
    overlay = StagedOverlay(BlockCache(1 << 20), BlockCache(1 << 20))
    palette = PaletteBlock.of(np.arange(8, dtype=np.uint64).reshape(2, 2, 2) % 3)
    overlay.stage(S0_KEY, palette, None, gen=1)
    assert overlay.palette(S0_KEY) is palette
    overlay.unstage([(S0_KEY, 1)])
    assert overlay.count == 0
    return overlay, palette


def test_a_palette_a_checkpoint_wrote_is_kept(
    written_palette: tuple[StagedOverlay, PaletteBlock],
) -> None:
    overlay, palette = written_palette
    assert overlay.palette(S0_KEY) is palette
    assert overlay.palette(("labels", 0, 0, 0, 1)) is None


CHANGES = ["stage an array", "stage a payload", "write", "restore nothing", "restore", "clear"]


@pytest.mark.parametrize("change", CHANGES)
def test_a_kept_palette_is_forgotten_when_the_block_changes(
    written_palette: tuple[StagedOverlay, PaletteBlock], change: str
) -> None:
    overlay, _ = written_palette
    block = np.zeros((2, 2, 2), np.uint64)
    if change == "stage an array":
        overlay.stage(S0_KEY, block, None, gen=2)
    elif change == "stage a payload":
        overlay.stage(S0_KEY, block, b"x", gen=2)
    elif change == "write":
        overlay.written(S0_KEY)
    elif change == "restore nothing":  # (a refused edit puts back "the file holds it")
        overlay.restore(S0_KEY, None)
    elif change == "restore":
        overlay.restore(S0_KEY, StagedBlock(b"x", 2))
    else:
        overlay.clear()
    assert overlay.palette(S0_KEY) is None


def test_a_late_unstage_keeps_the_newer_palette(
    written_palette: tuple[StagedOverlay, PaletteBlock],
) -> None:
    """A checkpoint that wrote generation 2 while generation 3 was staged keeps
    neither generation 2's palette nor drops generation 3."""
    overlay, palette = written_palette
    newer = PaletteBlock.of(np.full((2, 2, 2), 7, np.uint64))
    overlay.stage(S0_KEY, palette, None, gen=2)
    overlay.stage(S0_KEY, newer, None, gen=3)
    overlay.unstage([(S0_KEY, 2)])
    assert overlay.palette(S0_KEY) is newer and overlay.count == 1
    overlay.unstage([(S0_KEY, 3)])
    assert overlay.palette(S0_KEY) is newer and overlay.count == 0


def test_an_outgrown_palette_is_not_kept() -> None:
    overlay = StagedOverlay(BlockCache(1 << 20), BlockCache(1 << 20))
    labels = np.ones(300, np.uint64)  # 300 entries, one label: a fresh palette needs uint8
    palette = PaletteBlock(labels, np.arange(300, dtype=np.uint16), np.ones(300, np.int64))
    overlay.stage(S0_KEY, palette, None, gen=1)
    overlay.unstage([(S0_KEY, 1)])
    assert overlay.palette(S0_KEY) is None
