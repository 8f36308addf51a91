"""PaletteBlock: a merge on the palette equals the merge of the voxels."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from app.kernels import index_dtype, mask_to_rles, relabel_indexed
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


def test_splits_on_the_palette_equal_splits_of_the_voxels(block: NDArray[np.uint64]) -> None:
    """Splits of a merged body (several entries) rewrite only the region's voxels
    of the target, add one entry each and keep the counts exact."""
    labels, counts = np.unique(block, return_counts=True)
    big = labels[np.argsort(-counts)][:3].tolist()
    target = big[0]
    keys = np.array(sorted(big[1:]), np.uint64)
    palette, _, _ = PaletteBlock.of(block).merged(keys, merge_codes(big[1:], big[1:]), target)
    assert palette is not None
    voxels = np.where(np.isin(block, big), target, block).astype(np.uint64)
    origin = (128, 64, 0)  # the block's place in the volume
    first, second = np.zeros(block.shape, bool), np.zeros(block.shape, bool)
    first[:12, :, 3:40] = True
    second[8:25] = True  # overlaps the first
    for region, label in ((first, 10**12), (second, 10**12 + 1)):
        spans = mask_to_rles(region, origin)
        split, moved = palette.split(spans, origin, target, label)
        want = np.where(region & (voxels == target), label, voxels).astype(np.uint64)
        assert moved == int((want != voxels).sum()) > 0 and split is not None
        np.testing.assert_array_equal(split.decoded(), want)
        assert split.labels.size == palette.labels.size + 1 and not split.index.flags.writeable
        for value in np.unique(want):
            assert int(split.counts[split.labels == value].sum()) == int((want == value).sum())
        palette, voxels = split, want
    assert palette.split(spans, origin, target, 10**13) == (None, 0)  # none left there
    assert palette.split(spans, origin, 10**14, 10**13) == (None, 0)  # no such body


def test_a_palette_outgrows_its_index_only_by_redundant_entries() -> None:
    """256 distinct labels fit a uint8 index; one split more needs uint16 (not
    outgrown); merging all but one label away leaves 257 entries for 2 labels."""
    block = np.arange(256 * 8, dtype=np.uint64).reshape(8, 16, 16) // 8 + 1
    palette = PaletteBlock.of(block)
    assert palette.index.dtype == np.uint8 and not palette.outgrown()
    spans = mask_to_rles(np.ones((1, 1, 4), bool))
    split, moved = palette.split(spans, (0, 0, 0), 1, 10_000)
    assert split is not None and moved == 4
    assert split.index.dtype == np.uint16 and not split.outgrown()
    sources = np.arange(2, 257, dtype=np.uint64)
    merged, _, _ = split.merged(sources, np.ones(sources.size, np.uint8), 1, undo=False)
    assert merged is not None and merged.outgrown()


@pytest.mark.parametrize("cover", ["whole block", "whole block, overlapping spans", "all but one"])
def test_a_split_over_the_whole_block_relabels_the_palette(
    block: NDArray[np.uint64], cover: str
) -> None:
    labels, counts = np.unique(block, return_counts=True)
    target = int(labels[np.argmax(counts)])
    origin = (64, 0, 128)
    region = np.ones(block.shape, bool)
    if cover == "all but one":
        region[tuple(np.argwhere(block == target)[0])] = False
    spans = mask_to_rles(region, origin)
    if cover == "whole block, overlapping spans":
        spans = np.concatenate([spans, spans[:3]])
    palette = PaletteBlock.of(block)
    split, moved = palette.split(spans, origin, target, 10**12)
    want = np.where(region & (block == target), 10**12, block).astype(np.uint64)
    assert split is not None and moved == int((want != block).sum())
    np.testing.assert_array_equal(split.decoded(), want)
    assert (split.index is palette.index) == (cover != "all but one")
