"""The decoded-block cache: LRU bounded in bytes, coarse blocks kept apart."""

from __future__ import annotations

import numpy as np

from app.model.storage.cache import COARSE_SHARE, BlockCache

MIB = 1 << 20


def block() -> np.ndarray:
    return np.zeros(MIB // 8, np.uint64)  # 1 MiB


def test_lru_order_and_byte_bound() -> None:
    cache = BlockCache(4 * MIB)
    for i in range(4):
        cache.put(i, block())
    assert cache.get(0) is not None  # 0 is now the most recent
    cache.put(4, block())
    assert cache.get(1) is None and cache.get(0) is not None
    assert cache.nbytes == 4 * MIB
    cache.put(5, np.zeros(5 * MIB // 8, np.uint64))  # larger than the cache: not kept
    assert cache.get(5) is None and cache.nbytes == 4 * MIB
    arr = block()
    cache.put(0, arr)  # replacing a key keeps the count right
    assert cache.get(0) is arr and not arr.flags.writeable and cache.nbytes == 4 * MIB
    cache.discard(0)
    assert cache.get(0) is None and cache.nbytes == 3 * MIB
    cache.clear()
    assert cache.nbytes == 0 and cache.get(2) is None


def test_fine_blocks_do_not_evict_coarse_ones() -> None:
    cache = BlockCache(8 * MIB)
    for i in range(3):
        cache.put(("coarse", i), block(), coarse=True)
    for i in range(50):  # a stream of fine blocks
        cache.put(("fine", i), block())
    assert all(cache.get(("coarse", i)) is not None for i in range(3))
    assert cache.nbytes == 8 * MIB
    assert cache.get(("fine", 49)) is not None and cache.get(("fine", 44)) is None


def test_coarse_blocks_are_bounded_by_their_share() -> None:
    cache = BlockCache(8 * MIB)
    share = int(COARSE_SHARE * 8)
    for i in range(share + 3):
        cache.put(i, block(), coarse=True)
    assert [i for i in range(share + 3) if cache.get(i) is not None] == list(range(3, share + 3))
    for i in range(100, 120):
        cache.put(i, block())
    assert cache.nbytes == 8 * MIB
    cache.put(3, block())  # a coarse key put again as fine moves segments
    assert cache.nbytes == 8 * MIB and cache.get(3) is not None
