"""The staged-block overlay and the cache: a reader never caches a stale block."""

from __future__ import annotations

import numpy as np

from app.model.storage.cache import BlockCache
from app.model.storage.staging import StagedOverlay

KEY = ("labels", 1, 0, 0, 0)


def test_a_block_decoded_before_an_edit_is_not_cached() -> None:
    cache = BlockCache(1 << 20)
    overlay = StagedOverlay(cache)
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
    overlay = StagedOverlay(BlockCache(1 << 20))
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
