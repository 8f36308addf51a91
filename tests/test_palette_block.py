"""PaletteBlock: a merge on the palette equals the merge of the voxels."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from app.kernels import index_dtype, relabel_indexed
from app.model.storage.palette_block import PaletteBlock


@pytest.fixture
def block(real_labels: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """An odd-shaped block (37, 64, 51) of the real automated segmentation."""
    return np.ascontiguousarray(real_labels[:, :64, 50:])


def merge_codes(sources: list[int], all_sources: list[int]) -> NDArray[np.unsignedinteger]:
    """The codes of ``sources`` in a merge of ``all_sources``."""
    return np.array(
        [all_sources.index(s) + 1 for s in sources], dtype=index_dtype(len(all_sources))
    )


def test_palette_round_trip(block: NDArray[np.uint64]) -> None:
    palette = PaletteBlock.of(block)
    assert palette.shape == block.shape and not palette.index.flags.writeable
    assert palette.nbytes < block.nbytes // 4
    decoded = palette.decoded()
    np.testing.assert_array_equal(decoded, block)
    assert not decoded.flags.writeable
    assert int(palette.counts.sum()) == block.size


def test_merges_on_the_palette_equal_merges_of_the_voxels(block: NDArray[np.uint64]) -> None:
    labels, counts = np.unique(block, return_counts=True)
    big = labels[np.argsort(-counts)][:6].tolist()
    target, first, second = big[0], sorted(big[1:3]), sorted(big[3:6])
    palette, voxels = PaletteBlock.of(block), block
    for sources in (first, second, sorted([*first, *second])):  # the last merges nothing new
        merge = sorted({*sources, 10**12})  # a label the block does not hold
        keys = np.array(merge, np.uint64)
        codes = merge_codes(merge, merge)
        want, want_index, want_n = relabel_indexed(voxels, keys, target)
        merged, n, index = palette.merged(keys, codes, target)
        assert n == want_n
        if not want_n:
            assert merged is None and index is None
            continue
        assert merged is not None and index is not None
        assert merged.index is palette.index  # the voxels are not touched
        np.testing.assert_array_equal(merged.decoded(), want)
        np.testing.assert_array_equal(index, want_index)
        palette, voxels = merged, want
    assert (palette.labels == target).sum() >= 5  # entries repeat the target now


def test_merge_codes_and_no_undo(block: NDArray[np.uint64]) -> None:
    labels = np.unique(block)
    target, sources = int(labels[-1]), labels[1:3]
    codes = np.array([200, 7], np.uint8)  # this block's part of a larger merge
    merged, n, index = PaletteBlock.of(block).merged(sources, codes, target)
    assert merged is not None and index is not None and index.dtype == np.uint8
    assert n == int(np.isin(block, sources).sum())
    want = np.where(block == sources[0], 200, np.where(block == sources[1], 7, 0))
    np.testing.assert_array_equal(index, want)
    merged, n2, index = PaletteBlock.of(block).merged(sources, codes, target, undo=False)
    assert merged is not None and n2 == n and index is None
