"""Tests of app.kernels.palette and the palette downsample against the references."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from app.kernels import (
    RULES,
    downsample_labels,
    downsample_palette_into,
    gather,
    index_dtype,
    palettize,
    split_index,
)
from app.kernels.reference import downsample_labels_ref, palettize_ref, split_index_ref
from tests.test_kernels_counting import runs_labels

LABEL_DTYPES = [np.uint8, np.uint16, np.uint32, np.uint64]
SHAPES = [(1, 1, 1), (1, 5, 7), (3, 4, 5), (65, 33, 17), (64, 64, 64)]


def assert_palettize_equals_reference(block: NDArray[Any]) -> None:
    labels, index, counts = palettize(block)
    want_labels, want_index, want_counts = palettize_ref(block)
    assert labels.dtype == block.dtype and counts.dtype == np.int64
    assert index.shape == block.shape and index.flags.c_contiguous
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_array_equal(index, want_index)
    np.testing.assert_array_equal(counts, want_counts)
    np.testing.assert_array_equal(gather(labels, index), block)


@pytest.mark.parametrize("dtype", LABEL_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_palettize_equals_reference(shape: tuple[int, ...], dtype: Any) -> None:
    block = runs_labels(shape, dtype, seed=int(np.prod(shape)) % 97, n=40)
    assert_palettize_equals_reference(block)
    index = palettize(block)[1]
    assert index.dtype == np.uint8


def test_palettize_zeros_top_labels_and_strided_input() -> None:
    block = np.zeros((4, 5, 6), np.uint64)
    block[0, 0, 0] = 2**64 - 1
    block[-1, -1, -1] = 2**64 - 2
    block[2, :, 3] = 7  # runs across rows: equal to the row above
    assert_palettize_equals_reference(block)
    assert_palettize_equals_reference(block[:, ::-1, ::2])
    labels, index, counts = palettize(np.zeros((3, 3, 3), np.uint64))
    assert labels.tolist() == [0] and counts.tolist() == [27] and not index.any()


@pytest.mark.parametrize(
    ("distinct", "dtype"), [(256, np.uint8), (257, np.uint16), (70_000, np.uint32)]
)
def test_palettize_index_widens_with_the_labels(distinct: int, dtype: Any) -> None:
    rng = np.random.default_rng(distinct)
    values = rng.permutation(np.arange(distinct, dtype=np.uint64) * 977 + 3)
    block = np.repeat(values, 2).reshape(1, 2, distinct)  # runs of two voxels
    labels, index, _ = palettize(block)
    assert index.dtype == dtype and labels.size == distinct
    assert_palettize_equals_reference(block)


@given(
    block=arrays(
        np.uint16,
        st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 9)),
        elements=st.integers(0, 5),
    )
)
@settings(max_examples=60, deadline=None)
def test_palettize_hypothesis(block: NDArray[np.uint16]) -> None:
    assert_palettize_equals_reference(block)


def test_palettize_and_gather_errors() -> None:
    with pytest.raises(TypeError, match="unsigned integer"):
        palettize(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="at least one voxel"):
        palettize(np.zeros((0, 3), np.uint64))
    with pytest.raises(ValueError, match="0-d"):
        palettize(np.array(3, np.uint64))
    with pytest.raises(ValueError, match="outside a table of 2 entries"):
        gather(np.array([5, 6], np.uint64), np.array([[0, 1], [2, 0]], np.uint8))
    with pytest.raises(TypeError, match="table must be a 1D"):
        gather(np.zeros((2, 2), np.uint64), np.zeros(3, np.uint8))


@pytest.mark.parametrize("table_dtype", [np.uint8, np.uint16, np.uint64])
def test_gather_equals_numpy(table_dtype: Any) -> None:
    rng = np.random.default_rng(5)
    table = rng.integers(0, 200, size=300).astype(table_dtype)
    index = rng.integers(0, 300, size=(3, 5, 7)).astype(np.uint16)
    got = gather(table, index)
    assert got.dtype == table_dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, table[index])
    np.testing.assert_array_equal(gather(table, index[:, ::-1]), table[index[:, ::-1]])


# --------------------------------------------------------------------------- downsample


def random_spans(
    rng: np.random.Generator, shape: tuple[int, int, int], offset: tuple[int, int, int], n: int
) -> NDArray[np.int64]:
    """``n`` spans around a box at ``offset``: some inside, some across its
    edges, some outside, some overlapping."""
    z = rng.integers(offset[0] - 1, offset[0] + shape[0] + 1, n)
    y = rng.integers(offset[1] - 1, offset[1] + shape[1] + 1, n)
    x = rng.integers(offset[2] - 3, offset[2] + shape[2] + 1, n)
    length = rng.integers(1, shape[2] + 5, n)
    return np.column_stack([x, y, z, length]).astype(np.int64)


def assert_split_index_equals_reference(
    index: NDArray[Any], hit: NDArray[np.bool_], spans: NDArray[Any], offset: tuple[int, int, int]
) -> NDArray[Any]:
    before = index.copy()
    got, moved = split_index(index, hit, spans, offset)
    want, want_moved = split_index_ref(index, hit, spans, offset)
    np.testing.assert_array_equal(index, before)  # not modified
    assert got.shape == index.shape and got.flags.c_contiguous
    np.testing.assert_array_equal(got.astype(np.int64), want)
    np.testing.assert_array_equal(moved, want_moved)
    return got


@pytest.mark.parametrize("index_dtype", [np.uint8, np.uint16, np.uint32])
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 5, 7), (3, 4, 5), (65, 33, 17), (64, 64, 64)])
def test_split_index_equals_reference(shape: tuple[int, int, int], index_dtype: Any) -> None:
    rng = np.random.default_rng(int(np.prod(shape)))
    k = 7
    index = rng.integers(0, k, shape).astype(index_dtype)
    hit = np.zeros(k, bool)
    hit[[0, 3, 4]] = True  # a merged body holds several entries
    offset = (64, 128, 192)
    for n in (0, 1, 40):
        got = assert_split_index_equals_reference(index, hit, random_spans(rng, shape, offset, n),
                                                  offset)
        assert got.dtype == index_dtype
    whole = np.array([[offset[2], y, z, shape[2]] for z in range(offset[0], offset[0] + shape[0])
                      for y in range(offset[1], offset[1] + shape[1])], np.int64)
    got = assert_split_index_equals_reference(index, hit, whole, offset)
    assert not np.isin(got, [0, 3, 4]).any()
    assert_split_index_equals_reference(index, np.zeros(k, bool), whole, offset)  # no entry hit


def test_split_index_overlapping_spans_move_a_voxel_once() -> None:
    index = np.array([[[0, 1, 0, 0, 1]]], np.uint8)
    spans = np.array([[0, 0, 0, 4], [2, 0, 0, 3], [1, 0, 0, 1]], np.int64)
    got, moved = split_index(index, np.array([True, False]), spans, (0, 0, 0))
    assert got.ravel().tolist() == [2, 1, 2, 2, 1] and moved.tolist() == [3, 0]


@pytest.mark.parametrize(
    ("entries", "index_dtype", "want_dtype"),
    [(255, np.uint8, np.uint8), (256, np.uint8, np.uint16), (65_536, np.uint16, np.uint32),
     (3, np.uint32, np.uint32)],
)
def test_split_index_widens_for_the_new_entry(
    entries: int, index_dtype: Any, want_dtype: Any
) -> None:
    index = np.full((2, 3, 4), entries - 1, index_dtype)
    hit = np.zeros(entries, bool)
    hit[-1] = True
    spans = np.array([[1, 1, 1, 2]], np.int64)
    got = assert_split_index_equals_reference(index, hit, spans, (0, 0, 0))
    assert got.dtype == want_dtype and int(got[1, 1, 1]) == entries


@given(
    index=arrays(
        np.uint8,
        st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 9)),
        elements=st.integers(0, 4),
    ),
    data=st.data(),
)
@settings(max_examples=60, deadline=None)
def test_split_index_hypothesis(index: NDArray[np.uint8], data: st.DataObject) -> None:
    hit = data.draw(arrays(np.bool_, 5))
    span = st.tuples(st.integers(-2, 10), st.integers(-1, 6), st.integers(-1, 5),
                     st.integers(1, 12))
    spans = np.array(data.draw(st.lists(span, max_size=6)), np.int64).reshape(-1, 4)
    assert_split_index_equals_reference(index, hit, spans, (0, 0, 0))


def test_split_index_errors() -> None:
    index = np.zeros((2, 2, 2), np.uint8)
    spans = np.array([[0, 0, 0, 2]], np.int64)
    with pytest.raises(ValueError, match="outside a palette of 1"):
        split_index(index + 1, np.array([True]), spans, (0, 0, 0))
    with pytest.raises(TypeError, match="hit"):
        split_index(index, np.array([1]), spans, (0, 0, 0))
    with pytest.raises(ValueError, match="3D"):
        split_index(index[0], np.array([True]), spans, (0, 0, 0))
    for dtype in (np.int8, np.uint64):
        with pytest.raises(TypeError, match="uint8, uint16 or uint32"):
            split_index(index.astype(dtype), np.array([True]), spans, (0, 0, 0))
    with pytest.raises(ValueError, match="length"):
        split_index(index, np.array([True]), np.array([[0, 0, 0, 0]]), (0, 0, 0))


def palette_volume(
    shape: tuple[int, int, int], dtype: Any, seed: int
) -> tuple[NDArray[Any], NDArray[Any]]:
    """An index of blobs and runs over a palette whose entries repeat labels
    (as after a merge), 0 and the dtype's top values among them."""
    rng = np.random.default_rng(seed)
    top = int(np.iinfo(dtype).max)
    labels = np.array([0, 1, 2, top, 1, top - 1, 2, 0, 9 % (top + 1)], dtype=dtype)
    coarse = rng.integers(0, labels.size, size=tuple((s + 3) // 4 for s in shape))
    index = np.kron(coarse, np.ones((4, 4, 4), np.int64))[: shape[0], : shape[1], : shape[2]]
    noise = rng.random(shape) < 0.2
    index[noise] = rng.integers(0, labels.size, size=int(noise.sum()))
    return labels, index.astype(np.uint8)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype", LABEL_DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 2, 2), (3, 4, 5), (33, 17, 71), (64, 64, 64)])
def test_downsample_palette_equals_reference(
    shape: tuple[int, int, int], dtype: Any, rule: str
) -> None:
    labels, index = palette_volume(shape, dtype, seed=sum(shape))
    want = downsample_labels_ref(labels[index], rule)
    out = np.empty(want.shape, dtype)
    assert downsample_palette_into(index, labels, out, rule) is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("rule", RULES)
def test_downsample_palette_into_octant_view_and_wide_index(rule: str) -> None:
    labels, index = palette_volume((64, 64, 64), np.uint64, seed=3)
    wide = index.astype(np.uint32)[:, :, ::-1]  # any layout, any index dtype
    parent = np.full((64, 64, 64), 5, np.uint64)
    downsample_palette_into(wide, labels, parent[32:, :32, 32:], rule)
    np.testing.assert_array_equal(parent[32:, :32, 32:], downsample_labels(labels[wide], rule))
    assert (parent[:32] == 5).all() and (parent[32:, 32:] == 5).all()


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("entries", [3, 300, 70_000])
def test_downsample_palette_uniform_chunks_and_wide_ranks(entries: int, rule: str) -> None:
    """Bodies wider than the kernel's chunks (uniform chunks take the fast
    path), a few stray voxels, groups after the last whole chunk and partial
    groups (x = 151), and palettes whose labels need 1, 2 or 4 byte ranks."""
    rng = np.random.default_rng(entries)
    labels = (rng.integers(0, entries // 2 + 2, size=entries) * 7919).astype(np.uint64)
    coarse = rng.integers(0, entries, size=(4, 6, 5))
    index = np.kron(coarse, np.ones((2, 2, 40), np.int64))[:7, :11, :151]
    stray = rng.random(index.shape) < 0.01
    index[stray] = rng.integers(0, entries, size=int(stray.sum()))
    index = index.astype(index_dtype(entries - 1))
    want = downsample_labels_ref(labels[index], rule)
    out = np.empty(want.shape, np.uint64)
    np.testing.assert_array_equal(downsample_palette_into(index, labels, out, rule), want)
    np.testing.assert_array_equal(downsample_labels(labels[index], rule), want)


def test_downsample_palette_errors() -> None:
    labels = np.array([0, 4], np.uint64)
    index = np.zeros((4, 4, 4), np.uint8)
    out = np.empty((2, 2, 2), np.uint64)
    with pytest.raises(TypeError, match="index must have dtype"):
        downsample_palette_into(index.astype(np.uint64), labels, out)
    with pytest.raises(TypeError, match="labels must be a 1D"):
        downsample_palette_into(index, labels.reshape(1, 2), out)
    with pytest.raises(TypeError, match=r"out must have dtype uint64 \(same as labels\)"):
        downsample_palette_into(index, labels, out.astype(np.uint32))
    with pytest.raises(ValueError, match="out must have shape"):
        downsample_palette_into(index, labels, np.empty((2, 2, 3), np.uint64))
    index[3, 3, 3] = 2
    with pytest.raises(ValueError, match="outside the 2 labels"):
        downsample_palette_into(index, labels, out)
    with pytest.raises(ValueError, match="unknown downsampling rule"):
        downsample_palette_into(index, labels, out, "mode")
