"""Tests of app.kernels.relabel against app.kernels.reference (exact equality)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from app.kernels import (
    index_dtype,
    relabel_indexed,
    relabel_inplace,
    remap_inplace,
)
from app.kernels.reference import relabel_indexed_ref, relabel_ref, remap_ref

LABEL_DTYPES = [np.uint8, np.uint16, np.uint32, np.uint64]
SHAPES = [(1, 1, 1), (1, 5, 7), (3, 4, 5), (65, 33, 17), (64, 64, 64)]


def palette(dtype: Any, n: int = 40) -> NDArray[Any]:
    """``n`` distinct labels of ``dtype``, including 0 and the top values
    (above 2**63 for uint64)."""
    top = int(np.iinfo(dtype).max)
    low = list(range(n // 2))
    high = [top - i for i in range(n - n // 2)]
    return np.array(low + high, dtype=dtype)


def runs_labels(shape: tuple[int, ...], dtype: Any, seed: int, n: int = 12) -> NDArray[Any]:
    """Labels in runs along x of random lengths (as in real data), from a
    palette of ``n`` values, with some isolated voxels."""
    rng = np.random.default_rng(seed)
    pal = palette(dtype, n)
    size = int(np.prod(shape))
    out = np.empty(size, dtype=dtype)
    i = 0
    while i < size:
        length = int(rng.choice([1, 3, 17, 64, 300, 700]))
        out[i : i + length] = pal[rng.integers(0, pal.size)]
        i += length
    flip = rng.random(size) < 0.02
    out[flip] = pal[rng.integers(0, pal.size, size=int(flip.sum()))]
    return out.reshape(shape)


# --------------------------------------------------------------------------- relabel


@pytest.mark.parametrize("n_labels", [1, 3, 10, 16, 17, 30])
@pytest.mark.parametrize("dtype", LABEL_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_relabel_equals_reference(shape: tuple[int, ...], dtype: Any, n_labels: int) -> None:
    seed = (n_labels * 7919 + len(shape) + int(np.prod(shape))) % 2**32
    block = runs_labels(shape, dtype, seed=seed, n=40)
    rng = np.random.default_rng(seed)
    pal = palette(dtype, 40)
    labels = rng.choice(pal, size=n_labels, replace=False)
    target = pal[-1] if n_labels % 2 else pal[1]
    want, want_n = relabel_ref(block, labels, int(target))
    got = block.copy()
    n = relabel_inplace(got, labels, int(target))
    assert n == want_n
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", LABEL_DTYPES)
def test_relabel_unsorted_duplicates_and_target_in_labels(dtype: Any) -> None:
    top = int(np.iinfo(dtype).max)
    block = np.array([[[top, 5, 5, 0, 7, top, 9, 5]]], dtype=dtype)
    got = block.copy()
    # target (7) is also in labels: its voxels are not counted as changed
    n = relabel_inplace(got, np.array([top, 5, 7, 5, top, 7], dtype=np.uint64), 7)
    assert n == 5
    assert got.ravel().tolist() == [7, 7, 7, 0, 7, 7, 9, 7]
    # labels too large for the dtype cannot occur: ignored; lists accepted
    got = block.copy()
    assert relabel_inplace(got, [2**64 - 1, 9], 0) == (1 if dtype != np.uint64 else 3)
    assert relabel_inplace(got, [], 3) == 0


def test_relabel_uint64_high_values_and_uniform_chunks() -> None:
    hi = 2**63 + 12345
    block = np.full((4, 8, 256), hi, dtype=np.uint64)  # whole uniform chunks
    block[1, 2, 100:130] = 2**64 - 1
    block[3, 7, 255] = 5
    for labels in ([hi], [hi, 3, 4, 5], [*range(100, 140), hi]):
        got = block.copy()
        want, want_n = relabel_ref(block, labels, 2**63)
        assert relabel_inplace(got, np.array(labels, dtype=np.uint64), 2**63) == want_n
        np.testing.assert_array_equal(got, want)


def test_relabel_errors() -> None:
    block = np.zeros((4, 4, 4), dtype=np.uint16)
    with pytest.raises(ValueError, match="target"):
        relabel_inplace(block, [1], 2**16)
    with pytest.raises(ValueError, match="target"):
        relabel_inplace(block, [1], -1)
    with pytest.raises(TypeError, match="target"):
        relabel_inplace(block, [1], 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="labels"):
        relabel_inplace(block, [-1], 1)
    with pytest.raises(ValueError, match="labels must be 1D"):
        relabel_inplace(block, [[1]], 1)
    with pytest.raises(TypeError, match="labels"):
        relabel_inplace(block, [1.5], 1)
    with pytest.raises(TypeError, match="block"):
        relabel_inplace(block.astype(np.int32), [1], 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        relabel_inplace(np.zeros((4, 4, 4), dtype=np.uint64)[:, ::2], [1], 2)
    ro = np.zeros((2, 2, 2), dtype=np.uint64)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        relabel_inplace(ro, [0], 2)


@settings(max_examples=80, deadline=None)
@given(
    block=arrays(
        np.uint64,
        st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 70)),
        elements=st.sampled_from([0, 1, 2, 3, 2**63, 2**64 - 1]),
    ),
    labels=st.lists(st.sampled_from([0, 1, 2, 5, 2**63, 2**64 - 1]), max_size=6),
    target=st.sampled_from([0, 1, 4, 2**64 - 1]),
)
def test_relabel_hypothesis(block: NDArray[np.uint64], labels: list[int], target: int) -> None:
    want, want_n = relabel_ref(block, labels, target)
    got = block.copy()
    assert relabel_inplace(got, np.array(labels, dtype=np.uint64), target) == want_n
    np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- remap


@pytest.mark.parametrize("n_keys", [1, 5, 40])
@pytest.mark.parametrize("dtype", LABEL_DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 4, 5), (65, 33, 17)])
def test_remap_equals_reference(shape: tuple[int, ...], dtype: Any, n_keys: int) -> None:
    seed = n_keys + int(np.prod(shape))
    block = runs_labels(shape, dtype, seed=seed, n=40)
    rng = np.random.default_rng(seed)
    pal = palette(dtype, 40)
    keys = rng.choice(pal, size=n_keys, replace=False)
    values = rng.choice(pal, size=n_keys)  # may map a key to itself or chain
    want, want_n = remap_ref(block, keys, values)
    got = block.copy()
    assert remap_inplace(got, keys, values) == want_n
    np.testing.assert_array_equal(got, want)


def test_remap_applies_once_and_ignores_identity() -> None:
    block = np.array([[[1, 2, 3, 1, 2**64 - 1]]], dtype=np.uint64)
    got = block.copy()
    n = remap_inplace(got, [2, 1, 3, 2**64 - 1], [3, 2, 3, 0])
    assert n == 4
    assert got.ravel().tolist() == [2, 3, 3, 2, 0]


def test_remap_errors() -> None:
    block = np.zeros((2, 2, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="unique"):
        remap_inplace(block, [1, 1], [2, 3])
    with pytest.raises(ValueError, match="same length"):
        remap_inplace(block, [1, 2], [2])
    with pytest.raises(ValueError, match="values"):
        remap_inplace(block, [1], [256])
    # a key too large for the dtype is ignored, whatever its value
    assert remap_inplace(block, [300], [2**40]) == 0
    assert remap_inplace(block, [], []) == 0


@settings(max_examples=60, deadline=None)
@given(
    block=arrays(
        np.uint16,
        st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 80)),
        elements=st.integers(0, 6),
    ),
    mapping=st.dictionaries(st.integers(0, 7), st.integers(0, 2**16 - 1), max_size=8),
)
def test_remap_hypothesis(block: NDArray[np.uint16], mapping: dict[int, int]) -> None:
    keys = np.array(list(mapping), dtype=np.uint64)
    values = np.array(list(mapping.values()), dtype=np.uint64)
    want, want_n = remap_ref(block, keys, values)
    got = block.copy()
    assert remap_inplace(got, keys, values) == want_n
    np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- relabel indexed


@pytest.mark.parametrize("n_labels", [1, 3, 17, 40])
@pytest.mark.parametrize("dtype", LABEL_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_relabel_indexed_equals_reference(
    shape: tuple[int, ...], dtype: Any, n_labels: int
) -> None:
    seed = (n_labels * 31 + int(np.prod(shape))) % 2**32
    block = runs_labels(shape, dtype, seed=seed, n=48)
    pal = palette(dtype, 48)
    target = pal[-1] if n_labels % 2 else pal[1]
    pool = pal[pal != target]
    labels = np.sort(np.random.default_rng(seed).choice(pool, size=n_labels, replace=False))
    want, want_index, want_n = relabel_indexed_ref(block, labels, int(target))
    before = block.copy()
    new, index, n = relabel_indexed(block, labels, int(target))
    assert n == want_n
    assert new.dtype == block.dtype and new.flags.c_contiguous
    assert index.dtype == index_dtype(n_labels) and index.flags.c_contiguous
    np.testing.assert_array_equal(new, want)
    np.testing.assert_array_equal(index, want_index)
    np.testing.assert_array_equal(block, before)  # not modified
    strided = relabel_indexed(block[:, ::-1], labels, int(target))
    np.testing.assert_array_equal(strided[0], want[:, ::-1])
    np.testing.assert_array_equal(strided[1], want_index[:, ::-1])


def test_relabel_indexed_zeros_and_edges() -> None:
    block = np.zeros((3, 4, 5), np.uint64)
    block[0, 0, 0] = 2**64 - 1  # the very first voxel, a top label
    block[-1, -1, -1] = 7  # the very last
    new, index, n = relabel_indexed(block, [7, 2**64 - 1], 0)
    assert n == 2 and not new.any()
    assert index[0, 0, 0] == 2 and index[-1, -1, -1] == 1 and int(index.sum()) == 3
    new, index, n = relabel_indexed(np.zeros((2, 2), np.uint8), [300], 1)  # beyond the dtype
    assert n == 0 and not new.any() and not index.any()


@given(
    block=arrays(
        np.uint16, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 6)
    ),
    labels=st.sets(st.integers(0, 7), min_size=1),
    target=st.integers(8, 9),
)
@settings(max_examples=60, deadline=None)
def test_relabel_indexed_hypothesis(
    block: NDArray[np.uint16], labels: set[int], target: int
) -> None:
    want, want_index, want_n = relabel_indexed_ref(block, sorted(labels), target)
    new, index, n = relabel_indexed(block, sorted(labels), target)
    assert n == want_n
    np.testing.assert_array_equal(new, want)
    np.testing.assert_array_equal(index, want_index)


def test_index_dtype_grows_with_the_labels() -> None:
    assert [index_dtype(n) for n in (1, 255, 256, 65535, 65536, 2**32)] == [
        np.uint8,
        np.uint8,
        np.uint16,
        np.uint16,
        np.uint32,
        np.uint64,
    ]
    with pytest.raises(ValueError, match="do not fit"):
        index_dtype(2**64)


def test_relabel_indexed_errors() -> None:
    a = np.zeros((2, 3, 4), np.uint64)
    with pytest.raises(ValueError, match="must not be empty"):
        relabel_indexed(a, [], 1)
    with pytest.raises(ValueError, match="sorted and distinct"):
        relabel_indexed(a, [3, 2], 1)
    with pytest.raises(ValueError, match="sorted and distinct"):
        relabel_indexed(a, [2, 2], 1)
    with pytest.raises(ValueError, match="must not hold the target 2"):
        relabel_indexed(a, [1, 2], 2)
    with pytest.raises(TypeError, match="unsigned integer"):
        relabel_indexed(a.astype(np.int64), [1], 2)
    with pytest.raises(ValueError, match="does not fit"):
        relabel_indexed(a.astype(np.uint8), [1], 256)
